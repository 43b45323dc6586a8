"""Every allowed and every refused transition, straight against the domain.

The refused cases are driven from :data:`lockbox.domain.lifecycle.TRANSITIONS`:
for every State x Event the table does not list, the aggregate must refuse, so
adding or removing a row in the table without the aggregate following fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from lockbox.domain import lifecycle
from lockbox.domain import request as domain
from lockbox.domain.errors import (
    AlreadyDecided,
    DeadlinePassed,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    SeparationOfDuties,
    ValidationError,
)
from lockbox.domain.instants import format_instant
from lockbox.domain.lifecycle import TERMINAL, TRANSITIONS, ActorRule, Event, State
from lockbox.domain.policy import LockboxPolicy
from lockbox.domain.request import AccessRequest, Change
from lockbox.domain.resources import Action
from lockbox.domain.roles import Principal
from tests.unit.domain_helpers import (
    APPROVER,
    APPROVER2,
    AUDITOR,
    CONTOSO,
    CUSTOMER_WITH_STAFF,
    ENGINEER,
    ENGINEER2,
    FOREIGN_ADMIN,
    FOREIGN_APPROVER,
    MAILBOX,
    MANAGER,
    MANAGER_ENGINEER,
    MINUTE,
    OFF,
    ON,
    PROVIDER_ADMIN,
    SECOND,
    SERVICE,
    STAFF_WITH_APPROVER,
    SYSTEM,
    T0,
    TENANT_ADMIN,
    TWO,
    case,
    in_state,
    submitted,
)

NOW = T0 + MINUTE  # inside every window of a request built at T0
FAR = timedelta(days=365)


def asked_more(request: AccessRequest, now: datetime) -> AccessRequest:
    """Granted access with an extension waiting (what deciding an extension needs); any
    other request as it is, so the refusal is the decision's own."""
    if request.state is not State.APPROVED or request.extension or request.deadline_passed(now):
        return request
    asked = domain.ask_extension(
        request, ENGINEER, by=timedelta(hours=1), reason="almost done", policy=ON, now=now
    )
    return asked.request


# How each human event is performed by an actor the matrix permits (for a request of ENGINEER).
Perform = Callable[[AccessRequest, Principal, datetime], Change]
PERFORM: dict[Event, Perform] = {
    Event.REVIEW_APPROVE: lambda r, a, now: domain.review(
        r, a, approve=True, comment="ok", policy=ON, now=now
    ),
    Event.REVIEW_REJECT: lambda r, a, now: domain.review(
        r, a, approve=False, comment="no", policy=ON, now=now
    ),
    Event.CANCEL: lambda r, a, now: domain.cancel(r, a, comment="nvm", now=now),
    Event.APPROVE: lambda r, a, now: domain.decide(
        r, a, approve=True, comment="ok", policy=ON, now=now
    ),
    Event.DENY: lambda r, a, now: domain.decide(
        r, a, approve=False, comment="no", policy=ON, now=now
    ),
    Event.CLOSE: lambda r, a, now: domain.close(r, a, comment="done", now=now),
    Event.REVOKE: lambda r, a, now: domain.revoke(r, a, comment="enough", now=now),
    Event.CASE_CLOSED: lambda r, a, now: domain.end_for_closed_case(r, a, now=now),
    Event.EXTEND: lambda r, a, now: domain.ask_extension(
        r, a, by=timedelta(hours=1), reason="almost done", policy=ON, now=now
    ),
    Event.EXTEND_APPROVE: lambda r, a, now: domain.decide_extension(
        asked_more(r, now), a, approve=True, comment="ok", policy=ON, now=now
    ),
    Event.EXTEND_DENY: lambda r, a, now: domain.decide_extension(
        asked_more(r, now), a, approve=False, comment="no", policy=ON, now=now
    ),
}
PERMITTED: dict[Event, Principal] = {
    Event.REVIEW_APPROVE: MANAGER,
    Event.REVIEW_REJECT: MANAGER,
    Event.CANCEL: ENGINEER,
    Event.APPROVE: APPROVER2,
    Event.DENY: APPROVER2,
    Event.CLOSE: ENGINEER,
    Event.REVOKE: APPROVER,
    Event.CASE_CLOSED: MANAGER,
    Event.EXTEND: ENGINEER,
    Event.EXTEND_APPROVE: APPROVER2,
    Event.EXTEND_DENY: APPROVER2,
}
SYSTEM_EVENTS = {Event.EXPIRE, Event.END_ACCESS}
HUMAN_EVENTS = [e for e in Event if e is not Event.SUBMIT and e not in SYSTEM_EVENTS]


