"""Alembic environment: runs migrations on the engine handed in by :func:`lockbox.store.db.upgrade`.

On SQLite, "batch" migrations rebuild a table (copy, drop, rename). With foreign keys
enforced, dropping the old table would cascade (``ON DELETE CASCADE``) into the rows
that point at it (a user's roles, tokens…), so enforcement is switched off for the
migration — outside any transaction, where SQLite honours the pragma — and every
reference is checked afterwards: a migration that left one dangling fails loudly.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from lockbox.store.db import MigrationRefused
from lockbox.store.tables import metadata

config = context.config
engine = config.attributes.get("engine") or create_engine(
    str(config.get_main_option("sqlalchemy.url"))
)


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    raw = connection.connection.dbapi_connection
    if raw is None:
        raise MigrationRefused("no database connection to migrate")
    raw.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _sqlite_foreign_keys(connection, False)
    try:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if dangling:
                    raise MigrationRefused(f"rows refer to missing rows: {dangling[:5]}")
    finally:
        if sqlite:
            connection.rollback()
            _sqlite_foreign_keys(connection, True)
