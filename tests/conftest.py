"""Shared fixtures: a migrated database per test (SQLite and PostgreSQL), a manual clock,
and a populated 'world' of tenants and users in every role.

Every test that takes ``app`` runs once per database backend. PostgreSQL is
skipped when unreachable, unless ``LOCKBOX_TEST_POSTGRES=required`` (CI),
which turns that into a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from lockbox.clock import ManualClock
from lockbox.domain.roles import Principal
from lockbox.service import resource_services, tenants, users
from lockbox.service.app import Lockbox
from lockbox.store.db import Database, upgrade
from lockbox.store.tables import metadata

PG_BASE = os.environ.get(
    "LOCKBOX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PG_REQUIRED = os.environ.get("LOCKBOX_TEST_POSTGRES") == "required"


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def pg_url(schema: str) -> str:
    return f"{PG_BASE}?options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    # Unique per test run *and* worker, so concurrent runs never share a schema.
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))[:10]
    schema = f"lockbox_test_{run}_{_worker()}"
    try:
        admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:
        if PG_REQUIRED:
            pytest.fail(
                f"PostgreSQL is required (LOCKBOX_TEST_POSTGRES=required) but unreachable: {exc}"
            )
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    db = Database(pg_url(schema))
    upgrade(db)
    db.dispose()
    yield schema
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


def _truncate_pg(db: Database) -> None:
    """Empty every table; retried when it deadlocks with PostgreSQL's autovacuum (which takes
    a lock on a table TRUNCATE also wants, and is the one that should give way)."""
    names = ", ".join(t.name for t in metadata.sorted_tables)
    for attempt in range(5):
        try:
            with db.engine.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '10s'"))
                conn.execute(text(f"TRUNCATE {names} CASCADE"))
            return
        except OperationalError as exc:
            if attempt == 4 or getattr(exc.orig, "sqlstate", None) not in ("40P01", "55P03"):
                raise


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A freshly migrated, empty database of each backend."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "lockbox.db"
        shutil.copy(template, path)
        db = Database(f"sqlite:///{path}")
    else:
        schema = request.getfixturevalue("pg_schema")
        db = Database(pg_url(schema))
        _truncate_pg(db)
    yield db
    db.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def app(database: Database, clock: ManualClock) -> Lockbox:
    return Lockbox(database, clock)


@dataclass
class World:
    """Two tenants and one principal of every role (two of some, for separation of duties)."""

    app: Lockbox
    clock: ManualClock
    contoso: str
    fabrikam: str
    engineer: Principal
    engineer2: Principal
    manager: Principal
    manager2: Principal
    provider_admin: Principal
    service: Principal
    contoso_admin: Principal
    contoso_approver: Principal
    contoso_approver2: Principal
    contoso_auditor: Principal
    fabrikam_admin: Principal
    fabrikam_approver: Principal
    fabrikam_auditor: Principal

    def user(self, email: str, roles: list[str], tenant: str | None = None) -> Principal:
        return users.create_user(
            self.app, Principal.operator(), email=email, roles=roles, tenant=tenant
        ).principal()


#: The names of every principal a World holds, in declaration order.
PRINCIPAL_NAMES: tuple[str, ...] = tuple(
    f.name for f in fields(World) if f.type in ("Principal", Principal)
)


def make_world(app: Lockbox, clock: ManualClock) -> World:
    op = Principal.operator()
    contoso = tenants.create_tenant(
        app, op, slug="contoso", name="Contoso Ltd", email_domains=["contoso.test"]
    ).id
    fabrikam = tenants.create_tenant(
        app, op, slug="fabrikam", name="Fabrikam Inc", email_domains=["fabrikam.test"]
    ).id

    def mk(email: str, roles: list[str], tenant: str | None = None) -> Principal:
        return users.create_user(app, op, email=email, roles=roles, tenant=tenant).principal()

    world = World(
        app=app,
        clock=clock,
        contoso=contoso,
        fabrikam=fabrikam,
        engineer=mk("erin@provider.test", ["engineer"]),
        engineer2=mk("eddie@provider.test", ["engineer"]),
        manager=mk("mark@provider.test", ["manager"]),
        manager2=mk("mona@provider.test", ["manager", "engineer"]),
        provider_admin=mk("pat@provider.test", ["provider_admin"]),
        service=mk("mailstore@provider.test", ["resource_service"]),
        contoso_admin=mk("ines@contoso.test", ["tenant_admin"], "contoso"),
        contoso_approver=mk("paula@contoso.test", ["approver"], "contoso"),
        contoso_approver2=mk("quinn@contoso.test", ["approver"], "contoso"),
        contoso_auditor=mk("audrey@contoso.test", ["auditor"], "contoso"),
        fabrikam_admin=mk("fay@fabrikam.test", ["tenant_admin"], "fabrikam"),
        fabrikam_approver=mk("fred@fabrikam.test", ["approver"], "fabrikam"),
        fabrikam_auditor=mk("finn@fabrikam.test", ["auditor"], "fabrikam"),
    )
    # The mail store serves both tenants and (for the many tests that invent resource
    # names) every resource; tests of narrower registrations set their own.
    resource_services.register(
        app, op, world.service.id, tenants="*", prefixes=["*"], audience="lockbox-resource"
    )
    return world


@pytest.fixture
def world(app: Lockbox, clock: ManualClock) -> World:
    return make_world(app, clock)