def test_table_shape() -> None:
    assert set(PERFORM) == set(HUMAN_EVENTS)
    assert [t.source for t in TRANSITIONS if t.event is Event.SUBMIT] == [None]
    assert all(t.source is not None for t in TRANSITIONS if t.event is not Event.SUBMIT)
    assert not any(t.source in TERMINAL for t in TRANSITIONS)
    assert {t.rule for t in TRANSITIONS if t.event in SYSTEM_EVENTS} == {ActorRule.SYSTEM}
    # Every non-terminal state can be left, every state is reachable.
    reachable = {s for t in TRANSITIONS for s in t.targets}
    assert reachable == set(State)
    assert {t.source for t in TRANSITIONS if t.source} == set(State) - TERMINAL


# -- allowed: one case per (source, event, target) of the table ------------------------


def _allowed_cases() -> list[tuple[lifecycle.Transition, State]]:
    return [(t, target) for t in TRANSITIONS for target in t.targets]


@pytest.mark.parametrize(
    ("transition", "target"),
    _allowed_cases(),
    ids=[f"{t.source}-{t.event}-{target}" for t, target in _allowed_cases()],
)
def test_every_allowed_transition(transition: lifecycle.Transition, target: State) -> None:
    event = transition.event
    if event is Event.SUBMIT:
        change = domain.submit(
            request_id="req_1",
            actor=ENGINEER,
            case=case(),
            tenant_id=CONTOSO,
            policy=ON,
            resources=[MAILBOX],
            access_level="read",
            justification="why",
            now=T0,
        )
        before_version = 0
    elif event in SYSTEM_EVENTS:
        assert transition.source is not None
        before = in_state(transition.source)
        deadline = before.stage_deadline()
        assert deadline is not None
        result = domain.expire(before, now=deadline)
        assert result is not None
        change, before_version = result, before.version
        assert change.actor.kind == SYSTEM.kind
        assert change.details["deadline"] is not None
    else:
        assert transition.source is not None
        policy, actor = ON, PERMITTED[event]
        if event is Event.REVIEW_APPROVE and target is State.APPROVED:
            policy = OFF
        before = in_state(transition.source, policy=TWO if event is Event.APPROVE else ON)
        if event is Event.APPROVE and target is State.APPROVED:
            before = PERFORM[event](before, APPROVER, NOW).request  # first of two approvals
        if event in (Event.EXTEND_APPROVE, Event.EXTEND_DENY):
            before = asked_more(before, NOW)
        if event is Event.REVIEW_APPROVE:
            change = domain.review(
                before, actor, approve=True, comment="ok", policy=policy, now=NOW
            )
        else:
            change = PERFORM[event](before, actor, NOW)
        before_version = before.version
        assert change.actor is actor
    assert change.event is event
    assert change.source is transition.source
    assert change.target is target
    assert change.request.state is target
    assert change.request.version == before_version + 1 or event is Event.SUBMIT
    assert change.operation == f"request.{event.value}"
    assert change.details is not None


# -- refused: every State x Event the table does not list ------------------------------


def _missing_human() -> list[tuple[State, Event]]:
    return [(s, e) for s in State for e in HUMAN_EVENTS if lifecycle.find(s, e) is None]


@pytest.mark.parametrize(
    ("state", "event"), _missing_human(), ids=[f"{s}-{e}" for s, e in _missing_human()]
)
def test_every_refused_transition_names_the_state(state: State, event: Event) -> None:
    request = in_state(state)
    with pytest.raises(InvalidTransition) as info:
        PERFORM[event](request, PERMITTED[event], NOW)
    assert type(info.value) is InvalidTransition  # not a deadline / already-decided refusal
    assert info.value.state == state.value
    assert state.value in info.value.message


