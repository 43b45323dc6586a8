"""Outbox rows: notifications written in the same transaction as the change they announce."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from lockbox.domain.ids import new_id
from lockbox.store import tables as t


@dataclass(frozen=True)
class OutboxMessage:
    channel: str  # "email" | "webhook"
    topic: str
    recipient: str  # an e-mail address or a webhook id
    payload: dict[str, Any]
    tenant_id: str | None = None
    request_id: str | None = None
    due_at: datetime | None = None
    only_if_state: str | None = None


def enqueue(conn: Connection, message: OutboxMessage, now: datetime) -> str:
    return enqueue_many(conn, [message], now)[0]


def enqueue_many(conn: Connection, messages: list[OutboxMessage], now: datetime) -> list[str]:
    """Queue several messages in one statement (one change often notifies many people)."""
    rows: list[dict[str, Any]] = [
        {
            "id": new_id("outbox"),
            "channel": m.channel,
            "topic": m.topic,
            "tenant_id": m.tenant_id,
            "request_id": m.request_id,
            "recipient": m.recipient,
            "payload": m.payload,
            "created_at": now,
            "due_at": m.due_at or now,
            "only_if_state": m.only_if_state,
            "status": "pending",
            "attempts": 0,
        }
        for m in messages
    ]
    if rows:
        conn.execute(insert(t.outbox), rows)
    return [str(r["id"]) for r in rows]


_ACTIVE_WEBHOOKS = select(t.webhooks.c.id, t.webhooks.c.tenant_id, t.webhooks.c.events).where(
    t.webhooks.c.active.is_(True),
    (t.webhooks.c.tenant_id == bindparam("tenant_id")) | t.webhooks.c.tenant_id.is_(None),
)


def active_webhooks(conn: Connection, tenant_id: str | None) -> list[dict[str, Any]]:
    """Endpoints of this tenant plus the provider's own (tenant-less) endpoints."""
    return [
        dict(row) for row in conn.execute(_ACTIVE_WEBHOOKS, {"tenant_id": tenant_id}).mappings()
    ]


# -- delivery ------------------------------------------------------------------------

STATUSES = ("pending", "sent", "failed", "skipped")


@dataclass(frozen=True)
class OutboxRow:
    id: str
    channel: str
    topic: str
    tenant_id: str | None
    request_id: str | None
    recipient: str
    payload: dict[str, Any]
    created_at: datetime
    due_at: datetime
    only_if_state: str | None
    status: str
    attempts: int
    last_error: str | None
    lease_until: datetime | None
    lease_owner: str | None
    sent_at: datetime | None


def _row(mapping: Any) -> OutboxRow:
    return OutboxRow(**{c.name: mapping[c.name] for c in t.outbox.columns})


def _claimable(now: datetime) -> ColumnElement[bool]:
    o = t.outbox.c
    return and_(
        o.status == "pending",
        o.due_at <= now,
        or_(o.lease_until.is_(None), o.lease_until <= now),
    )


def claim(
    conn: Connection,
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    skip_locked: bool,
) -> list[OutboxRow]:
    """Lease up to ``limit`` due rows to ``owner``; call inside a write transaction.

    PostgreSQL: the candidates are row-locked with ``FOR UPDATE SKIP LOCKED``,
    so concurrent claimers pick disjoint rows without waiting. SQLite: write
    transactions are serialised (``BEGIN IMMEDIATE``). On both, the lease is a
    conditional ``UPDATE … WHERE`` the row is still unleased, so a row is
    only ever claimed by one live worker; a lease that runs out (the worker
    died) makes the row claimable again: at most a duplicate, never a loss.
    """
    o = t.outbox.c
    query = select(o.id).where(_claimable(now)).order_by(o.due_at, o.id).limit(limit)
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    ids = list(conn.execute(query).scalars())
    if not ids:
        return []
    conn.execute(
        update(t.outbox)
        .where(o.id.in_(ids), _claimable(now))
        .values(lease_owner=owner, lease_until=lease_until)
    )
    rows = conn.execute(
        select(t.outbox)
        .where(o.id.in_(ids), o.lease_owner == owner, o.status == "pending")
        .order_by(o.due_at, o.id)
    ).mappings()
    return [_row(r) for r in rows]


def renew(
    conn: Connection, row_id: str, owner: str, *, now: datetime, lease_until: datetime
) -> bool:
    """Extend ``owner``'s live lease on one pending row to ``lease_until``; False if it is gone.

    The conditions are the whole point: the row must still be pending, still
    leased to ``owner``, and the lease must not have run out (from then on the
    row was claimable, so the claim no longer vouches for it). One
    conditional ``UPDATE``: on PostgreSQL it waits for a concurrent claim's
    row lock and then re-checks the owner, on SQLite writers are serialised;
    either way a row is never renewed by one worker while leased to another.
    """
    o = t.outbox.c
    result = conn.execute(
        update(t.outbox)
        .where(
            o.id == row_id,
            o.lease_owner == owner,
            o.status == "pending",
            o.lease_until > now,
        )
        .values(lease_until=lease_until)
    )
    return result.rowcount == 1


def mark_sent(conn: Connection, row_id: str, now: datetime) -> bool:
    """Record a delivery. Whoever sent it, it *was* sent: no owner check here."""
    o = t.outbox.c
    result = conn.execute(
        update(t.outbox)
        .where(o.id == row_id, o.status == "pending")
        .values(
            status="sent",
            sent_at=now,
            attempts=o.attempts + 1,
            lease_until=None,
            lease_owner=None,
        )
    )
    return result.rowcount == 1


