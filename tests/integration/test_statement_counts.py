"""How many SQL statements each use case runs, pinned: a regression shows up here first.

The numbers are the work each use case must do to keep its guarantees (read what it
decides on, write the change, its audit record, its notifications and, for grants,
the feed), on each database; a change that adds a query to a hot path has to say so
by changing a number here. ``BEGIN`` counts where the driver receives it as a statement.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from lockbox.service import access, cases, requests, tokens
from tests.conftest import World

MAILBOX = "exchange/mailbox/alice@contoso.com"


@contextmanager
def counting(world: World) -> Iterator[Counter[str]]:
    seen: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen[statement.split()[0].upper()] += 1

    event.listen(world.app.db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(world.app.db.engine, "before_cursor_execute", count)


def statements(world: World, action: Callable[[], object]) -> int:
    with counting(world) as seen:
        action()
    return sum(n for verb, n in seen.items() if verb not in ("BEGIN", "COMMIT"))


#: use case → data statements (SELECT/INSERT/UPDATE), the same on both databases.
#: Every transition signs a checkpoint of its chain (issue #12): +1 to choose and lock the
#: audit key, +1 to keep the checkpoint; a decision also keeps its signed receipt (+1),
#: which names the person who decided (+1). The online check as the
#: API runs it authenticates in its own read transaction: one statement more, not two.
#: Forwarding to the customer reads the people of the first approval stage (+1: their
#: roles), so only those the stage admits are asked; and it reads the tenant's active
#: auto-approval rules (+1), which may approve it at once. Whoever holds the approvals of
#: the people asked (delegations) is asked too (+1); a decision reads the delegations its
#: decider holds (+1).
PINNED = {
    "authenticate": 1,
    "submit": 12,
    "review": 17,
    "decide": 19,
    "issue_token": 8,
    "close": 16,
    "check_allow": 4,
    "check_deny": 8,
    "check_with_token": 5,
}


def test_statements_per_use_case(world: World) -> None:
    case = cases.open_case(world.app, world.engineer, tenant="contoso", title="t").id
    secret = tokens.create_token(world.app, world.engineer, name="t").secret
    tokens.authenticate(world.app, secret)  # the first use writes last_used_at (once a minute)
    service_secret = tokens.create_token(world.app, world.service, name="s").secret
    tokens.authenticate(world.app, service_secret)
    access.issue_token(world.app, world.engineer, _approved(world, case))  # the first key
    counted: dict[str, int] = {}
    counted["authenticate"] = statements(world, lambda: tokens.authenticate(world.app, secret))
    made: dict[str, str] = {}

    def submit() -> None:
        made["id"] = requests.submit_request(
            world.app,
            world.engineer,
            tenant="contoso",
            case_id=case,
            resources=[MAILBOX],
            access_level="read",
            justification="j",
        ).id

    counted["submit"] = statements(world, submit)
    rid = made["id"]
    counted["review"] = statements(
        world, lambda: requests.review_request(world.app, world.manager, rid, approve=True)
    )
    counted["decide"] = statements(
        world,
        lambda: requests.decide_request(world.app, world.contoso_approver, rid, approve=True),
    )
    counted["issue_token"] = statements(
        world, lambda: access.issue_token(world.app, world.engineer, rid)
    )

    def check(resource: str) -> Callable[[], object]:
        return lambda: access.check(
            world.app,
            world.service,
            engineer=world.engineer.id,
            tenant="contoso",
            resource=resource,
            action="read",
        )

    counted["check_allow"] = statements(world, check(MAILBOX))
    counted["check_deny"] = statements(world, check("exchange/mailbox/bob@contoso.com"))
    counted["check_with_token"] = statements(
        world,
        lambda: tokens.touch_token(  # the server writes the touch after the check, elsewhere
            world.app,
            access.check_bearer(
                world.app,
                service_secret,
                engineer=world.engineer.id,
                tenant="contoso",
                resource=MAILBOX,
                action="read",
            )[1],
        ),
    )
    counted["close"] = statements(
        world, lambda: requests.close_request(world.app, world.engineer, rid)
    )
    assert counted == PINNED


def _approved(world: World, case: str) -> str:
    rid = requests.submit_request(
        world.app,
        world.engineer,
        tenant="contoso",
        case_id=case,
        resources=[MAILBOX],
        access_level="read",
        justification="warm-up",
    ).id
    requests.review_request(world.app, world.manager, rid, approve=True)
    requests.decide_request(world.app, world.contoso_approver, rid, approve=True)
    return rid


@pytest.fixture(autouse=True)
def _quiet() -> None:
    """(No per-test setup: the World fixture builds everything.)"""
