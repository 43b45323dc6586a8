"""The lifecycle through the service layer, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from lockbox.domain.errors import (
    AlreadyDecided,
    Conflict,
    DeadlinePassed,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    SeparationOfDuties,
    ValidationError,
)
from lockbox.domain.instants import format_instant
from lockbox.domain.lifecycle import State
from lockbox.domain.roles import Principal
from lockbox.service import cases, requests, sweeper
from lockbox.store import repositories as repo
from tests.conftest import World
from tests.integration.helpers import (
    approved,
    chains_ok,
    operations,
    pending_approval,
    records,
    set_policy,
    stored,
    submit,
)

SECOND = timedelta(seconds=1)


def assert_audited(world: World, request_id: str) -> None:
    """Every stored change of the request has exactly one audit record, in order."""
    req = stored(world.app, request_id)
    ops = [
        r
        for r in records(world.app, req.tenant_id, request_id)
        if r.operation.startswith("request.")
    ]
    assert len(ops) == req.version
    assert ops[0].details["from"] is None
    for before, after in itertools.pairwise(ops):
        assert after.details["from"] == before.details["to"]
    assert ops[-1].details["to"] == req.state.value


def test_reject_deny_cancel_paths(world: World) -> None:
    app = world.app
    r1 = submit(world)
    r1 = requests.review_request(app, world.manager, r1.id, approve=False, comment="no need")
    assert r1.state is State.REJECTED
    assert r1.reviewer_id == world.manager.id
    r2 = pending_approval(world)
    r2 = requests.decide_request(app, world.contoso_admin, r2.id, approve=False, comment="no")
    assert r2.state is State.DENIED
    r3 = submit(world)
    assert requests.cancel_request(app, world.engineer, r3.id).state is State.CANCELED
    r4 = pending_approval(world)
    assert requests.cancel_request(app, world.engineer, r4.id).state is State.CANCELED
    r5 = approved(world)
    assert requests.revoke_request(app, world.contoso_approver, r5.id).state is State.REVOKED
    r6 = approved(world)
    assert requests.close_request(app, world.manager, r6.id).state is State.CLOSED
    for r in (r1, r2, r3, r4, r5, r6):
        assert_audited(world, r.id)
        assert stored(app, r.id).state.terminal
    denied = operations(app, world.contoso, r2.id)
    assert denied == ["request.submit", "request.review_approve", "request.deny"]
    assert chains_ok(app)


def test_terminal_requests_refuse_everything(world: World) -> None:
    app = world.app
    req = approved(world)
    requests.close_request(app, world.engineer, req.id)
    attempts = [
        lambda: requests.review_request(app, world.manager, req.id, approve=True),
        lambda: requests.decide_request(app, world.contoso_approver2, req.id, approve=True),
        lambda: requests.cancel_request(app, world.engineer, req.id),
        lambda: requests.close_request(app, world.engineer, req.id),
        lambda: requests.revoke_request(app, world.contoso_approver, req.id),
    ]
    count = len(records(app, world.contoso))
    for attempt in attempts:
        with pytest.raises(InvalidTransition) as info:
            attempt()
        assert info.value.state == "closed"
    assert len(records(app, world.contoso)) == count
    assert stored(app, req.id).state is State.CLOSED


def test_refusals_change_nothing_and_hide_foreign_requests(world: World) -> None:
    app = world.app
    req = pending_approval(world)
    before = stored(app, req.id)
    count = len(records(app, world.contoso))
    foreign: list[Principal] = [
        world.fabrikam_admin,
        world.fabrikam_approver,
        world.fabrikam_auditor,
    ]
    for actor in foreign:
        for attempt in (
            lambda a=actor: requests.get_request(app, a, req.id),
            lambda a=actor: requests.decide_request(app, a, req.id, approve=True),
            lambda a=actor: requests.revoke_request(app, a, req.id),
            lambda a=actor: requests.cancel_request(app, a, req.id),
        ):
            with pytest.raises(NotFound) as info:
                attempt()
            assert str(info.value) == "access request not found"
    # a missing id reads exactly the same
    with pytest.raises(NotFound) as missing:
        requests.get_request(app, world.fabrikam_admin, "req_00000000000000000000000000")
    assert str(missing.value) == "access request not found"
    with pytest.raises(NotFound):
        requests.get_request(app, world.engineer2, req.id)  # another engineer's request
    with pytest.raises(PermissionDenied):
        requests.decide_request(app, world.manager, req.id, approve=True)
    with pytest.raises(PermissionDenied):
        requests.decide_request(app, world.contoso_auditor, req.id, approve=True)
    with pytest.raises(PermissionDenied):
        requests.cancel_request(app, world.manager2, req.id)  # only the requester cancels
    with pytest.raises(ValidationError):
        requests.decide_request(app, world.contoso_approver, req.id, approve=True, comment="\x00")
    assert stored(app, req.id) == before
    assert len(records(app, world.contoso)) == count


def test_requester_cannot_review_own_request(world: World) -> None:
    app = world.app
    req = submit(world, engineer=world.manager2)
    with pytest.raises(SeparationOfDuties):
        requests.review_request(app, world.manager2, req.id, approve=True)
    assert requests.review_request(app, world.manager, req.id, approve=True).state is (
        State.PENDING_APPROVAL
    )


def test_only_the_case_engineer_submits(world: World) -> None:
    app = world.app
    case = cases.open_case(app, world.engineer, tenant="contoso", title="t")
    with pytest.raises(SeparationOfDuties):
        submit(world, engineer=world.engineer2, case_id=case.id)
    with pytest.raises(PermissionDenied):
        submit(world, engineer=world.contoso_approver, case_id=case.id)
    with pytest.raises(NotFound):
        submit(world, engineer=world.fabrikam_admin, case_id=case.id)
    with pytest.raises(ValidationError, match="case_id"):
        submit(world, tenant="fabrikam", case_id=case.id)  # the case is contoso's
    # assigning the case to another engineer moves the right with it
    other = cases.open_case(
        app, world.manager, tenant="contoso", title="t", engineer=world.engineer2.id
    )
    assert submit(world, engineer=world.engineer2, case_id=other.id).state is State.PENDING_REVIEW


def test_multi_approval_and_already_decided(world: World) -> None:
    app = world.app
    set_policy(world, required_approvals=2)
    req = pending_approval(world)
    assert req.required_approvals == 2
    first = requests.decide_request(app, world.contoso_approver, req.id, approve=True)
    assert first.state is State.PENDING_APPROVAL
    with pytest.raises(AlreadyDecided):
        requests.decide_request(app, world.contoso_approver, req.id, approve=True)
    with pytest.raises(AlreadyDecided):
        requests.decide_request(app, world.contoso_approver, req.id, approve=False)
    second = requests.decide_request(app, world.contoso_admin, req.id, approve=True)
    assert second.state is State.APPROVED
    reloaded = stored(app, req.id)
    assert {d.actor_id for d in reloaded.decisions} == {
        world.contoso_approver.id,
        world.contoso_admin.id,
    }
    assert_audited(world, req.id)


def test_lockbox_off_skips_the_customer(world: World) -> None:
    app = world.app
    set_policy(world, enabled=False)
    req = submit(world)
    req = requests.review_request(app, world.manager, req.id, approve=True)
    assert req.state is State.APPROVED
    assert req.customer_step is False
    assert req.access_deadline == world.clock.now() + timedelta(hours=4)
    with pytest.raises(InvalidTransition):
        requests.decide_request(app, world.contoso_approver, req.id, approve=True)
    # the customer can still revoke, and the chain records the skipped step
    assert requests.revoke_request(app, world.contoso_approver, req.id).state is State.REVOKED
    review = [
        r for r in records(app, world.contoso, req.id) if r.operation == "request.review_approve"
    ]
    assert review[0].details["lockbox"] == "off"


def test_deadline_at_the_instant_and_sweeper(world: World) -> None:
    app = world.app
    req = pending_approval(world)
    assert req.approval_deadline is not None
    world.clock.set(req.approval_deadline - SECOND)
    assert requests.get_request(app, world.engineer, req.id).state is State.PENDING_APPROVAL
    world.clock.set(req.approval_deadline)
    with pytest.raises(DeadlinePassed) as info:
        requests.decide_request(app, world.contoso_approver, req.id, approve=True)
    assert info.value.state == "expired"
    # nothing was recorded, but it reads as expired before any sweeper ran
    assert stored(app, req.id).state is State.PENDING_APPROVAL
    assert requests.get_request(app, world.engineer, req.id).state is State.EXPIRED
    listed = requests.list_requests(app, world.manager, states=["expired"])
    assert [v.request.id for v in listed.items] == [req.id]
    assert listed.items[0].state is State.EXPIRED
    assert requests.list_requests(app, world.manager, states=["pending_approval"]).items == []
    # the sweeper records it once, dated now, and is idempotent
    world.clock.advance(timedelta(minutes=5))
    assert sweeper.sweep_deadlines(app).expired == 1
    assert sweeper.sweep_deadlines(app).expired == 0
    final = stored(app, req.id)
    assert final.state is State.EXPIRED
    expiry = [r for r in records(app, world.contoso, req.id) if r.operation == "request.expire"]
    assert len(expiry) == 1
    assert expiry[0].actor_kind == "system"
    assert expiry[0].at == world.clock.now()
    assert expiry[0].details["deadline"] == format_instant(req.approval_deadline)
    assert_audited(world, req.id)
    assert chains_ok(app)


def test_access_window_ends_and_sweeper_records_it(world: World) -> None:
    app = world.app
    req = approved(world)
    review = submit(world)  # a second request that expires in review
    assert req.access_deadline is not None
    world.clock.set(req.access_deadline)
    assert requests.get_request(app, world.engineer, req.id).state is State.ACCESS_ENDED
    listed = requests.list_requests(app, world.engineer, states=["access_ended"])
    assert [v.request.id for v in listed.items] == [req.id]
    assert requests.list_requests(app, world.engineer, states=["approved"]).items == []
    with pytest.raises(DeadlinePassed):
        requests.close_request(app, world.engineer, req.id)
    world.clock.set(review.review_deadline)
    result = sweeper.sweep_deadlines(app)
    assert result.expired == 2
    assert stored(app, req.id).state is State.ACCESS_ENDED
    assert stored(app, review.id).state is State.EXPIRED
    assert sweeper.sweep_deadlines(app).expired == 0
    assert_audited(world, req.id)
    assert_audited(world, review.id)


def test_closing_a_case_ends_its_open_requests(world: World) -> None:
    app = world.app
    case = cases.open_case(app, world.engineer, tenant="contoso", title="Broken")
    in_review = submit(world, case_id=case.id)
    waiting = pending_approval(world, case_id=case.id)
    granted = approved(world, case_id=case.id)
    done = approved(world, case_id=case.id)
    requests.close_request(app, world.engineer, done.id)
    other_case = approved(world)  # a request on another case is untouched
    closed, ended = cases.close_case(app, world.manager, case.id, comment="solved")
    assert closed.status.value == "closed"
    assert {r.id: r.state for r in ended} == {
        in_review.id: State.CANCELED,
        waiting.id: State.CANCELED,
        granted.id: State.CLOSED,
    }
    for r in (in_review, waiting, granted):
        assert stored(app, r.id).state is State.CANCELED if r is not granted else State.CLOSED
        assert operations(app, world.contoso, r.id)[-1] == "request.case_closed"
        assert_audited(world, r.id)
    assert stored(app, done.id).state is State.CLOSED
    assert stored(app, other_case.id).state is State.APPROVED
    with pytest.raises(InvalidTransition):
        cases.close_case(app, world.manager, case.id)
    with pytest.raises(ValidationError, match="closed"):
        submit(world, case_id=case.id)
    assert chains_ok(app)


def test_closing_a_case_records_expiry_when_the_deadline_passed(world: World) -> None:
    app = world.app
    case = cases.open_case(app, world.engineer, tenant="contoso", title="Broken")
    req = approved(world, case_id=case.id)
    assert req.access_deadline is not None
    world.clock.set(req.access_deadline + SECOND)
    _, ended = cases.close_case(app, world.engineer, case.id)
    assert [r.state for r in ended] == [State.ACCESS_ENDED]
    assert operations(app, world.contoso, req.id)[-1] == "request.end_access"


def test_closing_a_case_is_one_transaction(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    app = world.app
    case = cases.open_case(app, world.engineer, tenant="contoso", title="Broken")
    first = submit(world, case_id=case.id)
    second = approved(world, case_id=case.id)
    count = len(records(app, world.contoso))
    real = repo.update_request
    calls = []

    def failing(conn, request, previous):  # type: ignore[no-untyped-def]
        calls.append(request.id)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(conn, request, previous)

    monkeypatch.setattr(repo, "update_request", failing)
    with pytest.raises(RuntimeError):
        cases.close_case(app, world.manager, case.id)
    monkeypatch.setattr(repo, "update_request", real)
    assert len(calls) == 2
    assert stored(app, first.id).state is State.PENDING_REVIEW
    assert stored(app, second.id).state is State.APPROVED
    assert cases.get_case(app, world.manager, case.id).status.value == "open"
    assert len(records(app, world.contoso)) == count
    assert chains_ok(app)


def test_who_may_close_a_case(world: World) -> None:
    app = world.app
    case = cases.open_case(app, world.engineer, tenant="contoso", title="Broken")
    with pytest.raises(PermissionDenied):
        cases.close_case(app, world.engineer2, case.id)
    with pytest.raises(PermissionDenied):
        cases.close_case(app, world.contoso_admin, case.id)
    with pytest.raises(NotFound):
        cases.close_case(app, world.fabrikam_admin, case.id)
    assert cases.close_case(app, world.engineer, case.id)[0].status.value == "closed"


def test_expected_version(world: World) -> None:
    app = world.app
    req = pending_approval(world)
    with pytest.raises(Conflict):
        requests.decide_request(
            app, world.contoso_approver, req.id, approve=True, expected_version=req.version - 1
        )
    assert stored(app, req.id).state is State.PENDING_APPROVAL
    done = requests.decide_request(
        app, world.contoso_approver, req.id, approve=True, expected_version=req.version
    )
    assert done.version == req.version + 1
    with pytest.raises(Conflict):
        requests.close_request(app, world.engineer, req.id, expected_version=req.version)


def test_list_visibility(world: World) -> None:
    app = world.app
    mine = submit(world)
    theirs = submit(world, engineer=world.engineer2)
    foreign = submit(world, tenant="fabrikam")

    def ids(actor: Principal, **kw: object) -> set[str]:
        return {v.request.id for v in requests.list_requests(app, actor, **kw).items}  # type: ignore[arg-type]

    assert ids(world.engineer) == {mine.id, foreign.id}
    assert ids(world.engineer2) == {theirs.id}
    assert ids(world.manager) == {mine.id, theirs.id, foreign.id}
    assert ids(world.manager, tenant="fabrikam") == {foreign.id}
    assert ids(world.contoso_auditor) == {mine.id, theirs.id}
    assert ids(world.fabrikam_approver) == {foreign.id}
    assert ids(world.provider_admin) == set()
    assert ids(world.engineer, requester=world.engineer2.id) == set()
    with pytest.raises(NotFound):
        requests.list_requests(app, world.fabrikam_approver, tenant="contoso")
    with pytest.raises(ValidationError, match="state"):
        requests.list_requests(app, world.manager, states=["bogus"])
    with pytest.raises(ValidationError, match="limit"):
        requests.list_requests(app, world.manager, limit=0)


def test_cursor_pagination(world: World) -> None:
    app = world.app
    case = cases.open_case(app, world.engineer, tenant="contoso", title="Many")
    created = []
    for i in range(7):
        created.append(submit(world, case_id=case.id).id)
        if i % 3 == 2:
            world.clock.advance(SECOND)  # some share a timestamp, some do not
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = requests.list_requests(app, world.manager, limit=3, cursor=cursor)
        seen += [v.request.id for v in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
        assert len(page.items) == 3
    assert pages == 3
    assert sorted(seen) == sorted(created)
    assert len(seen) == len(set(seen))
    full = [v.request for v in requests.list_requests(app, world.manager, limit=50).items]
    assert [r.id for r in full] == seen
    keys = [(r.created_at, r.id) for r in full]
    assert keys == sorted(keys, reverse=True)
    with pytest.raises(ValidationError, match="cursor"):
        requests.list_requests(app, world.manager, cursor="not-a-cursor")


def test_policy_change_is_audited_and_applies_to_new_requests(world: World) -> None:
    app = world.app
    old = pending_approval(world)
    set_policy(world, approval_window=timedelta(hours=1))
    new = pending_approval(world)
    assert old.approval_deadline == world.clock.now() + timedelta(hours=12)
    assert new.approval_deadline == world.clock.now() + timedelta(hours=1)
    ops = [r.operation for r in records(app, world.contoso)]
    assert "policy.changed" in ops
    with pytest.raises(ValidationError, match="approval_window"):
        set_policy(world, approval_window=timedelta(minutes=1))
    from lockbox.service import tenants

    with pytest.raises(PermissionDenied):
        tenants.change_policy(app, world.contoso_approver, "contoso", {"enabled": False})
    with pytest.raises(NotFound):
        tenants.change_policy(app, world.fabrikam_admin, "contoso", {"enabled": False})
