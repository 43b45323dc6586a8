"""The warning 15 minutes before access ends, through a real SMTP server, on both databases:
sent once at the right time, and never for a deadline an extension has moved."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from lockbox.notify.dispatcher import Dispatcher
from lockbox.service import requests
from tests.conftest import World
from tests.notify.helpers import SmtpServer, assert_no_links, smtp_settings, submit


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def approve(world: World) -> str:
    req_id = submit(world.app, world.engineer)
    requests.review_request(world.app, world.manager, req_id, approve=True)
    requests.decide_request(world.app, world.contoso_approver, req_id, approve=True)
    return req_id


def subjects(smtp: SmtpServer, to: str) -> list[str]:
    return [str(r.message["Subject"]) for r in smtp.collector.snapshot() if to in r.rcpt]


def test_the_engineer_is_warned_15_minutes_before_access_ends(
    world: World, smtp: SmtpServer
) -> None:
    dispatcher = Dispatcher(world.app, smtp_settings(smtp.port))
    req_id = approve(world)
    dispatcher.dispatch_due()
    erin = "erin@provider.test"
    assert not [s for s in subjects(smtp, erin) if "ends soon" in s]
    world.clock.advance(timedelta(hours=3, minutes=44))  # 16 minutes left of 4 hours
    dispatcher.dispatch_due()
    assert not [s for s in subjects(smtp, erin) if "ends soon" in s]
    world.clock.advance(timedelta(minutes=1))
    dispatcher.dispatch_due()
    warned = [r for r in smtp.collector.snapshot() if "ends soon" in str(r.message["Subject"])]
    assert [r.rcpt for r in warned] == [[erin]]
    body = warned[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "in 15 minutes" in body and "ask for an extension" in body
    assert req_id in str(warned[0].message["Subject"])
    assert_no_links(body)


def test_no_warning_for_a_deadline_an_extension_moved(world: World, smtp: SmtpServer) -> None:
    app = world.app
    dispatcher = Dispatcher(app, smtp_settings(smtp.port))
    req_id = approve(world)
    world.clock.advance(timedelta(hours=3))
    requests.extend_request(app, world.engineer, req_id, by=timedelta(hours=1), reason="more")
    requests.decide_extension(app, world.contoso_approver, req_id, approve=True)
    dispatcher.dispatch_due()
    world.clock.advance(timedelta(minutes=50))  # the first warning's time: the deadline moved
    result = dispatcher.dispatch_due()
    assert result.skipped == 1
    assert not [s for s in subjects(smtp, "erin@provider.test") if "ends soon" in s]
    world.clock.advance(timedelta(hours=1))  # the new deadline's warning
    dispatcher.dispatch_due()
    assert len([s for s in subjects(smtp, "erin@provider.test") if "ends soon" in s]) == 1
    assert any("Extended" in s for s in subjects(smtp, "erin@provider.test"))


def test_no_warning_once_access_was_closed(world: World, smtp: SmtpServer) -> None:
    dispatcher = Dispatcher(world.app, smtp_settings(smtp.port))
    req_id = approve(world)
    requests.close_request(world.app, world.engineer, req_id)
    world.clock.advance(timedelta(hours=3, minutes=50))
    dispatcher.dispatch_due()
    assert not [s for s in subjects(smtp, "erin@provider.test") if "ends soon" in s]