def test_refused_pairs_cover_every_terminal_state_and_event() -> None:
    missing = set(_missing_human())
    for state in TERMINAL:
        for event in HUMAN_EVENTS:
            assert (state, event) in missing


@pytest.mark.parametrize("state", list(State))
def test_system_events_only_where_the_table_allows(state: State) -> None:
    request = in_state(state)
    far_future = T0 + FAR
    change = domain.expire(request, now=far_future)
    allowed = {e for e in SYSTEM_EVENTS if lifecycle.find(state, e) is not None}
    if not allowed:
        assert change is None
        assert request.effective_state(far_future) is state  # terminal never changes
    else:
        assert change is not None
        assert {change.event} == allowed
        assert lifecycle.find(state, change.event) is not None
        assert change.target is request.effective_state(far_future)


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_terminal_states_refuse_everything_even_past_deadlines(state: State) -> None:
    request = in_state(state)
    for event in HUMAN_EVENTS:
        for when in (NOW, T0 + FAR):
            with pytest.raises(InvalidTransition) as info:
                PERFORM[event](request, PERMITTED[event], when)
            assert type(info.value) is InvalidTransition
            assert info.value.state == state.value


# -- not permitted: roles, tenants, people ----------------------------------------------

# (event, state the request is in, actor, expected error)
REFUSALS: list[tuple[Event, State, Principal, type[Exception]]] = [
    # review: only a manager other than the requester
    (Event.REVIEW_APPROVE, State.PENDING_REVIEW, ENGINEER, PermissionDenied),
    (Event.REVIEW_APPROVE, State.PENDING_REVIEW, ENGINEER2, NotFound),
    (Event.REVIEW_APPROVE, State.PENDING_REVIEW, APPROVER, PermissionDenied),
    (Event.REVIEW_APPROVE, State.PENDING_REVIEW, TENANT_ADMIN, PermissionDenied),
    (Event.REVIEW_APPROVE, State.PENDING_REVIEW, AUDITOR, PermissionDenied),
    (Event.REVIEW_APPROVE, State.PENDING_REVIEW, CUSTOMER_WITH_STAFF, PermissionDenied),
    (Event.REVIEW_APPROVE, State.PENDING_REVIEW, PROVIDER_ADMIN, NotFound),
    (Event.REVIEW_APPROVE, State.PENDING_REVIEW, SERVICE, NotFound),
    (Event.REVIEW_APPROVE, State.PENDING_REVIEW, FOREIGN_ADMIN, NotFound),
    (Event.REVIEW_APPROVE, State.PENDING_REVIEW, SYSTEM, NotFound),
    (Event.REVIEW_REJECT, State.PENDING_REVIEW, APPROVER, PermissionDenied),
    (Event.REVIEW_REJECT, State.PENDING_REVIEW, FOREIGN_APPROVER, NotFound),
    # decide: only the customer's approvers / admins; provider staff never
    (Event.APPROVE, State.PENDING_APPROVAL, MANAGER, PermissionDenied),
    (Event.APPROVE, State.PENDING_APPROVAL, MANAGER_ENGINEER, PermissionDenied),
    (Event.APPROVE, State.PENDING_APPROVAL, STAFF_WITH_APPROVER, PermissionDenied),
    (Event.APPROVE, State.PENDING_APPROVAL, ENGINEER, PermissionDenied),
    (Event.APPROVE, State.PENDING_APPROVAL, PROVIDER_ADMIN, NotFound),
    (Event.APPROVE, State.PENDING_APPROVAL, AUDITOR, PermissionDenied),
    (Event.APPROVE, State.PENDING_APPROVAL, FOREIGN_APPROVER, NotFound),
    (Event.APPROVE, State.PENDING_APPROVAL, FOREIGN_ADMIN, NotFound),
    (Event.DENY, State.PENDING_APPROVAL, MANAGER, PermissionDenied),
    (Event.DENY, State.PENDING_APPROVAL, ENGINEER, PermissionDenied),
    (Event.DENY, State.PENDING_APPROVAL, FOREIGN_APPROVER, NotFound),
    # cancel: only the requester
    (Event.CANCEL, State.PENDING_REVIEW, ENGINEER2, NotFound),
    (Event.CANCEL, State.PENDING_REVIEW, MANAGER, PermissionDenied),
    (Event.CANCEL, State.PENDING_REVIEW, MANAGER_ENGINEER, PermissionDenied),
    (Event.CANCEL, State.PENDING_APPROVAL, APPROVER, PermissionDenied),
    (Event.CANCEL, State.PENDING_APPROVAL, FOREIGN_ADMIN, NotFound),
    # close: requester or manager
    (Event.CLOSE, State.APPROVED, ENGINEER2, NotFound),
    (Event.CLOSE, State.APPROVED, APPROVER, PermissionDenied),
    (Event.CLOSE, State.APPROVED, TENANT_ADMIN, PermissionDenied),
    (Event.CLOSE, State.APPROVED, CUSTOMER_WITH_STAFF, PermissionDenied),
    (Event.CLOSE, State.APPROVED, PROVIDER_ADMIN, NotFound),
    (Event.CLOSE, State.APPROVED, FOREIGN_APPROVER, NotFound),
    # revoke: the customer's approvers / admins
    (Event.REVOKE, State.APPROVED, ENGINEER, PermissionDenied),
    (Event.REVOKE, State.APPROVED, MANAGER, PermissionDenied),
    (Event.REVOKE, State.APPROVED, STAFF_WITH_APPROVER, PermissionDenied),
    (Event.REVOKE, State.APPROVED, AUDITOR, PermissionDenied),
    (Event.REVOKE, State.APPROVED, FOREIGN_ADMIN, NotFound),
    (Event.REVOKE, State.APPROVED, FOREIGN_APPROVER, NotFound),
]


