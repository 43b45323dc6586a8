"""E-mail delivery through a real SMTP server (aiosmtpd on loopback), on both databases."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest

from lockbox.domain.errors import InvalidTransition, NotFound
from lockbox.notify.dispatcher import Dispatcher, backoff
from lockbox.service import notifications, outbox, requests
from lockbox.store import outbox as store
from tests.conftest import World
from tests.notify.helpers import SmtpServer, assert_no_links, rows, smtp_settings, submit


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def test_reference_scenario_emails(world: World, smtp: SmtpServer) -> None:
    app = world.app
    dispatcher = Dispatcher(app, smtp_settings(smtp.port))
    req_id = submit(app, world.engineer, "Mailbox of alice does not sync; see http://evil.example")
    assert dispatcher.dispatch_due().sent == 2
    requests.review_request(app, world.manager, req_id, approve=True, comment="ok")
    requests.decide_request(app, world.contoso_approver, req_id, approve=True, comment="today")
    with app.tx() as tx:
        from lockbox.store import repositories as repo

        request = repo.get_request(tx.conn, req_id)
        assert request is not None
        notifications.plan_first_use(tx, request)
    world.clock.advance(timedelta(minutes=30))
    requests.close_request(app, world.engineer, req_id, comment="fixed")
    result = dispatcher.dispatch_due()
    assert result.sent == 3 + 1 + 1 + 1  # approval_needed ×3, approved, first_use, access_ended

    got = smtp.collector.snapshot()
    topics: dict[str, list[str]] = {}
    for r in got:
        subject = str(r.message["Subject"])
        assert req_id in subject
        assert str(r.message["From"]) == "Lockbox <lockbox@provider.test>"
        assert r.rcpt == [str(r.message["To"])]
        text = r.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = r.message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert_no_links(subject, text, html, r.message.as_string())
        assert "Contoso Ltd" in text and "exchange/mailbox/alice@contoso.com" in text
        assert "hxxp[:]//evil.example" in text
        assert "sign in to the Lockbox admin center yourself" in text
        topics.setdefault(subject.split(":")[0], []).extend(r.rcpt)
    assert sorted(topics["[Lockbox] Review needed"]) == ["mark@provider.test", "mona@provider.test"]
    assert sorted(topics["[Lockbox] Approval needed"]) == [
        "ines@contoso.test",
        "paula@contoso.test",
        "quinn@contoso.test",
    ]
    assert topics["[Lockbox] Approved"] == ["erin@provider.test"]
    assert topics["[Lockbox] Used"] == ["paula@contoso.test"]
    assert topics["[Lockbox] Access ended"] == ["paula@contoso.test"]
    # The approval mail says when it expires, in UTC and relative to *sending* (30 min later).
    approval = next(r for r in got if "Approval needed" in str(r.message["Subject"]))
    body = approval.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "2026-01-05 21:00 UTC (in 11 hours 30 minutes)" in body
    # Every row is sent, and each message carries its row's stable Message-ID.
    sent = rows(app, "sent")
    ids = {f"<{r.id}@lockbox>" for r in sent if r.channel == "email"}
    assert {r.message_id for r in got} == ids
    # The reminder is queued for later (25% of the window left) and is not due yet... and
    # never will be sent: the request left pending_approval.
    # So is the warning that access ends in 15 minutes, dropped as well: access ended.
    pending = rows(app, "pending")
    assert sorted(r.topic for r in pending) == ["access_ending"] + ["approval_reminder"] * 3
    world.clock.advance(timedelta(hours=10))
    assert dispatcher.dispatch_due().skipped == 4
    assert len(smtp.collector.snapshot()) == len(got)


def test_reminder_is_sent_while_still_pending(world: World, smtp: SmtpServer) -> None:
    app = world.app
    dispatcher = Dispatcher(app, smtp_settings(smtp.port))
    req_id = submit(app, world.engineer)
    requests.review_request(app, world.manager, req_id, approve=True)
    dispatcher.dispatch_due()
    before = len(smtp.collector.snapshot())
    world.clock.advance(timedelta(hours=8, minutes=59))
    assert dispatcher.dispatch_due().claimed == 0  # due at 9h = when 25% of 12h is left
    world.clock.advance(timedelta(minutes=1))
    assert dispatcher.dispatch_due().sent == 3
    reminders = smtp.collector.snapshot()[before:]
    assert sorted(r.rcpt[0] for r in reminders) == [
        "ines@contoso.test",
        "paula@contoso.test",
        "quinn@contoso.test",
    ]
    text = reminders[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Reminder" in str(reminders[0].message["Subject"])
    assert "(in 3 hours)" in text


def test_mail_server_down_then_up_every_message_arrives_once(world: World) -> None:
    app = world.app
    server = SmtpServer()  # port chosen, nothing listening yet
    settings = smtp_settings(server.port, smtp_timeout=2.0)
    dispatcher = Dispatcher(app, settings)
    for _ in range(3):
        submit(app, world.engineer)  # 2 managers each
    first = dispatcher.dispatch_due()
    assert first.claimed == 6 and first.retried == 6 and first.sent == 0
    assert all(r.attempts == 1 and r.last_error for r in rows(app, "pending"))
    assert dispatcher.dispatch_due().claimed == 0  # backing off, not hammering
    world.clock.advance(timedelta(seconds=settings.outbox_backoff_base_seconds))
    assert dispatcher.dispatch_due().retried == 6  # still down: second attempt
    server.start()
    try:
        assert dispatcher.dispatch_due().claimed == 0
        world.clock.advance(timedelta(seconds=2 * settings.outbox_backoff_base_seconds))
        assert dispatcher.dispatch_due().sent == 6
        assert dispatcher.dispatch_due().claimed == 0
        got = server.collector.snapshot()
        counts = Counter(r.message_id for r in got)
        assert len(got) == 6 and set(counts.values()) == {1}
        assert set(counts) == {f"<{r.id}@lockbox>" for r in rows(app, "sent")}
        assert all(r.attempts == 3 for r in rows(app, "sent"))
    finally:
        server.stop()


class FailingMailer:
    def __init__(self) -> None:
        self.calls = 0

    def send(self, message: object) -> None:
        self.calls += 1
        raise ConnectionRefusedError("mail server down")

    def close(self) -> None:
        pass


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    import random

    settings = smtp_settings(25, outbox_backoff_base_seconds=30, outbox_backoff_max_seconds=600)
    rng = random.Random(7)
    for attempts in range(1, 10):
        full = min(30 * 2 ** (attempts - 1), 600)
        delays = {backoff(attempts, settings, rng).total_seconds() for _ in range(20)}
        assert all(full / 2 <= d <= full for d in delays)
        assert len(delays) > 1  # jittered


def test_retries_then_parks_then_resends_on_request(world: World, smtp: SmtpServer) -> None:
    app = world.app
    settings = smtp_settings(smtp.port, outbox_max_attempts=4, outbox_backoff_max_seconds=60)
    failing = FailingMailer()
    dispatcher = Dispatcher(app, settings, mailer=failing)
    submit(app, world.engineer)
    seen_due = []
    for attempt in range(1, 5):
        result = dispatcher.dispatch_due()
        assert result.claimed == 2
        current = rows(app)
        assert all(r.attempts == attempt for r in current)
        assert all("mail server down" in (r.last_error or "") for r in current)
        seen_due.append(max(r.due_at for r in current))
        world.clock.advance(timedelta(seconds=60))
    assert failing.calls == 8
    parked = rows(app, "failed")
    assert len(parked) == 2  # parked after 4 attempts, not dropped
    assert dispatcher.dispatch_due().claimed == 0
    # Visible to the operator, and only to the operator.
    listed, _ = outbox.list_outbox(app, world.provider_admin, status="failed")
    assert {r.id for r in listed} == {r.id for r in parked}
    with pytest.raises(NotFound):
        outbox.list_outbox(app, world.contoso_admin, status="failed")
    with pytest.raises(NotFound):
        outbox.retry_message(app, world.manager, parked[0].id)
    # Re-send: back to pending with a fresh budget, delivered with the same Message-ID.
    for row in parked:
        again = outbox.retry_message(app, world.provider_admin, row.id)
        assert again.status == "pending" and again.attempts == 0
    with pytest.raises(InvalidTransition):
        outbox.retry_message(app, world.provider_admin, parked[0].id)
    good = Dispatcher(app, settings)
    assert good.dispatch_due().sent == 2
    assert {r.message_id for r in smtp.collector.snapshot()} == {
        f"<{r.id}@lockbox>" for r in parked
    }


def test_crash_between_send_and_mark_gives_a_duplicate_with_the_same_id(
    world: World, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = world.app
    settings = smtp_settings(smtp.port)
    submit(app, world.engineer)
    crashed = Dispatcher(app, settings)

    def crash(*_args: object, **_kwargs: object) -> bool:
        raise KeyboardInterrupt("worker died after sending")

    monkeypatch.setattr(store, "mark_sent", crash)
    with pytest.raises(KeyboardInterrupt):
        crashed.dispatch_due()
    monkeypatch.undo()
    assert len(smtp.collector.snapshot()) == 1
    survivor = Dispatcher(app, settings)
    assert survivor.dispatch_due().claimed == 0  # both rows are still leased to the dead worker
    world.clock.advance(timedelta(seconds=settings.outbox_lease_seconds))
    assert survivor.dispatch_due().sent == 2  # the lease ran out: the sent one goes again
    got = smtp.collector.snapshot()
    counts = Counter(r.message_id for r in got)
    assert len(got) == 3 and sorted(counts.values()) == [1, 2]
    assert set(counts) == {f"<{r.id}@lockbox>" for r in rows(app, "sent")}


def test_claims_are_exclusive_until_the_lease_runs_out(world: World) -> None:
    app = world.app
    settings = smtp_settings(25, outbox_lease_seconds=60)
    for _ in range(5):
        submit(app, world.engineer)
    a, b = Dispatcher(app, settings), Dispatcher(app, settings)
    first = a.claim(6)
    second = b.claim(100)
    assert len(first) == 6 and len(second) == 4
    assert not {r.id for r in first} & {r.id for r in second}
    assert b.claim(100) == []
    world.clock.advance(timedelta(seconds=60))
    assert len(b.claim(100)) == 10  # a died: its leases ran out; b's too
    with app.tx() as tx:
        assert store.release(tx.conn, b.owner) == 10
    assert len(a.claim(100)) == 10


def test_invalid_recipient_is_parked_at_once(world: World, smtp: SmtpServer) -> None:
    app = world.app
    with app.tx() as tx:
        store.enqueue(
            tx.conn,
            store.OutboxMessage(
                channel="email",
                topic="approved",
                recipient="x@y\r\nBcc: z@evil.example",
                payload={"request_id": "req_x"},
            ),
            tx.now,
        )
    result = Dispatcher(app, smtp_settings(smtp.port)).dispatch_due()
    assert result.parked == 1
    assert smtp.collector.snapshot() == []
    assert "InvalidAddress" in (rows(app, "failed")[0].last_error or "")
