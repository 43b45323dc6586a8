"""Narrower approvals and extensions on the real stores (SQLite and PostgreSQL).

An approver may grant less than was asked (fewer resources, read instead of read_write, a
shorter window), never more; what is granted is what tokens, checks, the grant feed and
later stages see. An engineer may ask for more time before access ends; the customer
approves it like the request, within the policy's cap.
"""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from sqlalchemy import select

from lockbox.domain.errors import (
    DeadlinePassed,
    InvalidTransition,
    NotFound,
    SeparationOfDuties,
    ValidationError,
)
from lockbox.domain.lifecycle import State
from lockbox.domain.request import Narrowing
from lockbox.domain.resources import AccessLevel
from lockbox.service import access, requests
from lockbox.store import tables as t
from tests.conftest import World
from tests.integration.helpers import (
    MAILBOX,
    approved,
    pending_approval,
    records,
    set_policy,
    stored,
    submit,
)

CALENDAR = "exchange/calendar/alice@contoso.com"


def check(world: World, resource: str, action: str = "read") -> str:
    result = access.check(
        world.app,
        world.service,
        engineer=world.engineer.id,
        tenant="contoso",
        resource=resource,
        action=action,
    )
    return "allow" if result.allowed else result.reason


def outbox_topics(world: World, request_id: str) -> list[str]:
    with world.app.read() as tx:
        rows = tx.conn.execute(select(t.outbox.c.topic).where(t.outbox.c.request_id == request_id))
        return [r[0] for r in rows]


# -- narrower approvals ------------------------------------------------------------------


def test_an_approver_grants_less_and_everything_enforces_what_was_granted(world: World) -> None:
    app, clock = world.app, world.clock
    req = pending_approval(world, resources=[MAILBOX, CALENDAR], level="read_write")
    done = requests.decide_request(
        app,
        world.contoso_approver,
        req.id,
        approve=True,
        narrow=Narrowing(
            resources=(CALENDAR,),
            access_level=AccessLevel.READ,
            access_window=timedelta(hours=1),
        ),
    )
    assert done.state is State.APPROVED
    assert done.resources == (CALENDAR,) and done.access_level is AccessLevel.READ
    assert done.asked_resources == (MAILBOX, CALENDAR)
    assert done.asked_level is AccessLevel.READ_WRITE
    assert done.access_deadline == clock.now() + timedelta(hours=1)
    assert stored(app, req.id) == done

    assert check(world, CALENDAR) == "allow"
    assert check(world, CALENDAR, "write") == "level_too_low"
    assert check(world, MAILBOX) == "out_of_scope"

    token = access.issue_token(app, world.engineer, req.id).token
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["resources"] == [CALENDAR] and claims["access_level"] == "read"
    assert claims["exp"] <= int(done.access_deadline.timestamp())

    (record,) = [r for r in records(app, world.contoso, req.id) if r.operation == "request.approve"]
    assert record.details["granted"] == {
        "resources": [CALENDAR],
        "access_level": "read",
        "access_window_seconds": 3600,
    }
    assert record.details["asked"] == {
        "resources": [MAILBOX, CALENDAR],
        "access_level": "read_write",
    }
    with app.read() as tx:
        feed = tx.conn.execute(
            select(t.grant_changes.c.resources, t.grant_changes.c.access_level).where(
                t.grant_changes.c.request_id == req.id
            )
        ).all()
    assert [tuple(row) for row in feed] == [([CALENDAR], "read")]


@pytest.mark.parametrize(
    ("narrow", "field"),
    [
        (Narrowing(resources=("exchange/mailbox/bob@contoso.com",)), "resources[0]"),
        (Narrowing(resources=("exchange/mailbox/*",)), "resources[0]"),
        (Narrowing(access_level=AccessLevel.READ_WRITE), "access_level"),
        (Narrowing(access_window=timedelta(hours=5)), "access_window_seconds"),
        (Narrowing(access_window=timedelta(minutes=5)), "access_window_seconds"),
    ],
)
def test_an_approval_never_grants_more_than_was_asked(
    world: World, narrow: Narrowing, field: str
) -> None:
    req = pending_approval(world)  # read access to one mailbox; the policy's window is 4 h
    with pytest.raises(ValidationError) as err:
        requests.decide_request(
            world.app, world.contoso_approver, req.id, approve=True, narrow=narrow
        )
    assert err.value.field == field
    assert stored(world.app, req.id) == req  # nothing changed


def test_later_stages_see_what_earlier_ones_granted(world: World) -> None:
    set_policy(
        world,
        stages=[
            {"key": "first", "roles": ["approver"]},
            {"key": "second", "roles": ["tenant_admin"]},
        ],
    )
    app = world.app
    req = pending_approval(world, resources=[MAILBOX, CALENDAR])
    req = requests.decide_request(
        app, world.contoso_approver, req.id, approve=True, narrow=Narrowing(resources=(MAILBOX,))
    )
    assert req.state is State.PENDING_APPROVAL and req.resources == (MAILBOX,)
    with pytest.raises(ValidationError):  # the second stage cannot widen it back
        requests.decide_request(
            app,
            world.contoso_admin,
            req.id,
            approve=True,
            narrow=Narrowing(resources=(MAILBOX, CALENDAR)),
        )
    done = requests.decide_request(app, world.contoso_admin, req.id, approve=True)
    assert done.state is State.APPROVED and done.resources == (MAILBOX,)
    assert done.asked_resources == (MAILBOX, CALENDAR)