@pytest.mark.parametrize(
    ("event", "state", "actor", "error"),
    REFUSALS,
    ids=[f"{e}-{a.id}" for e, _s, a, _x in REFUSALS],
)
def test_not_permitted(
    event: Event, state: State, actor: Principal, error: type[Exception]
) -> None:
    request = in_state(state)
    with pytest.raises(error) as info:
        PERFORM[event](request, actor, NOW)
    if error is PermissionDenied:
        assert not isinstance(info.value, NotFound)
    if error is NotFound:
        # Indistinguishable from a missing request: nothing about it in the message.
        assert request.id not in str(info.value)
        assert "not found" in str(info.value)


def test_foreign_tenant_sees_not_found_in_every_state() -> None:
    for state in State:
        request = in_state(state)
        for event in HUMAN_EVENTS:
            if event is Event.CASE_CLOSED:
                continue  # authorised on the case by the service (tests/integration)
            for actor in (FOREIGN_ADMIN, FOREIGN_APPROVER):
                with pytest.raises(NotFound):
                    PERFORM[event](request, actor, NOW)


def test_permitted_alternatives() -> None:
    # A tenant admin decides and revokes like an approver; a manager may close.
    r = in_state(State.PENDING_APPROVAL)
    assert PERFORM[Event.APPROVE](r, TENANT_ADMIN, NOW).request.state is State.APPROVED
    assert PERFORM[Event.DENY](r, TENANT_ADMIN, NOW).request.state is State.DENIED
    approved = in_state(State.APPROVED)
    assert PERFORM[Event.REVOKE](approved, TENANT_ADMIN, NOW).request.state is State.REVOKED
    assert PERFORM[Event.CLOSE](approved, MANAGER, NOW).request.state is State.CLOSED
    assert PERFORM[Event.CLOSE](approved, MANAGER_ENGINEER, NOW).request.state is State.CLOSED
    # A manager who is also an engineer may review someone else's request.
    pending = in_state(State.PENDING_REVIEW)
    assert (
        PERFORM[Event.REVIEW_APPROVE](pending, MANAGER_ENGINEER, NOW).request.state
        is State.PENDING_APPROVAL
    )


