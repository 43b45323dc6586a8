"""Rows of the ``delegations`` table (see :mod:`lockbox.domain.delegation`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from lockbox.domain.delegation import Delegation
from lockbox.store import tables as t

_C = t.delegations.c


def _delegation(row: RowMapping) -> Delegation:
    return Delegation(**{name: row[name] for name in Delegation.__dataclass_fields__})


def _in_force(now: datetime) -> Any:
    return and_(_C.revoked_at.is_(None), _C.starts_at <= now, _C.ends_at > now)


def insert_delegation(conn: Connection, delegation: Delegation) -> None:
    values = {name: getattr(delegation, name) for name in Delegation.__dataclass_fields__}
    conn.execute(insert(t.delegations).values(**values))


def get_delegation(conn: Connection, delegation_id: str) -> Delegation | None:
    row = conn.execute(select(t.delegations).where(_C.id == delegation_id)).mappings().first()
    return _delegation(row) if row else None


def list_delegations(
    conn: Connection, tenant_id: str, *, person: str | None, now: datetime, limit: int = 200
) -> list[Delegation]:
    """The tenant's delegations not yet over (``person``: only those from or to them)."""
    query = select(t.delegations).where(
        _C.tenant_id == tenant_id, _C.revoked_at.is_(None), _C.ends_at > now
    )
    if person is not None:
        query = query.where(or_(_C.from_user == person, _C.to_user == person))
    rows = conn.execute(query.order_by(_C.starts_at, _C.id).limit(limit)).mappings()
    return [_delegation(r) for r in rows]


def held_by(conn: Connection, to_user: str, now: datetime) -> list[Delegation]:
    """The delegations ``to_user`` holds now."""
    query = select(t.delegations).where(_C.to_user == to_user, _in_force(now))
    return [_delegation(r) for r in conn.execute(query.order_by(_C.id)).mappings()]


def given_by(conn: Connection, from_users: Sequence[str], now: datetime) -> list[Delegation]:
    """The delegations in force now from any of ``from_users``."""
    if not from_users:
        return []
    query = select(t.delegations).where(_C.from_user.in_(list(from_users)), _in_force(now))
    return [_delegation(r) for r in conn.execute(query.order_by(_C.id)).mappings()]


def revoke(conn: Connection, delegation_id: str, at: datetime, by: str) -> bool:
    done = conn.execute(
        update(t.delegations)
        .where(_C.id == delegation_id, _C.revoked_at.is_(None))
        .values(revoked_at=at, revoked_by=by)
    )
    return done.rowcount == 1