def set_payload(conn: Connection, row_id: str, payload: dict[str, Any]) -> None:
    conn.execute(update(t.outbox).where(t.outbox.c.id == row_id).values(payload=payload))


def mark_failed(
    conn: Connection,
    row_id: str,
    owner: str,
    *,
    error: str,
    next_due: datetime | None,
) -> bool:
    """Record a failed attempt: retry at ``next_due``, or park as failed if it is None."""
    o = t.outbox.c
    values: dict[str, Any] = {
        "attempts": o.attempts + 1,
        "last_error": error[:2000],
        "lease_until": None,
        "lease_owner": None,
    }
    if next_due is None:
        values["status"] = "failed"
    else:
        values["due_at"] = next_due
    result = conn.execute(
        update(t.outbox)
        .where(o.id == row_id, o.status == "pending", o.lease_owner == owner)
        .values(**values)
    )
    return result.rowcount == 1


def mark_skipped(conn: Connection, row_id: str, owner: str, reason: str) -> bool:
    o = t.outbox.c
    result = conn.execute(
        update(t.outbox)
        .where(o.id == row_id, o.status == "pending", o.lease_owner == owner)
        .values(status="skipped", last_error=reason[:2000], lease_until=None, lease_owner=None)
    )
    return result.rowcount == 1


def release(conn: Connection, owner: str, row_ids: list[str] | None = None) -> int:
    """Give back leases (graceful shutdown) so another worker can claim the rows at once."""
    o = t.outbox.c
    query = update(t.outbox).where(o.lease_owner == owner, o.status == "pending")
    if row_ids is not None:
        query = query.where(o.id.in_(row_ids))
    return conn.execute(query.values(lease_until=None, lease_owner=None)).rowcount


def get_row(conn: Connection, row_id: str) -> OutboxRow | None:
    row = conn.execute(select(t.outbox).where(t.outbox.c.id == row_id)).mappings().first()
    return _row(row) if row else None


def list_rows(
    conn: Connection,
    *,
    status: str | None = None,
    tenant_id: str | None = None,
    request_id: str | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int = 100,
) -> list[OutboxRow]:
    """Newest first; ``before`` is the (created_at, id) of the last row of the previous page."""
    o = t.outbox.c
    query = select(t.outbox)
    if status is not None:
        query = query.where(o.status == status)
    if tenant_id is not None:
        query = query.where(o.tenant_id == tenant_id)
    if request_id is not None:
        query = query.where(o.request_id == request_id)
    if before is not None:
        at, last_id = before
        query = query.where(or_(o.created_at < at, and_(o.created_at == at, o.id < last_id)))
    query = query.order_by(o.created_at.desc(), o.id.desc()).limit(limit)
    return [_row(r) for r in conn.execute(query).mappings()]


def requeue(conn: Connection, row_id: str, now: datetime) -> bool:
    """Make a parked (failed) row pending again, due now, with a fresh attempt budget."""
    o = t.outbox.c
    result = conn.execute(
        update(t.outbox)
        .where(o.id == row_id, o.status == "failed")
        .values(status="pending", due_at=now, attempts=0, lease_until=None, lease_owner=None)
    )
    return result.rowcount == 1


def count_by_status(conn: Connection) -> dict[str, int]:
    o = t.outbox.c
    rows = conn.execute(select(o.status, func.count()).group_by(o.status)).all()
    return {status: int(n) for status, n in rows}


# -- webhook endpoints ----------------------------------------------------------------


@dataclass(frozen=True)
class WebhookRow:
    id: str
    tenant_id: str | None
    url: str = field(repr=False)  # may hold a credential (a Slack or Teams URL is one)
    secret: str = field(repr=False)  # never in a log line or traceback
    events: list[str]
    active: bool
    created_at: datetime
    created_by: str
    format: str = "standard"  # standard | slack | teams


def _webhook(mapping: Any) -> WebhookRow:
    return WebhookRow(**{c.name: mapping[c.name] for c in t.webhooks.columns})


def insert_webhook(conn: Connection, row: WebhookRow) -> None:
    conn.execute(
        insert(t.webhooks).values({c.name: getattr(row, c.name) for c in t.webhooks.columns})
    )


def get_webhook(conn: Connection, webhook_id: str) -> WebhookRow | None:
    row = conn.execute(select(t.webhooks).where(t.webhooks.c.id == webhook_id)).mappings().first()
    return _webhook(row) if row else None


def list_webhooks(
    conn: Connection, *, tenant_id: str | None, provider_level: bool, any_tenant: bool
) -> list[WebhookRow]:
    """Endpoints of ``tenant_id``; with ``provider_level`` also tenant-less ones; or all."""
    w = t.webhooks.c
    query = select(t.webhooks)
    if not any_tenant:
        clauses = []
        if tenant_id is not None:
            clauses.append(w.tenant_id == tenant_id)
        if provider_level:
            clauses.append(w.tenant_id.is_(None))
        if not clauses:
            return []
        query = query.where(or_(*clauses))
    query = query.order_by(w.created_at, w.id)
    return [_webhook(r) for r in conn.execute(query).mappings()]


def delete_webhook(conn: Connection, webhook_id: str) -> bool:
    result = conn.execute(delete(t.webhooks).where(t.webhooks.c.id == webhook_id))
    return result.rowcount == 1