# -- separation of duties --------------------------------------------------------------


def test_requester_cannot_review_own_request() -> None:
    request = in_state(State.PENDING_REVIEW, requester=MANAGER_ENGINEER)
    for approve in (True, False):
        with pytest.raises(SeparationOfDuties, match="own"):
            domain.review(
                request, MANAGER_ENGINEER, approve=approve, comment=None, policy=ON, now=NOW
            )
    # another manager may
    assert (
        domain.review(request, MANAGER, approve=True, comment=None, policy=ON, now=NOW).target
        is State.PENDING_APPROVAL
    )


def test_requester_who_is_manager_can_still_close_and_cancel_own() -> None:
    request = in_state(State.PENDING_REVIEW, requester=MANAGER_ENGINEER)
    assert domain.cancel(request, MANAGER_ENGINEER, comment=None, now=NOW).target is State.CANCELED


def test_only_the_case_engineer_can_submit() -> None:
    def attempt(actor: Principal, **kw: object) -> Change:
        args: dict[str, object] = {
            "request_id": "req_1",
            "actor": actor,
            "case": case(ENGINEER),
            "tenant_id": CONTOSO,
            "policy": ON,
            "resources": [MAILBOX],
            "access_level": "read",
            "justification": "why",
            "now": T0,
        }
        args.update(kw)
        return domain.submit(**args)  # type: ignore[arg-type]

    assert attempt(ENGINEER).target is State.PENDING_REVIEW
    with pytest.raises(SeparationOfDuties, match="assigned"):
        attempt(ENGINEER2)
    with pytest.raises(SeparationOfDuties):
        attempt(MANAGER_ENGINEER)
    with pytest.raises(PermissionDenied):
        attempt(MANAGER)
    for actor in (PROVIDER_ADMIN, SERVICE, SYSTEM):  # cannot even see cases
        with pytest.raises(NotFound):
            attempt(actor)
    for actor in (APPROVER, TENANT_ADMIN, AUDITOR, CUSTOMER_WITH_STAFF):
        with pytest.raises(PermissionDenied) as info:
            attempt(actor)
        assert not isinstance(info.value, SeparationOfDuties)
    with pytest.raises(NotFound):
        attempt(FOREIGN_ADMIN)
    with pytest.raises(ValidationError, match="case_id"):
        attempt(ENGINEER, case=case(ENGINEER, open_=False))
    with pytest.raises(ValidationError, match="case_id"):
        attempt(ENGINEER, tenant_id="ten_other")


@pytest.mark.parametrize(
    ("field", "kw"),
    [
        ("resources", {"resources": []}),
        ("resources", {"resources": "exchange/mailbox/x"}),
        ("resources[0]", {"resources": ["*"]}),
        ("resources[0]", {"resources": ["exchange/*/x"]}),
        ("access_level", {"access_level": "admin"}),
        ("justification", {"justification": "   "}),
        ("justification", {"justification": None}),
        ("justification", {"justification": "x" * 4001}),
        ("justification", {"justification": "line\x1bforged"}),
    ],
)
def test_submit_validation_names_the_field(field: str, kw: dict[str, object]) -> None:
    args: dict[str, object] = {
        "request_id": "req_1",
        "actor": ENGINEER,
        "case": case(),
        "tenant_id": CONTOSO,
        "policy": ON,
        "resources": [MAILBOX],
        "access_level": "read",
        "justification": "why",
        "now": T0,
    }
    args.update(kw)
    with pytest.raises(ValidationError) as info:
        domain.submit(**args)  # type: ignore[arg-type]
    assert info.value.field == field


# -- deadlines -------------------------------------------------------------------------


def _human_from_open() -> list[tuple[State, Event]]:
    return [
        (t.source, t.event)
        for t in TRANSITIONS
        if t.source is not None and t.event in PERFORM and t.event is not Event.CASE_CLOSED
    ]