def test_a_denial_cannot_carry_a_narrowing(world: World) -> None:
    req = pending_approval(world)
    with pytest.raises(ValidationError) as err:
        requests.decide_request(
            world.app,
            world.contoso_approver,
            req.id,
            approve=False,
            narrow=Narrowing(access_level=AccessLevel.READ),
        )
    assert err.value.field == "decision"


# -- extensions --------------------------------------------------------------------------


def test_an_extension_approved_by_the_customer_moves_the_deadline(world: World) -> None:
    app, clock = world.app, world.clock
    req = approved(world)
    deadline = req.access_deadline
    assert deadline is not None
    asked = requests.extend_request(
        app, world.engineer, req.id, by=timedelta(hours=1), reason="the fix needs an hour"
    )
    assert asked.state is State.APPROVED and asked.extension is not None
    assert asked.access_deadline == deadline  # nothing moves before the customer agrees
    view = requests.get_request(app, world.contoso_admin, req.id, history=False)
    assert set(view.can_approve) == {
        world.contoso_approver.id,
        world.contoso_approver2.id,
        world.contoso_admin.id,
    }
    assert outbox_topics(world, req.id).count("extension_needed") == 3
    with pytest.raises(InvalidTransition):  # one extension at a time
        requests.extend_request(app, world.engineer, req.id, by=timedelta(hours=1), reason="x")

    clock.advance(timedelta(minutes=10))
    done = requests.decide_extension(app, world.contoso_approver2, req.id, approve=True)
    assert done.extension is None and done.extensions == 1
    assert done.access_deadline == deadline + timedelta(hours=1)
    clock.advance(timedelta(hours=4, minutes=30))  # past the old deadline, before the new one
    assert check(world, MAILBOX) == "allow"
    clock.advance(timedelta(minutes=30))
    assert check(world, MAILBOX) == "expired"

    topics = outbox_topics(world, req.id)
    assert "extended" in topics and topics.count("access_ending") == 2  # old and new deadline
    operations = [r.operation for r in records(app, world.contoso, req.id)]
    assert [o for o in operations if o.startswith("request.extend")] == [
        "request.extend",
        "request.extend_approve",
    ]
    with app.read() as tx:
        reasons = tx.conn.execute(
            select(t.grant_changes.c.reason).where(t.grant_changes.c.request_id == req.id)
        ).scalars()
        assert list(reasons) == ["approved", "extended"]


def test_an_extension_denied_leaves_the_deadline(world: World) -> None:
    app = world.app
    req = approved(world)
    requests.extend_request(app, world.engineer, req.id, by=timedelta(hours=1), reason="more")
    done = requests.decide_extension(
        app, world.contoso_approver, req.id, approve=False, comment="finish today"
    )
    assert done.extension is None and done.extensions == 0
    assert done.access_deadline == req.access_deadline
    assert "extension_denied" in outbox_topics(world, req.id)
    with pytest.raises(InvalidTransition, match="no extension is waiting"):
        requests.decide_extension(app, world.contoso_approver, req.id, approve=True)


def test_extensions_are_capped_by_the_policy(world: World) -> None:
    set_policy(world, max_extensions=1)
    app = world.app
    req = approved(world)
    with pytest.raises(ValidationError) as err:  # longer than one access window (4 h)
        requests.extend_request(app, world.engineer, req.id, by=timedelta(hours=5), reason="x")
    assert err.value.field == "by"
    requests.extend_request(app, world.engineer, req.id, by=timedelta(hours=1), reason="x")
    requests.decide_extension(app, world.contoso_approver, req.id, approve=True)
    with pytest.raises(ValidationError, match="already extended 1 time"):
        requests.extend_request(app, world.engineer, req.id, by=timedelta(hours=1), reason="x")


def test_no_extension_once_access_ended_and_only_by_the_requester(world: World) -> None:
    app = world.app
    req = approved(world)
    with pytest.raises((NotFound, SeparationOfDuties)):
        requests.extend_request(app, world.engineer2, req.id, by=timedelta(hours=1), reason="x")
    asked = requests.extend_request(app, world.engineer, req.id, by=timedelta(hours=1), reason="x")
    world.clock.advance(timedelta(hours=5))  # the access window (4 h) is over
    with pytest.raises(DeadlinePassed):
        requests.decide_extension(app, world.contoso_approver, asked.id, approve=True)
    with pytest.raises(DeadlinePassed):
        requests.extend_request(app, world.engineer, req.id, by=timedelta(hours=1), reason="x")


def test_with_the_lockbox_off_an_extension_is_granted_at_once(world: World) -> None:
    set_policy(world, enabled=False)
    app = world.app
    req = submit(world)
    req = requests.review_request(app, world.manager, req.id, approve=True)
    assert req.state is State.APPROVED  # straight to approved at review: no customer step
    done = requests.extend_request(
        app, world.engineer, req.id, by=timedelta(minutes=30), reason="wrap up"
    )
    assert done.extension is None and done.extensions == 1
    assert req.access_deadline is not None
    assert done.access_deadline == req.access_deadline + timedelta(minutes=30)
