"""The Alembic migrations produce exactly the schema of ``store/tables.py``."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from lockbox.store.db import (
    Database,
    MigrationRefused,
    current_revision,
    migrations_config,
    upgrade,
)
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


def _fresh(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Database:
    """An empty database of ``kind``: a SQLite file, or a new PostgreSQL schema."""
    if kind == "sqlite":
        return Database(f"sqlite:///{tmp_path / 'old.db'}")
    from tests.conftest import PG_BASE, pg_url

    schema = f"lockbox_mig_{os.getpid()}_{request.node.name[-12:].strip('[]-')}"
    try:
        admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        pytest.skip(f"PostgreSQL unreachable: {exc}")

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    request.addfinalizer(drop)
    return Database(pg_url(schema))


def _seed_0001(db: Database, emails: list[tuple[str, str | None]]) -> None:
    """Rows as revision 0001 stored them: a tenant, users, a resource service."""
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tenants (id, slug, name, lockbox_enabled, approval_window_s, "
                "access_window_s, review_window_s, required_approvals, notify_emails, "
                "reminder_fraction, created_at, version) VALUES ('ten_1', 'contoso', 'Contoso', "
                "true, 43200, 14400, 43200, 1, '[]', 0.25, :now, 1)"
            ),
            {"now": now},
        )
        for index, (email, tenant) in enumerate(emails):
            conn.execute(
                text(
                    "INSERT INTO users (id, email, display_name, side, tenant_id, active, "
                    "created_at) VALUES (:id, :email, 'x', :side, :tenant, true, :now)"
                ),
                {
                    "id": f"usr_{index}",
                    "email": email,
                    "side": "customer" if tenant else "provider",
                    "tenant": tenant,
                    "now": now,
                },
            )
        conn.execute(
            text("INSERT INTO user_roles (user_id, role) VALUES ('usr_0', 'resource_service')")
        )


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_0002_stops_on_addresses_that_differ_only_in_case_then_carries_data_over(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db = _fresh(kind, tmp_path, request)
    try:
        upgrade(db, "0001")
        _seed_0001(
            db,
            [
                ("svc@provider.test", None),
                ("Paula@contoso.test", "ten_1"),
                ("paula@CONTOSO.test", "ten_1"),
                ("ines@contoso.test", "ten_1"),
            ],
        )
        with pytest.raises(MigrationRefused) as refused:
            upgrade(db)
        assert "paula@contoso.test (2 users)" in str(refused.value)
        assert current_revision(db) == "0001"  # nothing half-migrated
        with db.engine.begin() as conn:
            conn.execute(
                text("UPDATE users SET email = 'paula.old@contoso.test' WHERE id = 'usr_2'")
            )
        upgrade(db)
        with db.engine.connect() as conn:
            keys = sorted(r[0] for r in conn.execute(text("SELECT email_key FROM users")))
            domains = conn.execute(text("SELECT domain, tenant_id FROM tenant_domains")).all()
            services = conn.execute(
                text("SELECT user_id, all_tenants, prefixes FROM resource_services")
            ).all()
        assert keys == [
            "ines@contoso.test",
            "paula.old@contoso.test",
            "paula@contoso.test",
            "svc@provider.test",
        ]
        assert [tuple(d) for d in domains] == [("contoso.test", "ten_1")]
        assert len(services) == 1 and services[0][0] == "usr_0" and bool(services[0][1])
        with pytest.raises(IntegrityError), db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, email, email_key, display_name, side, active, "
                    "created_at) VALUES ('usr_9', 'INES@contoso.test', 'ines@contoso.test', "
                    "'x', 'customer', true, '2026-01-05')"
                )
            )
    finally:
        db.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_requests_waiting_before_the_approval_workflow_migrations_keep_their_meaning(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A request waiting for its second of two approvals when the database was at 0006
    (no stages, no stage on decisions, no delegation, no scheduled start…): after the
    upgrade it has one stage of two approvals, the first one counts, and the second
    approver approves it. The data is made at head, taken down to 0006 and back up."""
    from alembic import command

    from lockbox.clock import ManualClock
    from lockbox.domain.lifecycle import State
    from lockbox.service import requests as request_service
    from lockbox.service.app import Lockbox
    from lockbox.store import repositories as repo
    from tests.conftest import make_world
    from tests.integration.helpers import pending_approval, set_policy

    db = _fresh(kind, tmp_path, request)
    try:
        upgrade(db)
        clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
        world = make_world(Lockbox(db, clock=clock), clock)
        set_policy(world, required_approvals=2)
        waiting = pending_approval(world)
        request_service.decide_request(world.app, world.contoso_approver, waiting.id, approve=True)
        command.downgrade(migrations_config(db), "0006")
        assert current_revision(db) == "0006"
        upgrade(db)
        with db.engine.connect() as conn:
            migrated = repo.get_request(conn, waiting.id)
            tenant = repo.get_tenant(conn, "contoso")
        assert migrated is not None and tenant is not None
        assert migrated.stages == () and migrated.decisions[0].stage is None
        assert [(s.required, s.key) for s in migrated.planned_stages()] == [(2, "approvers")]
        assert tenant.policy.stages == () and tenant.policy.max_extensions == 2
        assert migrated.category == "other" and migrated.starts_at is None
        done = request_service.decide_request(
            world.app, world.contoso_approver2, waiting.id, approve=True
        )
        assert done.state is State.APPROVED
    finally:
        db.dispose()