@pytest.mark.parametrize(
    ("state", "event"), _human_from_open(), ids=[f"{s}-{e}" for s, e in _human_from_open()]
)
def test_deadline_edges(state: State, event: Event) -> None:
    request = in_state(state)
    deadline = request.stage_deadline()
    assert deadline is not None
    ended = State.ACCESS_ENDED if state is State.APPROVED else State.EXPIRED
    actor = PERMITTED[event]
    # one second before: allowed
    assert PERFORM[event](request, actor, deadline - SECOND).source is state
    assert request.effective_state(deadline - SECOND) is state
    # exactly at the deadline and one second after: refused, and it reads as ended
    for when in (deadline, deadline + SECOND):
        with pytest.raises(DeadlinePassed) as info:
            PERFORM[event](request, actor, when)
        assert info.value.state == ended.value
        assert ended.value in info.value.message
        assert request.effective_state(when) is ended


@pytest.mark.parametrize("state", [State.PENDING_REVIEW, State.PENDING_APPROVAL, State.APPROVED])
def test_expire_edges(state: State) -> None:
    request = in_state(state)
    deadline = request.stage_deadline()
    assert deadline is not None
    assert domain.expire(request, now=deadline - SECOND) is None
    change = domain.expire(request, now=deadline)
    assert change is not None
    assert change.target is (State.ACCESS_ENDED if state is State.APPROVED else State.EXPIRED)
    assert change.request.state is change.target
    assert change.request.ended_by == SYSTEM.id
    assert change.details["deadline"] == format_instant(deadline)
    # recording it later keeps the deadline that passed
    late = domain.expire(request, now=deadline + MINUTE * 90)
    assert late is not None and late.details["deadline"] == change.details["deadline"]
    assert domain.expire(change.request, now=deadline + MINUTE) is None


def test_windows_follow_policy() -> None:
    policy = LockboxPolicy(
        review_window=MINUTE * 30, approval_window=MINUTE * 60, access_window=MINUTE * 90
    )
    r = submitted(policy=policy)
    assert r.review_deadline == T0 + MINUTE * 30
    r = domain.review(r, MANAGER, approve=True, comment=None, policy=policy, now=NOW).request
    assert r.approval_deadline == NOW + MINUTE * 60
    r = domain.decide(r, APPROVER, approve=True, comment=None, policy=policy, now=NOW).request
    assert r.access_deadline == NOW + MINUTE * 90
    assert r.approved_at == NOW


def test_approval_one_second_after_the_deadline_reads_as_expired() -> None:
    request = in_state(State.PENDING_APPROVAL)
    assert request.approval_deadline is not None
    late = request.approval_deadline + SECOND
    with pytest.raises(DeadlinePassed) as info:
        domain.decide(request, APPROVER, approve=True, comment=None, policy=ON, now=late)
    assert info.value.state == "expired"
    assert request.effective_state(late) is State.EXPIRED
    assert not request.is_active(late)


def test_case_closed_ends_requests_regardless_of_deadline() -> None:
    for state, target in (
        (State.PENDING_REVIEW, State.CANCELED),
        (State.PENDING_APPROVAL, State.CANCELED),
        (State.APPROVED, State.CLOSED),
    ):
        change = domain.end_for_closed_case(in_state(state), MANAGER, now=NOW)
        assert change.target is target
        assert change.request.end_comment == "support case closed"


# -- multi-approval counting and the lockbox-off path -----------------------------------


