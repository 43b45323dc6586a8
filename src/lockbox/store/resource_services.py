"""Rows saying what each resource service serves (tenants, resource prefixes, audience)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select
from sqlalchemy.engine import RowMapping

from lockbox.domain.resource_service import ServiceScope
from lockbox.store import tables as t


def _scope(row: RowMapping) -> ServiceScope:
    return ServiceScope(
        user_id=row["user_id"],
        all_tenants=bool(row["all_tenants"]),
        tenant_ids=frozenset(row["tenant_ids"] or ()),
        prefixes=tuple(row["prefixes"] or ()),
        audience=row["audience"],
    )


_BY_USER = select(t.resource_services).where(t.resource_services.c.user_id == bindparam("user_id"))


def get(conn: Connection, user_id: str) -> ServiceScope | None:
    row = conn.execute(_BY_USER, {"user_id": user_id}).mappings().first()
    return _scope(row) if row else None


def by_audience(conn: Connection, audience: str) -> ServiceScope | None:
    row = (
        conn.execute(select(t.resource_services).where(t.resource_services.c.audience == audience))
        .mappings()
        .first()
    )
    return _scope(row) if row else None


def put(conn: Connection, scope: ServiceScope, now: datetime) -> None:
    """Replace a service's registration (delete + insert: one statement shape on both databases)."""
    conn.execute(delete(t.resource_services).where(t.resource_services.c.user_id == scope.user_id))
    conn.execute(
        insert(t.resource_services).values(
            user_id=scope.user_id,
            audience=scope.audience,
            all_tenants=scope.all_tenants,
            tenant_ids=sorted(scope.tenant_ids),
            prefixes=list(scope.prefixes),
            updated_at=now,
        )
    )
