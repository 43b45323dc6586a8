"""The outbox as operators see it: list, show, and re-send parked messages.

Only ``outbox.manage`` (the provider admin) may do this: rows name recipients
of every tenant.
"""

from __future__ import annotations

from typing import Any

from lockbox.domain.errors import InvalidTransition, NotFound, ValidationError, present
from lockbox.domain.ids import optional_id, validate_cursor, validate_id
from lockbox.domain.permissions import Intent, allows
from lockbox.domain.roles import Principal
from lockbox.service.app import Lockbox, log
from lockbox.service.notifications import redact
from lockbox.service.views import ts
from lockbox.store import outbox as store
from lockbox.store import repositories as repo
from lockbox.store.outbox import OutboxRow

MAX_PAGE = 500


def _authorize(actor: Principal) -> None:
    if not allows(actor, Intent.OUTBOX_MANAGE, None):
        # Not even the existence of the outbox is anyone else's business.
        raise NotFound("outbox not found")


def list_outbox(
    app: Lockbox,
    actor: Principal,
    *,
    status: str | None = None,
    tenant: str | None = None,
    request_id: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[OutboxRow], str | None]:
    """A page of rows, newest first, and the cursor of the next page (or None)."""
    _authorize(actor)
    optional_id(tenant, "tenant", "tenant")
    optional_id(request_id, "request", "request_id")
    cursor = validate_cursor(cursor)
    if status is not None and status not in store.STATUSES:
        raise ValidationError("status", f"must be one of {', '.join(store.STATUSES)}")
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError("limit", f"must be between 1 and {MAX_PAGE}")
    before = None
    if cursor:
        at, last_id = repo.decode_cursor(cursor, 2)
        before = (repo.cursor_time(at), last_id)
    with app.read() as tx:
        tenant_id = None
        if tenant is not None:
            found = repo.get_tenant(tx.conn, tenant)
            if found is None:
                raise NotFound("tenant not found")
            tenant_id = found.id
        rows = store.list_rows(
            tx.conn,
            status=status,
            tenant_id=tenant_id,
            request_id=request_id,
            before=before,
            limit=limit + 1,
        )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = repo.encode_cursor(last.created_at.isoformat(), last.id)
    return rows, next_cursor


def get_message(app: Lockbox, actor: Principal, message_id: str) -> OutboxRow:
    _authorize(actor)
    validate_id(message_id, "outbox", "message_id")
    with app.read() as tx:
        row = store.get_row(tx.conn, message_id)
    if row is None:
        raise NotFound("outbox message not found")
    return row


def retry_message(app: Lockbox, actor: Principal, message_id: str) -> OutboxRow:
    """Put a parked (``failed``) message back in the queue, due now, with a fresh attempt budget."""
    _authorize(actor)
    validate_id(message_id, "outbox", "message_id")
    with app.tx() as tx:
        row = store.get_row(tx.conn, message_id)
        if row is None:
            raise NotFound("outbox message not found")
        if row.status != "failed" or not store.requeue(tx.conn, row.id, tx.now):
            raise InvalidTransition(
                f"only failed messages can be retried; this one is {row.status}", state=row.status
            )
        fresh = present(store.get_row(tx.conn, row.id), "the re-queued message")
    log.info("outbox message %s re-queued by %s", row.id, actor.id)
    return fresh


def counts(app: Lockbox, actor: Principal) -> dict[str, int]:
    _authorize(actor)
    with app.read() as tx:
        found = store.count_by_status(tx.conn)
    return {status: found.get(status, 0) for status in store.STATUSES}


def view(row: OutboxRow, *, payload: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": row.id,
        "channel": row.channel,
        "topic": row.topic,
        "tenant_id": row.tenant_id,
        "request_id": row.request_id,
        "recipient": row.recipient,
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": ts(row.created_at),
        "due_at": ts(row.due_at),
        "sent_at": ts(row.sent_at),
        "lease_until": ts(row.lease_until),
        "only_if_state": row.only_if_state,
    }
    if payload:
        data["payload"] = redact(row.payload)  # a queued one-time code is its owner's alone
    return data
