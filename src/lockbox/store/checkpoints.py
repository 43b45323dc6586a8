"""Checkpoint rows: kept forever, found by chain and sequence, and what is due for signing.

A row holds the statement's fields and the signature; the signed bytes are
rebuilt from them (:meth:`lockbox.domain.checkpoints.Checkpoint.statement`),
so the table cannot hold a statement that differs from what was signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import ScalarSelect

from lockbox.domain.audit import GENESIS_HASH, PROVIDER_CHAIN
from lockbox.domain.checkpoints import Checkpoint
from lockbox.domain.signing import b64, unb64
from lockbox.store import tables as t

_C = t.audit_checkpoints.c


@dataclass(frozen=True)
class StoredCheckpoint:
    id: str
    reason: str
    checkpoint: Checkpoint


def _row(row: RowMapping) -> StoredCheckpoint:
    return StoredCheckpoint(
        id=row["id"],
        reason=row["reason"],
        checkpoint=Checkpoint(
            tenant=row["tenant_id"],
            seq=row["seq"],
            hash=row["hash"],
            at=row["at"],
            kid=row["kid"],
            signature=unb64(row["signature"]),
        ),
    )


def insert_checkpoint(conn: Connection, checkpoint_id: str, cp: Checkpoint, reason: str) -> None:
    conn.execute(
        insert(t.audit_checkpoints).values(
            id=checkpoint_id,
            tenant_id=cp.tenant,
            seq=cp.seq,
            hash=cp.hash,
            at=cp.at,
            kid=cp.kid,
            signature=b64(cp.signature),
            reason=reason,
        )
    )


_NEWEST_FIRST = (_C.seq.desc(), _C.at.desc(), _C.id.desc())


def latest(conn: Connection, chain: str) -> StoredCheckpoint | None:
    row = (
        conn.execute(
            select(t.audit_checkpoints)
            .where(_C.tenant_id == chain)
            .order_by(*_NEWEST_FIRST)
            .limit(1)
        )
        .mappings()
        .first()
    )
    return _row(row) if row else None


def history(
    conn: Connection, chain: str, *, before: tuple[int, str] | None, limit: int
) -> list[StoredCheckpoint]:
    """Newest first; ``before`` is the (seq, id) of the last row of the previous page."""
    query = select(t.audit_checkpoints).where(_C.tenant_id == chain)
    if before is not None:
        seq, row_id = before
        query = query.where(or_(_C.seq < seq, and_(_C.seq == seq, _C.id < row_id)))
    rows = conn.execute(query.order_by(_C.seq.desc(), _C.id.desc()).limit(limit)).mappings()
    return [_row(r) for r in rows]


def at_sequences(conn: Connection, chain: str, seqs: list[int]) -> list[Checkpoint]:
    """Stored checkpoints of ``chain`` at these sequence numbers (for fork checks)."""
    if not seqs:
        return []
    rows = conn.execute(
        select(t.audit_checkpoints).where(_C.tenant_id == chain, _C.seq.in_(seqs))
    ).mappings()
    return [_row(r).checkpoint for r in rows]


def create_provider_head(conn: Connection) -> bool:
    """Register the provider's chain if its head row is missing and it has no records (a
    database built without migration 0005, or emptied by a test). Never for a chain that
    has records: a missing head there is tampering, for verification to report."""
    if conn.execute(
        select(t.audit_events.c.id).where(t.audit_events.c.tenant_id == PROVIDER_CHAIN).limit(1)
    ).first():
        return False
    try:
        with conn.begin_nested():
            conn.execute(
                insert(t.audit_heads).values(tenant_id=PROVIDER_CHAIN, seq=0, hash=GENESIS_HASH)
            )
    except IntegrityError:
        pass  # registered by a concurrent transaction meanwhile
    return True


def lock_head(conn: Connection, chain: str) -> tuple[int, str]:
    """The chain's head, row-locked until commit (PostgreSQL): no append slips in between
    reading it and signing it, and two workers never sign the same pass twice."""
    h = t.audit_heads.c
    row = conn.execute(select(h.seq, h.hash).where(h.tenant_id == chain).with_for_update()).first()
    if row is None:
        raise LookupError(f"no audit chain {chain}")
    return int(row.seq), str(row.hash)


def newest_at(conn: Connection, chain: str) -> datetime | None:
    return _aware(conn.execute(select(func.max(_C.at)).where(_C.tenant_id == chain)).scalar())


def daily_marks(conn: Connection, chain: str) -> tuple[datetime | None, datetime | None]:
    """(the last daily checkpoint's time, the first checkpoint's time) of ``chain``."""
    last_daily = conn.execute(
        select(func.max(_C.at)).where(_C.tenant_id == chain, _C.reason == "daily")
    ).scalar()
    first = conn.execute(select(func.min(_C.at)).where(_C.tenant_id == chain)).scalar()
    return _aware(last_daily), _aware(first)


@dataclass(frozen=True)
class ChainState:
    """A chain's head beside its checkpoints: what the worker decides from."""

    chain: str
    head_seq: int
    last_seq: int | None  # the highest sequence any checkpoint signed
    last_at: datetime | None  # the newest checkpoint's time
    last_daily_at: datetime | None
    first_at: datetime | None


def chain_states(conn: Connection) -> list[ChainState]:
    """Every chain that has records, with its checkpoint summary (one query)."""
    h = t.audit_heads.c

    def summary(
        column: ColumnElement[Any], where: ColumnElement[bool] | None = None
    ) -> ScalarSelect[Any]:
        inner = select(column).where(_C.tenant_id == h.tenant_id)
        if where is not None:
            inner = inner.where(where)
        return inner.scalar_subquery()

    query = select(
        h.tenant_id,
        h.seq,
        summary(func.max(_C.seq)).label("last_seq"),
        summary(func.max(_C.at)).label("last_at"),
        summary(func.max(_C.at), _C.reason == "daily").label("last_daily_at"),
        summary(func.min(_C.at)).label("first_at"),
    ).where(h.seq > 0)
    return [
        ChainState(
            chain=row.tenant_id,
            head_seq=row.seq,
            last_seq=row.last_seq,
            last_at=_aware(row.last_at),
            last_daily_at=_aware(row.last_daily_at),
            first_at=_aware(row.first_at),
        )
        for row in conn.execute(query).all()
    ]


def _aware(value: object) -> datetime | None:
    """An aggregate's time as an aware UTC datetime (SQLite returns text for it)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"the database returned {type(value).__name__} for a time")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