def test_multi_approval_counting() -> None:
    r = domain.review(
        submitted(policy=TWO), MANAGER, approve=True, comment=None, policy=TWO, now=NOW
    ).request
    assert r.state is State.PENDING_APPROVAL
    assert r.required_approvals == 2
    first = domain.decide(r, APPROVER, approve=True, comment="one", policy=TWO, now=NOW)
    assert first.target is State.PENDING_APPROVAL
    assert first.source is State.PENDING_APPROVAL
    assert first.details["approvals"] == 1
    assert first.request.access_deadline is None
    assert not domain.check_access(first.request, ENGINEER.id, MAILBOX, Action.READ, NOW).allowed
    r = first.request
    # the same approver again, either way: already decided
    for approve in (True, False):
        with pytest.raises(AlreadyDecided) as info:
            domain.decide(r, APPROVER, approve=approve, comment=None, policy=TWO, now=NOW)
        assert info.value.state == "pending_approval"
    second = domain.decide(r, APPROVER2, approve=True, comment="two", policy=TWO, now=NOW)
    assert second.target is State.APPROVED
    assert second.details["approvals"] == 2
    assert [d.actor_id for d in second.request.approvals()] == [APPROVER.id, APPROVER2.id]
    assert second.request.version == r.version + 1
    assert domain.check_access(second.request, ENGINEER.id, MAILBOX, Action.READ, NOW).allowed


def test_one_deny_ends_a_multi_approval_request() -> None:
    r = domain.review(
        submitted(policy=TWO), MANAGER, approve=True, comment=None, policy=TWO, now=NOW
    ).request
    r = domain.decide(r, APPROVER, approve=True, comment=None, policy=TWO, now=NOW).request
    change = domain.decide(r, TENANT_ADMIN, approve=False, comment="no", policy=TWO, now=NOW)
    assert change.target is State.DENIED


def test_required_approvals_fixed_at_review() -> None:
    r = domain.review(
        submitted(policy=TWO), MANAGER, approve=True, comment=None, policy=TWO, now=NOW
    ).request
    # the tenant lowers the requirement afterwards: this request still needs two
    change = domain.decide(r, APPROVER, approve=True, comment=None, policy=ON, now=NOW)
    assert change.target is State.PENDING_APPROVAL


def test_lockbox_off_goes_straight_to_approved() -> None:
    r = submitted(policy=OFF)
    change = domain.review(r, MANAGER, approve=True, comment="ok", policy=OFF, now=NOW)
    assert change.target is State.APPROVED
    approved = change.request
    assert approved.customer_step is False
    assert approved.approval_deadline is None
    assert approved.access_deadline == NOW + OFF.access_window
    assert change.details["lockbox"] == "off"
    assert domain.check_access(approved, ENGINEER.id, MAILBOX, Action.READ, NOW).allowed
    with pytest.raises(InvalidTransition) as info:
        domain.decide(approved, APPROVER, approve=True, comment=None, policy=OFF, now=NOW)
    assert info.value.state == "approved"
    # still time-bounded
    assert approved.access_deadline is not None
    assert approved.effective_state(approved.access_deadline) is State.ACCESS_ENDED
    # and still rejectable by the manager
    assert (
        domain.review(r, MANAGER, approve=False, comment=None, policy=OFF, now=NOW).target
        is State.REJECTED
    )


# -- bounded access ---------------------------------------------------------------------


def test_check_access_bounds() -> None:
    approved = in_state(State.APPROVED)
    assert approved.access_deadline is not None
    ok = domain.check_access(approved, ENGINEER.id, MAILBOX, Action.READ, NOW)
    assert ok.allowed
    checks = [
        (ENGINEER2.id, MAILBOX, Action.READ, NOW, "not_requester"),
        (ENGINEER.id, "exchange/mailbox/bob@contoso.com", Action.READ, NOW, "out_of_scope"),
        (ENGINEER.id, MAILBOX + "/inbox", Action.READ, NOW, "out_of_scope"),
        (ENGINEER.id, MAILBOX, Action.WRITE, NOW, "level_too_low"),
        (ENGINEER.id, MAILBOX, Action.READ, approved.access_deadline, "expired"),
    ]
    for engineer, resource, action, when, reason in checks:
        decision = domain.check_access(approved, engineer, resource, action, when)
        assert not decision.allowed
        assert decision.reason == reason
    for state in State:
        if state is State.APPROVED:
            continue
        decision = domain.check_access(in_state(state), ENGINEER.id, MAILBOX, Action.READ, NOW)
        assert not decision.allowed, state
    with pytest.raises(ValidationError):
        domain.check_access(approved, ENGINEER.id, "exchange/mailbox/*", Action.READ, NOW)
