"""Outbox delivery as use cases: everything the worker's dispatcher does to the database.

The API and the CLI reach the store only through the service layer; the
dispatcher (:mod:`lockbox.notify.dispatcher`) does too, through this module,
so the rules of a lease (who may renew it, when an outcome still counts) live
next to the other use cases and not in an adapter. Each function is one
short transaction of its own: nothing here is ever held open while a message
is on the wire, because a send can take as long as the SMTP or webhook
timeouts allow and a transaction open that long would block other workers
(SQLite) or hold row locks (PostgreSQL).

There is no acting principal: the worker is the system delivering what
committed changes already decided to send. Rows carry only what the
dispatcher needs to build the message; nothing here decides *whether* to
notify anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from lockbox.domain.audit import format_time
from lockbox.service.app import Lockbox
from lockbox.service.notifications import SECRET_KEYS, redact
from lockbox.store import outbox as store
from lockbox.store import repositories as repo
from lockbox.store.outbox import OutboxRow, WebhookRow

__all__ = [
    "FailureRecord",
    "OutboxRow",
    "WebhookRow",
    "claim_batch",
    "record_failure",
    "record_sent",
    "record_skipped",
    "release_leases",
    "renew_lease",
    "request_state",
    "webhook_endpoint",
]


def claim_batch(app: Lockbox, owner: str, *, limit: int, lease: timedelta) -> list[OutboxRow]:
    """Lease up to ``limit`` due rows to ``owner`` for ``lease``, oldest due first.

    The claim only reserves the rows for this batch: each one is confirmed
    with :func:`renew_lease` right before it is sent, so a batch that outlives
    this lease gives its tail to other workers instead of sending it twice.
    """
    with app.tx() as tx:
        return store.claim(
            tx.conn,
            owner=owner,
            now=tx.now,
            lease_until=tx.now + lease,
            limit=limit,
            skip_locked=app.db.dialect == "postgresql",
        )


def renew_lease(app: Lockbox, row_id: str, owner: str, *, lease: timedelta) -> bool:
    """Confirm ``owner`` still holds a live lease on the row and extend it by ``lease`` from now.

    Called immediately before a send, in its own committed transaction, so
    the lease that guards the send is measured from the send's start, not
    from the batch's claim. False means the lease was lost (it ran out, and
    perhaps another worker claimed the row, or the row is done): the caller
    must not send.
    """
    with app.tx() as tx:
        return store.renew(tx.conn, row_id, owner, now=tx.now, lease_until=tx.now + lease)


def record_sent(app: Lockbox, row_id: str, owner: str) -> bool:
    """Mark the row ``sent``, whoever holds it now; True if ``owner``'s lease was still live.

    The message *was* accepted by the server, so the delivery is recorded
    even when the lease ran out during the send (recording nothing would
    only make another worker send it again later). False tells the caller
    the send overran its lease, so it can be reported: another worker may
    have sent the same message meanwhile.
    """
    with app.tx() as tx:
        row = store.get_row(tx.conn, row_id)
        held = (
            row is not None
            and row.status == "pending"
            and row.lease_owner == owner
            and row.lease_until is not None
            and row.lease_until > tx.now
        )
        store.mark_sent(tx.conn, row_id, tx.now)
        if row is not None and SECRET_KEYS & row.payload.keys():
            # A one-time code has reached its owner's mailbox: it need not stay in ours.
            store.set_payload(tx.conn, row_id, redact(row.payload))
    return held


@dataclass(frozen=True)
class FailureRecord:
    """The outcome of :func:`record_failure`.

    ``recorded`` is False when ``owner`` no longer held the row: the attempt
    is then not counted (the row belongs to whoever claimed it).
    ``next_attempt_at`` is None when the row was parked.
    """

    recorded: bool
    next_attempt_at: datetime | None


def record_failure(
    app: Lockbox, row_id: str, owner: str, *, error: str, retry_in: timedelta | None
) -> FailureRecord:
    """Count a failed attempt: retry ``retry_in`` from now, or park the row if that is None.

    Only the lease owner may do this, so a worker that lost the row cannot
    reschedule or park it under the worker that holds it now.
    """
    with app.tx() as tx:
        next_due = None if retry_in is None else tx.now + retry_in
        recorded = store.mark_failed(tx.conn, row_id, owner, error=error, next_due=next_due)
    return FailureRecord(recorded=recorded, next_attempt_at=next_due)


def record_skipped(app: Lockbox, row_id: str, owner: str, reason: str) -> bool:
    """Mark the row ``skipped`` (it no longer applies); False if ``owner`` lost it meanwhile."""
    with app.tx() as tx:
        return store.mark_skipped(tx.conn, row_id, owner, reason)


def release_leases(app: Lockbox, owner: str, row_ids: list[str] | None = None) -> int:
    """Give back ``owner``'s leases (all, or these rows) so another worker can claim them now.

    Used on graceful shutdown: waiting for the leases to run out would only
    delay those messages.
    """
    with app.tx() as tx:
        return store.release(tx.conn, owner, row_ids)


def webhook_endpoint(app: Lockbox, webhook_id: str) -> WebhookRow | None:
    """The endpoint a webhook row is addressed to, or None if it was deleted or deactivated.

    Read at send time, not at enqueue time, so a deleted endpoint receives
    nothing more and a rotated URL is honoured.
    """
    with app.read() as tx:
        hook = store.get_webhook(tx.conn, webhook_id)
    return hook if hook is not None and hook.active else None


def request_state(app: Lockbox, request_id: str) -> tuple[str, str | None] | None:
    """The request's effective state now (deadlines applied) and its access deadline
    (formatted like the payloads), or None if it no longer exists.

    Effective, not stored: a reminder must not go out for a request whose
    approval window has passed even if the sweeper has not recorded the
    expiry yet; and a warning that access ends soon must not go out once an
    extension moved the deadline.
    """
    with app.read() as tx:
        request = repo.get_request(tx.conn, request_id)
        now = tx.now
    if request is None:
        return None
    deadline = format_time(request.access_deadline) if request.access_deadline else None
    return request.effective_state(now).value, deadline
