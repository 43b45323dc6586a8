"""The outbox dispatcher: claim due rows, deliver them, record the outcome.

Delivery is *at least once*. A row is leased before it is sent and marked
``sent`` after; a worker that dies in between leaves the lease to run out, and
the row is sent again with the same ``Message-ID`` / ``webhook-id``, so
receivers can recognise the duplicate. Nothing is dropped silently: a row
that keeps failing is retried with exponential backoff and jitter, then
parked as ``failed``, visible in ``lockbox outbox list`` and the API, and
re-sendable from there.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from lockbox.config import Settings
from lockbox.domain.errors import ValidationError
from lockbox.notify.mailer import Mailer, SmtpMailer
from lockbox.notify.render import InvalidAddress, build_email, render
from lockbox.notify.webhooks import HttpxWebhookSender, WebhookSender, body_bytes, headers
from lockbox.service.app import Lockbox
from lockbox.store import outbox as store
from lockbox.store import repositories as repo

log = logging.getLogger("lockbox.worker")


class PermanentFailure(Exception):
    """Retrying cannot help (unknown topic, invalid address): park at once."""


class Skip(Exception):
    """The row no longer applies (its request moved on, its endpoint was deleted)."""


@dataclass
class DispatchResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    parked: int = 0
    skipped: int = 0
    released: int = 0

    def add(self, other: DispatchResult) -> None:
        for name in ("claimed", "sent", "retried", "parked", "skipped", "released"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {
            "claimed": self.claimed,
            "sent": self.sent,
            "retried": self.retried,
            "parked": self.parked,
            "skipped": self.skipped,
            "released": self.released,
        }


def new_owner() -> str:
    """A lease owner name: host, process and a random part (unique per dispatcher)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"


def backoff(attempts: int, settings: Settings, rng: random.Random) -> timedelta:
    """Delay before the next try after ``attempts`` failures: exponential, capped, jittered.

    "Equal jitter": between half and all of ``base * 2**(attempts-1)`` (capped
    at the maximum), so retries spread out but never come back too early.
    """
    exp = settings.outbox_backoff_base_seconds * (2 ** max(attempts - 1, 0))
    delay = min(exp, settings.outbox_backoff_max_seconds)
    return timedelta(seconds=delay / 2 + rng.uniform(0, delay / 2))


