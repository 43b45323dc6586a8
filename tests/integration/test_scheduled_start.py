"""A scheduled start on the real stores: approvals may come early, access runs from the
start for one window, and nothing (check, token, grant feed) allows anything before it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from lockbox.domain.errors import InvalidTransition, ValidationError
from lockbox.domain.lifecycle import State
from lockbox.sdk.feed import Grant, GrantTable
from lockbox.service import access, grant_feed, requests
from lockbox.store import tables as t
from tests.conftest import World
from tests.integration.helpers import MAILBOX, pending_approval, stored, submit


def check(world: World) -> str:
    result = access.check(
        world.app,
        world.service,
        engineer=world.engineer.id,
        tenant="contoso",
        resource=MAILBOX,
        action="read",
    )
    return "allow" if result.allowed else result.reason


def test_access_starts_at_the_scheduled_time(world: World) -> None:
    app, clock = world.app, world.clock
    start = clock.now() + timedelta(days=2)
    req = pending_approval(world, starts_at=start)
    assert req.starts_at == start
    done = requests.decide_request(app, world.contoso_approver, req.id, approve=True)
    assert done.state is State.APPROVED
    assert done.access_deadline == start + timedelta(hours=4)  # one window from the start
    assert check(world) == "not_started"
    with pytest.raises(InvalidTransition, match="access starts at"):
        access.issue_token(app, world.engineer, req.id)
    with app.read() as tx:
        starts = tx.conn.execute(
            select(t.grant_changes.c.access_starts_at).where(t.grant_changes.c.request_id == req.id)
        ).scalar_one()
    assert starts == start
    # A follower of the feed refuses before the start too, from the event alone.
    scope = grant_feed.scope_for(app, world.service)
    (event,) = [e for e in grant_feed.snapshot(app, scope).events if e.request_id == req.id]
    table = GrantTable()
    table.grant(Grant.from_event(event.as_dict()))
    ask = {"engineer": world.engineer.id, "tenant": "contoso", "resource": MAILBOX}
    assert table.decide(**ask, action="read", now=clock.now()).reason == "not_started"
    assert table.decide(**ask, action="read", now=start).allowed

    clock.advance(timedelta(days=2))  # the start
    assert check(world) == "allow"
    assert access.issue_token(app, world.engineer, req.id).request_id == req.id
    clock.advance(timedelta(hours=4))
    assert check(world) == "expired"
    assert stored(app, req.id).starts_at == start


def test_the_approval_deadline_still_applies(world: World) -> None:
    start = world.clock.now() + timedelta(days=3)
    req = pending_approval(world, starts_at=start)
    world.clock.advance(timedelta(hours=13))  # the 12-hour approval window is over
    assert requests.get_request(world.app, world.engineer, req.id).state is State.EXPIRED


@pytest.mark.parametrize(
    "start",
    [timedelta(days=7, seconds=1), timedelta(seconds=-1), timedelta(0)],
    ids=["too-far", "past", "now"],
)
def test_a_start_lies_in_the_next_seven_days(world: World, start: timedelta) -> None:
    with pytest.raises(ValidationError) as err:
        submit(world, starts_at=world.clock.now() + start)
    assert err.value.field == "starts_at"
    naive = datetime(2030, 1, 1)  # no zone: refused, never guessed
    with pytest.raises(ValidationError):
        submit(world, starts_at=naive)
