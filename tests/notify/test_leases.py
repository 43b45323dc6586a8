"""Outbox leases against slow mail servers: a lease covers the send it guards.

A slow server is a fake mailer whose ``send`` moves the application's
``ManualClock`` forward by a large part of the lease (no real sleeping), and a
second dispatcher (another lease owner) runs from inside that send, or in
another thread, and claims whatever has become claimable. Every message must
arrive exactly once (counted by ``Message-ID``, i.e. outbox row id), every
lease the first dispatcher lost must be logged as ``outbox.lease_lost``, and
no row may be left leased.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from lockbox.clock import ManualClock
from lockbox.config import Settings
from lockbox.notify.dispatcher import Dispatcher, DispatchResult, worst_case_send_seconds
from lockbox.service.app import Lockbox
from lockbox.store import outbox as store
from lockbox.store.db import Database
from tests.conftest import World
from tests.notify.helpers import rows, smtp_settings, submit

LEASE = 120.0


def settings(**extra: object) -> Settings:
    return smtp_settings(25, outbox_lease_seconds=LEASE, **extra)


def lease_part(fraction: float) -> timedelta:
    return timedelta(seconds=LEASE * fraction)


def row_id(message: EmailMessage) -> str:
    """The outbox row id from a ``Message-ID`` (``<msg_…@lockbox>``)."""
    return str(message["Message-ID"]).strip("<>").split("@")[0]


@dataclass
class Deliveries:
    """What reached the (fake) mail server, across every dispatcher and thread."""

    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, message: EmailMessage) -> None:
        with self.lock:
            self.counts[row_id(message)] += 1


@dataclass
class SlowMailer:
    """A mail server that takes ``takes`` of application time per message.

    ``during`` runs while the message is in flight (after the time has passed,
    before the server's answer), with the row id: that is where a competing
    dispatcher gets its chance.
    """

    clock: ManualClock
    takes: timedelta
    deliveries: Deliveries
    during: Callable[[str], None] | None = None

    def send(self, message: EmailMessage) -> None:
        self.clock.advance(self.takes)
        if self.during is not None:
            self.during(row_id(message))
        self.deliveries.add(message)

    def close(self) -> None:
        pass


class FailingSlowMailer(SlowMailer):
    """Slow, and then the server drops the connection: the attempt fails."""

    def send(self, message: EmailMessage) -> None:
        self.clock.advance(self.takes)
        if self.during is not None:
            self.during(row_id(message))
        raise ConnectionResetError("the server hung up")


def populate(world: World, requests: int) -> list[str]:
    """``requests`` submitted requests, two ``review_needed`` e-mails each; their row ids."""
    for _ in range(requests):
        submit(world.app, world.engineer)
    return sorted(r.id for r in rows(world.app, "pending"))


def lease_lost(caplog: pytest.LogCaptureFixture, owner: str) -> list[dict[str, object]]:
    found = []
    for record in caplog.records:
        fields = getattr(record, "fields", {})
        if record.getMessage() == "outbox.lease_lost" and fields.get("owner") == owner:
            assert record.levelno == logging.WARNING
            found.append(fields)
    return found


def check_exactly_once(app: Lockbox, deliveries: Deliveries, ids: list[str]) -> None:
    """Every row delivered once and recorded ``sent``; no lease left behind."""
    assert sorted(deliveries.counts) == ids, "every row arrived, nothing else did"
    duplicates = {i: n for i, n in deliveries.counts.items() if n != 1}
    assert not duplicates, f"sent more than once: {duplicates}"
    final = rows(app)
    assert all(r.status == "sent" for r in final), [(r.id, r.status) for r in final]
    assert all(r.lease_owner is None and r.lease_until is None for r in final)


def test_a_lease_lost_mid_batch_is_not_sent_again(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The reported bug: a batch outlives its lease; a second worker takes the tail.

    The first worker claims 6 rows; each send takes 60% of the lease. While
    the second message is in flight the claim has run out, and another
    dispatcher claims and sends the rest. The first must then notice, for
    each remaining row, that its lease is gone, and send nothing more.
    """
    app, clock = world.app, world.clock
    ids = populate(world, 3)
    deliveries = Deliveries()
    other = Dispatcher(app, settings(), mailer=SlowMailer(clock, timedelta(0), deliveries))
    runs: list[DispatchResult] = []

    def competitor(current: str) -> None:
        if not runs and deliveries.counts:  # once, during the second send
            runs.append(other.dispatch_due())

    slow = SlowMailer(clock, lease_part(0.6), deliveries, during=competitor)
    first = Dispatcher(app, settings(), mailer=slow)
    with caplog.at_level(logging.INFO, logger="lockbox.worker"):
        result = first.dispatch_due()

    check_exactly_once(app, deliveries, ids)
    taken = ids[2:]
    assert runs[0].sent == len(taken)
    assert result.claimed == 6 and result.sent == 2 and result.lost == len(taken)
    assert result.as_dict()["lost"] == len(taken)
    lost = lease_lost(caplog, first.owner)
    assert sorted(str(f["id"]) for f in lost) == taken


def test_a_lease_renewed_per_message_covers_every_send_of_a_long_batch(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """One worker, a batch that takes four leases to send: each send is under a live lease.

    While each message is in flight, the row must be leased to this worker
    until after the send ends, so no other worker could claim it. Rows whose
    turn comes after the batch's claim ran out are given up and claimed again
    in the next batch: the whole round still delivers everything exactly once.
    """
    app, clock = world.app, world.clock
    ids = populate(world, 4)
    deliveries = Deliveries()
    slow = SlowMailer(clock, lease_part(0.5), deliveries)
    first = Dispatcher(app, settings(), mailer=slow)
    uncovered: list[str] = []  # in flight without a live lease of ours: another could take it

    def in_flight(current: str) -> None:
        # Recorded, not asserted: the dispatcher would count an exception as a failed send.
        with app.read() as tx:
            row = store.get_row(tx.conn, current)
        live = row is not None and row.lease_until is not None and row.lease_until > clock.now()
        if not (live and row is not None and row.lease_owner == first.owner):
            uncovered.append(current)

    slow.during = in_flight
    with caplog.at_level(logging.INFO, logger="lockbox.worker"):
        result = first.dispatch_due(batch=len(ids))

    assert uncovered == [], "sent while the lease had run out"
    check_exactly_once(app, deliveries, ids)
    assert result.sent == len(ids)
    # The rows whose claim the batch outlived were given up and claimed again, and reported.
    assert result.lost == len(lease_lost(caplog, first.owner)) > 0


def test_sent_after_the_lease_was_lost_is_recorded_and_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A send that overran its lease is still recorded as sent (it was), and reported."""
    app, clock = world.app, world.clock
    ids = populate(world, 1)
    deliveries = Deliveries()
    other = Dispatcher(app, settings(), mailer=SlowMailer(clock, timedelta(0), deliveries))
    stolen: list[store.OutboxRow] = []

    def competitor(current: str) -> None:
        if not stolen:  # the send outlasted the lease: both rows are claimable now
            stolen.extend(other.claim(10))

    first = Dispatcher(
        app,
        settings(),
        mailer=SlowMailer(clock, lease_part(1.5), deliveries, during=competitor),
    )
    with caplog.at_level(logging.INFO, logger="lockbox.worker"):
        result = first.dispatch_batch(1)
        assert [r.id for r in stolen] == ids
        # The first row was sent meanwhile: the other worker must not send it again.
        assert [other.process(r) for r in stolen] == ["lost", "sent"]

    assert result.sent == 1 and result.lost == 0
    check_exactly_once(app, deliveries, ids)
    lost = lease_lost(caplog, first.owner)
    assert [(f["id"], f["stage"]) for f in lost] == [(ids[0], "sent")]
    assert [(f["id"], f["stage"]) for f in lease_lost(caplog, other.owner)] == [(ids[0], "renew")]


def test_a_failure_after_the_lease_was_lost_is_logged_not_ignored(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    app, clock = world.app, world.clock
    ids = populate(world, 1)
    deliveries = Deliveries()
    other = Dispatcher(app, settings(), mailer=SlowMailer(clock, timedelta(0), deliveries))
    stolen: list[store.OutboxRow] = []

    def competitor(current: str) -> None:
        if not stolen:
            stolen.extend(other.claim(10))

    first = Dispatcher(
        app,
        settings(),
        mailer=FailingSlowMailer(clock, lease_part(1.5), deliveries, during=competitor),
    )
    with caplog.at_level(logging.INFO, logger="lockbox.worker"):
        result = first.dispatch_batch(1)

    assert result.lost == 1 and result.retried == 0
    assert [(f["id"], f["stage"]) for f in lease_lost(caplog, first.owner)] == [(ids[0], "failed")]
    (row,) = [r for r in rows(app) if r.id == ids[0]]
    assert row.attempts == 0 and row.lease_owner == other.owner  # the failure was not recorded
    assert [other.process(r) for r in stolen] == ["sent", "sent"]
    check_exactly_once(app, deliveries, ids)


def test_a_skip_after_the_lease_was_lost_is_logged_not_ignored(
    world: World, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lockbox.service import delivery

    app, clock = world.app, world.clock
    req_id = submit(app, world.engineer)
    with app.tx() as tx:  # a reminder for a state the request is not in: to be skipped
        store.enqueue(
            tx.conn,
            store.OutboxMessage(
                channel="email",
                topic="approval_reminder",
                recipient="paula@contoso.test",
                payload={},
                request_id=req_id,
                only_if_state="pending_approval",
                due_at=tx.now - timedelta(hours=1),
            ),
            tx.now,
        )
    reminder = next(r.id for r in rows(app) if r.topic == "approval_reminder")
    deliveries = Deliveries()
    other = Dispatcher(app, settings(), mailer=SlowMailer(clock, timedelta(0), deliveries))
    real_state = delivery.request_state
    stolen: list[store.OutboxRow] = []

    def slow_state(app_: Lockbox, request_id: str) -> str | None:
        clock.advance(lease_part(1.5))  # the database was slow to answer
        stolen.extend(other.claim(1))
        return real_state(app_, request_id)

    monkeypatch.setattr(delivery, "request_state", slow_state)
    first = Dispatcher(app, settings(), mailer=SlowMailer(clock, timedelta(0), deliveries))
    with caplog.at_level(logging.INFO, logger="lockbox.worker"):
        result = first.dispatch_batch(1)
    monkeypatch.undo()

    assert result.lost == 1 and result.skipped == 0
    assert [(f["id"], f["stage"]) for f in lease_lost(caplog, first.owner)] == [
        (reminder, "skipped")
    ]
    assert [r.id for r in stolen] == [reminder]
    assert other.process(stolen[0]) == "skipped"
    (row,) = [r for r in rows(app) if r.id == reminder]
    assert row.status == "skipped" and row.lease_owner is None


@dataclass
class TakingTurns(Dispatcher):
    """A dispatcher that processes one message at a time *across threads*.

    The clock is shared and only moves inside sends. Real time passes for all
    workers at once; a manual clock moved by two threads would let one send
    "last" for as long as the other thread keeps sending, which no timeout
    allows. So sends take turns (a server that serves one session at a time),
    while claims, renewals and outcomes still race freely.
    """

    turn: threading.Lock = field(default_factory=threading.Lock)

    def process(self, row: store.OutboxRow) -> str:
        with self.turn:
            return super().process(row)


def test_two_dispatchers_in_threads_with_a_slow_server_send_each_message_once(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    app, clock = world.app, world.clock
    ids = populate(world, 8)
    deliveries = Deliveries()
    turn = threading.Lock()
    workers = [
        TakingTurns(
            app, settings(), mailer=SlowMailer(clock, lease_part(0.4), deliveries), turn=turn
        )
        for _ in range(2)
    ]
    results: dict[str, DispatchResult] = {}
    errors: list[BaseException] = []

    def run(worker: Dispatcher) -> None:
        try:
            results[worker.owner] = worker.dispatch_due(batch=3)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    with caplog.at_level(logging.INFO, logger="lockbox.worker"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors

    check_exactly_once(app, deliveries, ids)
    assert sum(r.sent for r in results.values()) == len(ids)
    for worker in workers:
        result = results[worker.owner]
        assert result.claimed == result.sent + result.lost  # every claimed row accounted for
        assert result.lost == len(lease_lost(caplog, worker.owner))


# -- the lease length ---------------------------------------------------------------------


@pytest.fixture
def bare_app(tmp_path: Path) -> Iterator[Lockbox]:
    """A Lockbox that is never queried: constructing a Dispatcher touches no database."""
    db = Database(f"sqlite:///{tmp_path / 'unused.db'}")
    yield Lockbox(db, ManualClock())
    db.dispose()


def test_worst_case_send_counts_the_smtp_round_trips_of_the_configuration() -> None:
    plain = smtp_settings(25, smtp_timeout=10.0, webhook_timeout=1.0)
    assert worst_case_send_seconds(plain) == 7 * 10.0
    secure = smtp_settings(
        587, smtp_timeout=10.0, webhook_timeout=1.0, smtp_security="starttls", smtp_username="u"
    )
    assert worst_case_send_seconds(secure) == 12 * 10.0
    slow_hooks = smtp_settings(25, smtp_timeout=1.0, webhook_timeout=30.0)
    assert worst_case_send_seconds(slow_hooks) == 3 * 30.0
    assert worst_case_send_seconds(Settings()) <= Settings().outbox_lease_seconds  # defaults


def test_a_lease_shorter_than_one_timeout_is_refused(bare_app: Lockbox) -> None:
    with pytest.raises(ValueError, match="LOCKBOX_OUTBOX_LEASE_SECONDS"):
        Dispatcher(bare_app, smtp_settings(25, outbox_lease_seconds=4.0, smtp_timeout=5.0))


def test_a_lease_shorter_than_the_worst_case_send_is_reported(
    bare_app: Lockbox, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="lockbox.worker"):
        Dispatcher(bare_app, smtp_settings(25, outbox_lease_seconds=120.0, smtp_timeout=10.0))
        assert not [r for r in caplog.records if r.getMessage() == "worker.lease_too_short"]
        short = Dispatcher(
            bare_app, smtp_settings(25, outbox_lease_seconds=30.0, smtp_timeout=10.0)
        )
    (record,) = [r for r in caplog.records if r.getMessage() == "worker.lease_too_short"]
    assert record.levelno == logging.WARNING
    assert getattr(record, "fields", {}) == {
        "owner": short.owner,
        "lease_seconds": 30.0,
        "worst_case_send_seconds": 70.0,
    }
    assert short.lease == timedelta(seconds=30)  # honoured: it is also the crash-recovery delay