@dataclass
class Dispatcher:
    app: Lockbox
    settings: Settings
    mailer: Mailer | None = None
    webhook_sender: WebhookSender | None = None
    owner: str = field(default_factory=new_owner)
    stop: threading.Event = field(default_factory=threading.Event)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._own_mailer = self.mailer is None
        self._own_sender = self.webhook_sender is None

    # -- resources -------------------------------------------------------------------

    def _mailer(self) -> Mailer:
        if self.mailer is None:
            self.mailer = SmtpMailer(self.settings)
        return self.mailer

    def _sender(self) -> WebhookSender:
        if self.webhook_sender is None:
            self.webhook_sender = HttpxWebhookSender(self.settings.webhook_timeout)
        return self.webhook_sender

    def close(self) -> None:
        """Close connections this dispatcher opened itself."""
        if self._own_mailer and self.mailer is not None:
            self.mailer.close()
            self.mailer = None
        if self._own_sender and self.webhook_sender is not None:
            self.webhook_sender.close()
            self.webhook_sender = None

    # -- the loop --------------------------------------------------------------------

    def dispatch_due(
        self, batch: int | None = None, max_batches: int | None = None
    ) -> DispatchResult:
        """Deliver batches until nothing is due, ``stop`` is set, or ``max_batches`` ran."""
        total = DispatchResult()
        done = 0
        try:
            while not self.stop.is_set() and (max_batches is None or done < max_batches):
                result = self.dispatch_batch(batch)
                total.add(result)
                done += 1
                if result.claimed == 0:
                    break
        finally:
            if self.mailer is not None:
                self.mailer.close()  # one SMTP session per round, not one per worker life
        return total

    def claim(self, limit: int) -> list[store.OutboxRow]:
        with self.app.tx() as tx:
            lease = timedelta(seconds=self.settings.outbox_lease_seconds)
            return store.claim(
                tx.conn,
                owner=self.owner,
                now=tx.now,
                lease_until=tx.now + lease,
                limit=limit,
                skip_locked=self.app.db.dialect == "postgresql",
            )

    def dispatch_batch(self, batch: int | None = None) -> DispatchResult:
        """Claim one batch of due rows and process them one by one."""
        result = DispatchResult()
        rows = self.claim(batch or self.settings.worker_batch_size)
        result.claimed = len(rows)
        for index, row in enumerate(rows):
            if self.stop.is_set():
                # Graceful shutdown: give the rest back instead of waiting for leases to run out.
                rest = [r.id for r in rows[index:]]
                with self.app.tx() as tx:
                    result.released = store.release(tx.conn, self.owner, rest)
                log.info("outbox.released", extra={"fields": {"rows": result.released}})
                break
            outcome = self.process(row)
            setattr(result, outcome, getattr(result, outcome) + 1)
        return result

    def process(self, row: store.OutboxRow) -> str:
        """Deliver one claimed row and record the outcome: sent, retried, parked or skipped."""
        fields: dict[str, object] = {
            "outbox_id": row.id,
            "channel": row.channel,
            "topic": row.topic,
            "attempt": row.attempts + 1,
        }
        try:
            self._check_still_relevant(row)
            if row.channel == "email":
                self._send_email(row)
            elif row.channel == "webhook":
                self._send_webhook(row)
            else:
                raise PermanentFailure(f"unknown channel {row.channel!r}")
        except Skip as exc:
            with self.app.tx() as tx:
                store.mark_skipped(tx.conn, row.id, self.owner, str(exc))
            log.info("outbox.skipped", extra={"fields": {**fields, "reason": str(exc)}})
            return "skipped"
        except Exception as exc:
            return self._failed(row, exc, fields)
        with self.app.tx() as tx:
            store.mark_sent(tx.conn, row.id, tx.now)
        log.info("outbox.sent", extra={"fields": fields})
        return "sent"

    def _failed(self, row: store.OutboxRow, exc: Exception, fields: dict[str, object]) -> str:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        attempts = row.attempts + 1
        permanent = isinstance(exc, PermanentFailure | InvalidAddress | KeyError)
        with self.app.tx() as tx:
            if permanent or attempts >= self.settings.outbox_max_attempts:
                store.mark_failed(tx.conn, row.id, self.owner, error=error, next_due=None)
                outcome = "parked"
                next_due = None
            else:
                next_due = tx.now + backoff(attempts, self.settings, self.rng)
                store.mark_failed(tx.conn, row.id, self.owner, error=error, next_due=next_due)
                outcome = "retried"
        level = logging.ERROR if outcome == "parked" else logging.WARNING
        log.log(
            level,
            f"outbox.{outcome}",
            extra={
                "fields": {
                    **fields,
                    "error": error,
                    "next_attempt_at": next_due.isoformat() if next_due else None,
                }
            },
        )
        return outcome

    # -- channels ----------------------------------------------------------------------

    def _check_still_relevant(self, row: store.OutboxRow) -> None:
        if row.only_if_state is None or row.request_id is None:
            return
        with self.app.read() as tx:
            request = repo.get_request(tx.conn, row.request_id)
            now = tx.now
        if request is None:
            raise Skip("the request no longer exists")
        state = request.effective_state(now).value
        if state != row.only_if_state:
            raise Skip(f"the request is {state}, no longer {row.only_if_state}")

    def _send_email(self, row: store.OutboxRow) -> None:
        try:
            rendered = render(row.topic, row.payload, self.app.now())
        except KeyError as exc:
            raise PermanentFailure(f"no template for topic {row.topic!r}") from exc
        message = build_email(
            row_id=row.id,
            recipient=row.recipient,
            sender=self.settings.mail_from,
            rendered=rendered,
            now=self.app.now(),
            domain=self.settings.message_id_domain,
        )
        self._mailer().send(message)

    def _send_webhook(self, row: store.OutboxRow) -> None:
        from lockbox.service.webhooks import check_url

        with self.app.read() as tx:
            hook = store.get_webhook(tx.conn, row.recipient)
        if hook is None or not hook.active:
            raise Skip("the webhook endpoint was deleted")
        try:
            check_url(hook.url, allow_http_loopback=self.settings.webhook_allow_http_loopback)
        except ValidationError as exc:
            raise PermanentFailure(exc.message) from exc
        body = body_bytes(row.payload)
        self._sender().post(hook.url, body, headers(row.id, hook.secret, body, self._wall_now()))

    @staticmethod
    def _wall_now() -> datetime:
        # The signature timestamp is for the receiver's replay check against *its* clock,
        # so it is real time, not the application clock (which tests may move).
        return datetime.now(UTC)
