"""The Alembic migrations produce exactly the schema of ``store/tables.py``."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from lockbox.store.db import Database, current_revision, migrations_config, upgrade
from lockbox.store.tables import metadata


def test_migrated_schema_matches_the_tables(database: Database) -> None:
    upgrade(database)  # idempotent on an already migrated database
    with database.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": False}
        )
        diff = compare_metadata(context, metadata)
    assert diff == [], diff
    head = ScriptDirectory.from_config(migrations_config(database)).get_current_head()
    assert current_revision(database) == head


def test_every_table_and_index_exists(database: Database) -> None:
    inspector = inspect(database.engine)
    tables = set(inspector.get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= tables
    indexes = {i["name"] for i in inspector.get_indexes("access_requests")}
    for name in (
        "ix_access_requests_state_review",
        "ix_access_requests_state_approval",
        "ix_access_requests_state_access",
        "ix_access_requests_tenant_state_created",
    ):
        assert name in indexes


def test_upgrade_from_empty_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        assert current_revision(db) is None
        upgrade(db)
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        db.dispose()
