"""The grant stream's rows: appended under one lock, read in order by resource services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from lockbox.store import tables as t


@dataclass(frozen=True)
class GrantChange:
    seq: int
    at: datetime
    kind: str  # grant | end
    reason: str
    tenant_id: str
    tenant_slug: str
    request_id: str
    engineer_id: str
    engineer_email: str
    resources: tuple[str, ...]
    access_level: str
    access_deadline: datetime | None
    access_starts_at: datetime | None = None  # scheduled start, when later than the grant


def _row(m: Any) -> GrantChange:
    return GrantChange(
        seq=int(m["seq"]),
        at=m["at"],
        kind=m["kind"],
        reason=m["reason"],
        tenant_id=m["tenant_id"],
        tenant_slug=m["tenant_slug"],
        request_id=m["request_id"],
        engineer_id=m["engineer_id"],
        engineer_email=m["engineer_email"],
        resources=tuple(m["resources"] or ()),
        access_level=m["access_level"],
        access_deadline=m["access_deadline"],
        access_starts_at=m["access_starts_at"],
    )


_ADVANCE = (
    update(t.feed_head)
    .where(t.feed_head.c.id == 1)
    .values(seq=t.feed_head.c.seq + bindparam("count"))
    .returning(t.feed_head.c.seq)
)
_AFTER = (
    select(t.grant_changes)
    .where(t.grant_changes.c.seq > bindparam("seq"))
    .order_by(t.grant_changes.c.seq)
    .limit(bindparam("limit"))
)
_MAX = select(func.max(t.grant_changes.c.seq))


def _advance_head(conn: Connection, count: int) -> int:
    """Reserve ``count`` sequence numbers and return the last: one statement that also
    row-locks the head until commit (the last lock of the documented order)."""
    for _ in range(2):
        value = conn.execute(_ADVANCE, {"count": count}).scalar()
        if value is not None:
            return int(value)
        try:
            with conn.begin_nested():
                conn.execute(insert(t.feed_head).values(id=1, seq=0))
        except IntegrityError:
            continue  # created concurrently: advance that one
    raise RuntimeError("the grant feed head row cannot be created")


def append(conn: Connection, changes: list[dict[str, Any]]) -> list[int]:
    """Append rows (dicts of every column but ``seq``); returns their sequence numbers."""
    if not changes:
        return []
    last = _advance_head(conn, len(changes))
    seqs = list(range(last - len(changes) + 1, last + 1))
    conn.execute(
        insert(t.grant_changes), [{**c, "seq": s} for c, s in zip(changes, seqs, strict=True)]
    )
    return seqs


def head(conn: Connection) -> int:
    """The newest ``seq`` committed (0 when the stream is empty)."""
    value = conn.execute(_MAX).scalar()
    return int(value or 0)


def after(conn: Connection, seq: int, limit: int) -> list[GrantChange]:
    rows = conn.execute(_AFTER, {"seq": seq, "limit": limit}).mappings()
    return [_row(r) for r in rows]
