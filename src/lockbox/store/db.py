"""Engines, transactions and migrations.

SQLite is the embedded default and PostgreSQL is chosen by URL. On SQLite
every write transaction starts with ``BEGIN IMMEDIATE`` so two writers
serialise at the start instead of deadlocking on lock upgrade; on PostgreSQL
writers serialise on row locks and version checks (see the repositories).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

ENV_URL = "LOCKBOX_DATABASE_URL"


def default_url() -> str:
    """``$LOCKBOX_DATABASE_URL``, else a per-user SQLite file under the XDG data directory."""
    configured = os.environ.get(ENV_URL)
    if configured:
        return configured
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite:///{base / 'lockbox' / 'lockbox.db'}"


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


POOL: dict[str, Any] = {"pool_size": 40, "max_overflow": 10}
"""Enough kept-open connections for every thread of the server's pool (AnyIO runs up to
40 synchronous handlers at once): with fewer, a burst of checks queues for a connection
and each overflow connection is opened and closed again per request, which cost more
than half of the online check's time under load. PostgreSQL's default of 100 connections
leaves room for two server processes and the workers; see docs/deploy.md."""


class Database:
    """One database: its engine plus helpers for read and write transactions."""

    def __init__(self, url: str | None = None, *, echo: bool = False) -> None:
        self.url = normalise_url(url or default_url())
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        # hide_parameters: a database error's message (logged with every unexpected 500 and
        # by the worker) must not carry the bound values: webhook secrets, password hashes.
        kwargs: dict[str, Any] = {"echo": echo, "future": True, "hide_parameters": True}
        if self.is_sqlite:
            database = parsed.database or ""
            if database and database != ":memory:":
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            kwargs.update(POOL)
            if database in ("", ":memory:"):
                raise ValueError("use a SQLite file, not an in-memory database")
        else:
            # No ping on every checkout (a round trip per request on the hot path): connections
            # are recycled before servers drop idle ones, and a connection found dead answers
            # one 503 (nothing was written) while the pool replaces it.
            kwargs["pool_pre_ping"] = False
            kwargs["pool_recycle"] = 1800
            kwargs.update(POOL)
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: commits on success, rolls back on any exception."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(lockbox_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction with a consistent view."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(lockbox_write=False)
            with conn.begin():
                yield conn

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:  # any driver error means "not ready"
            return False

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("lockbox_write", True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class MigrationRefused(RuntimeError):
    """A migration found data it cannot carry over safely; the message says what to fix.

    The transaction is rolled back (on PostgreSQL and, for the batch steps, on SQLite),
    so nothing is half-migrated: fix the data and run the upgrade again.
    """


def migrations_config(db: Database) -> Any:
    """An Alembic config pointing at the packaged migrations and this database."""
    from alembic.config import Config

    here = Path(__file__).parent
    cfg = Config()
    cfg.set_main_option("script_location", str(here / "migrations"))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    cfg.attributes["engine"] = db.engine
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (idempotent)."""
    from alembic import command

    command.upgrade(migrations_config(db), revision)


def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
