"""The outbox dispatcher: claim due rows, deliver them, record the outcome.

Delivery is *at least once*. A batch of rows is claimed with a lease, and
each row's lease is confirmed and extended immediately before *that* row is
sent, so the lease guarding a send is measured from the send's start, not
from the batch's claim: a batch that takes longer than a lease (a slow mail
server) does not let a second worker send its tail again. A row whose lease
was lost before its turn is not sent (``outbox.lease_lost``); another worker
has it, or the next claim takes it. The row is marked ``sent`` after the
server accepted it; a worker that dies in between leaves the lease to run
out, and the row is sent again with the same ``Message-ID`` / ``webhook-id``,
so receivers can recognise the duplicate. Nothing is dropped silently: a row
that keeps failing is retried with exponential backoff and jitter, then
parked as ``failed``, visible in ``lockbox outbox list`` and the API, and
re-sendable from there.

The dispatcher is an adapter: it reads and writes the outbox only through
:mod:`lockbox.service.delivery`, like the API and the CLI go through the
service layer.
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
from lockbox.notify.webhooks import (
    HttpxWebhookSender,
    WebhookError,
    WebhookSender,
    build_request,
)
from lockbox.service import delivery
from lockbox.service.app import Lockbox
from lockbox.service.delivery import OutboxRow
from lockbox.service.notifications import ONLY_IF_DEADLINE
from lockbox.service.webhooks import DestinationPolicy, check_url

log = logging.getLogger("lockbox.worker")

#: Replies one e-mail may wait for, each for up to ``LOCKBOX_SMTP_TIMEOUT`` when the server
#: stalls: TCP connect, greeting, EHLO, MAIL FROM, RCPT TO, DATA, end of data. A fresh
#: connection is counted (the first message of a round, or the first after an error).
SMTP_WAITS = 7
SMTP_STARTTLS_WAITS = 3  # STARTTLS, the TLS handshake, EHLO again
SMTP_TLS_WAITS = 1  # the TLS handshake of implicit TLS
SMTP_AUTH_WAITS = 2  # AUTH LOGIN and CRAM-MD5 take two exchanges
#: Phases of one webhook POST, each bounded by ``LOCKBOX_WEBHOOK_TIMEOUT``: connect (with
#: TLS), write the request, read the answer.
WEBHOOK_WAITS = 3


class PermanentFailure(Exception):
    """Retrying cannot help (unknown topic, invalid address): park at once."""


class Skip(Exception):
    """The row no longer applies (its request moved on, its endpoint was deleted)."""


_COUNTERS = ("claimed", "sent", "retried", "parked", "skipped", "lost", "released")


@dataclass
class DispatchResult:
    """What one or more batches did; every claimed row ends in exactly one other counter.

    ``lost``: rows this dispatcher gave up because its lease on them was gone
    (before the send, or before it could record a failure or a skip); another
    worker or the next claim takes them. A send that overran its lease is
    still counted as ``sent`` (it was), and logged as ``outbox.lease_lost``.
    """

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    parked: int = 0
    skipped: int = 0
    lost: int = 0
    released: int = 0

    def add(self, other: DispatchResult) -> None:
        for name in _COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in _COUNTERS}


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


def worst_case_send_seconds(settings: Settings) -> float:
    """How long one send can take if the server stalls for the full timeout at every step.

    The lease renewed before a send has to outlast it, or another worker may
    claim the row and send it too. Counted for the configured SMTP security
    and login (see ``SMTP_*_WAITS``) and for a webhook POST; the longer wins,
    since either may be next.
    """
    waits = SMTP_WAITS
    if settings.smtp_security == "starttls":
        waits += SMTP_STARTTLS_WAITS
    elif settings.smtp_security == "tls":
        waits += SMTP_TLS_WAITS
    if settings.smtp_username:
        waits += SMTP_AUTH_WAITS
    return max(waits * settings.smtp_timeout, WEBHOOK_WAITS * settings.webhook_timeout)


def check_lease(settings: Settings, owner: str) -> timedelta:
    """The per-message lease: ``LOCKBOX_OUTBOX_LEASE_SECONDS``, checked against the timeouts.

    The configured value is used as it is, neither lengthened nor refused
    when it is below :func:`worst_case_send_seconds`, because it is also how
    long a crashed worker's rows stay blocked: lengthening it behind the
    operator's back would delay recovery beyond what they chose, and the
    worst case assumes a server that stalls for the whole timeout at every
    step, which is far from a normal send (milliseconds). An overrun costs at
    most a duplicate with the same ``Message-ID`` / ``webhook-id``, and it is
    reported (``outbox.lease_lost``). So a lease below the worst case is
    logged once as ``worker.lease_too_short`` with the number to set, and
    only a lease that cannot outlast even *one* stalled reply (every slow
    answer would risk a duplicate) is refused with ``ValueError``.
    """
    lease = settings.outbox_lease_seconds
    longest_wait = max(settings.smtp_timeout, settings.webhook_timeout)
    worst = worst_case_send_seconds(settings)
    if lease <= longest_wait:
        raise ValueError(
            f"LOCKBOX_OUTBOX_LEASE_SECONDS ({lease:g}) must be longer than the SMTP / webhook "
            f"timeout ({longest_wait:g}); at least {worst:g} covers the slowest send"
        )
    if lease < worst:
        log.warning(
            "worker.lease_too_short",
            extra={
                "fields": {"owner": owner, "lease_seconds": lease, "worst_case_send_seconds": worst}
            },
        )
    return timedelta(seconds=lease)


@dataclass
class Dispatcher:
    app: Lockbox
    settings: Settings
    mailer: Mailer | None = None
    webhook_sender: WebhookSender | None = None
    owner: str = field(default_factory=new_owner)
    stop: threading.Event = field(default_factory=threading.Event)
    rng: random.Random = field(default_factory=random.Random)
    #: How long a claim reserves a row, and how long each renewal before a send lasts.
    lease: timedelta = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.lease = check_lease(self.settings, self.owner)
        self._own_mailer = self.mailer is None
        self._own_sender = self.webhook_sender is None

    # -- resources -------------------------------------------------------------------

    def _mailer(self) -> Mailer:
        if self.mailer is None:
            self.mailer = SmtpMailer(self.settings)
        return self.mailer

    def _sender(self) -> WebhookSender:
        if self.webhook_sender is None:
            self.webhook_sender = HttpxWebhookSender(
                self.settings.webhook_timeout, policy=self._destinations()
            )
        return self.webhook_sender

    def _destinations(self) -> DestinationPolicy:
        """Where webhooks may go: public addresses, plus what the operator allow-listed."""
        return DestinationPolicy.from_settings(self.settings)

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

    def claim(self, limit: int) -> list[OutboxRow]:
        """Reserve up to ``limit`` due rows for this batch (each is confirmed before its send)."""
        return delivery.claim_batch(self.app, self.owner, limit=limit, lease=self.lease)

    def dispatch_batch(self, batch: int | None = None) -> DispatchResult:
        """Claim one batch of due rows and process them one by one."""
        result = DispatchResult()
        rows = self.claim(batch or self.settings.worker_batch_size)
        result.claimed = len(rows)
        for index, row in enumerate(rows):
            if self.stop.is_set():
                # Graceful shutdown: give the rest back instead of waiting for leases to run out.
                rest = [r.id for r in rows[index:]]
                result.released = delivery.release_leases(self.app, self.owner, rest)
                log.info("outbox.released", extra={"fields": {"rows": result.released}})
                break
            outcome = self.process(row)
            setattr(result, outcome, getattr(result, outcome) + 1)
        return result

    def process(self, row: OutboxRow) -> str:
        """Deliver one claimed row and record the outcome: sent, retried, parked, skipped or lost.

        The lease is renewed first, in its own transaction, so the send runs
        under a lease that started with it; if the row is no longer ours, it
        is not sent at all.
        """
        if not delivery.renew_lease(self.app, row.id, self.owner, lease=self.lease):
            self._lease_lost(row, "renew")
            return "lost"
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
            return self._skipped(row, str(exc), fields)
        except Exception as exc:
            return self._failed(row, exc, fields)
        if not delivery.record_sent(self.app, row.id, self.owner):
            self._lease_lost(row, "sent")  # recorded anyway; another worker may have sent it too
        log.info("outbox.sent", extra={"fields": fields})
        return "sent"

    def _lease_lost(self, row: OutboxRow, stage: str, **extra: object) -> None:
        """Report that this dispatcher no longer held the row at ``stage``.

        ``renew``: not sent (another worker has it, or the next claim will);
        ``sent``: sent, but the send overran the lease; ``failed`` / ``skipped``:
        the outcome was not recorded, the row belongs to its new holder.
        """
        fields = {"id": row.id, "owner": self.owner, "stage": stage, "channel": row.channel}
        log.warning("outbox.lease_lost", extra={"fields": {**fields, **extra}})

    def _skipped(self, row: OutboxRow, reason: str, fields: dict[str, object]) -> str:
        if not delivery.record_skipped(self.app, row.id, self.owner, reason):
            self._lease_lost(row, "skipped", reason=reason)
            return "lost"
        log.info("outbox.skipped", extra={"fields": {**fields, "reason": reason}})
        return "skipped"

    def _failed(self, row: OutboxRow, exc: Exception, fields: dict[str, object]) -> str:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        permanent = isinstance(exc, PermanentFailure | InvalidAddress | KeyError)
        if isinstance(exc, WebhookError):
            # The outbox (and whoever registered the URL) gets the category; the raw cause,
            # which could map the inside of the network, goes to the worker's log only.
            error, permanent = exc.category, exc.permanent
            fields = {**fields, "detail": exc.detail[:2000]}
        attempts = row.attempts + 1
        park = permanent or attempts >= self.settings.outbox_max_attempts
        retry_in = None if park else backoff(attempts, self.settings, self.rng)
        record = delivery.record_failure(
            self.app, row.id, self.owner, error=error, retry_in=retry_in
        )
        if not record.recorded:
            self._lease_lost(row, "failed", error=error)
            return "lost"
        outcome = "parked" if park else "retried"
        next_due = record.next_attempt_at
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

    def _check_still_relevant(self, row: OutboxRow) -> None:
        if row.only_if_state is None or row.request_id is None:
            return
        found = delivery.request_state(self.app, row.request_id)
        if found is None:
            raise Skip("the request no longer exists")
        state, access_deadline = found
        if state != row.only_if_state:
            raise Skip(f"the request is {state}, no longer {row.only_if_state}")
        announced = row.payload.get(ONLY_IF_DEADLINE)
        if announced is not None and announced != access_deadline:
            raise Skip("access was extended: its deadline moved")

    def _send_email(self, row: OutboxRow) -> None:
        try:
            rendered = render(
                row.topic,
                row.payload,
                self.app.now(),
                provider_name=self.settings.provider_name,
                admin_address=self.settings.public_address,
            )
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

    def _send_webhook(self, row: OutboxRow) -> None:
        hook = delivery.webhook_endpoint(self.app, row.recipient)
        if hook is None:
            raise Skip("the webhook endpoint was deleted")
        try:
            # Checked again at every delivery (rules and allow-list may have changed since
            # registration); the sender then resolves the host once and checks its answers.
            check_url(hook.url, policy=self._destinations())
        except ValidationError as exc:
            raise WebhookError("refused destination", exc.message, permanent=True) from exc
        body, request_headers = build_request(
            hook.format,
            row.id,
            row.payload,
            secret=hook.secret,
            signed_at=self._wall_now(),
            now=self.app.now(),
            provider_name=self.settings.provider_name,
        )
        self._sender().post(hook.url, body, request_headers)

    @staticmethod
    def _wall_now() -> datetime:
        # The signature timestamp is for the receiver's replay check against *its* clock,
        # so it is real time, not the application clock (which tests may move).
        return datetime.now(UTC)
