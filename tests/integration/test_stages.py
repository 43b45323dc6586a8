"""Approval stages on the real stores (SQLite and PostgreSQL).

The bank of the issue: every request needs one of its approvers; write access also needs
its security officer (a named group), after the approvers. Stages are met in order, a
denial at any stage denies, the plan is frozen when the request reaches the customer,
and the people asked (page, API, e-mail) are exactly those the current stage admits.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from lockbox.domain.errors import PermissionDenied, ValidationError
from lockbox.domain.lifecycle import State
from lockbox.service import requests
from lockbox.store import tables as t
from tests.conftest import World
from tests.integration.helpers import chains_ok, pending_approval, set_policy, stored

BANK = [
    {"key": "approvers", "name": "Approvers", "required": 1, "roles": ["approver"]},
    {
        "key": "security",
        "name": "Security officer",
        "group": "security",
        "condition": {"access_level": "read_write"},
    },
]


@pytest.fixture
def bank(world: World) -> World:
    """Contoso as the bank: Ines (tenant admin) is its security officer."""
    set_policy(world, groups={"security": ["ines@contoso.test"]}, stages=BANK)
    return world


def asked(world: World, request_id: str) -> list[str]:
    with world.app.read() as tx:
        rows = tx.conn.execute(
            select(t.outbox.c.recipient).where(
                t.outbox.c.request_id == request_id, t.outbox.c.topic == "approval_needed"
            )
        )
        return sorted(r[0] for r in rows)


def test_read_access_needs_only_the_stages_whose_condition_holds(bank: World) -> None:
    req = pending_approval(bank, level="read")
    assert [s.key for s in req.stages] == ["approvers"]
    done = requests.decide_request(bank.app, bank.contoso_approver, req.id, approve=True)
    assert done.state is State.APPROVED


def test_write_access_needs_the_approvers_then_the_security_officer(bank: World) -> None:
    app = bank.app
    req = pending_approval(bank, level="read_write")
    assert [s.key for s in req.stages] == ["approvers", "security"]
    assert req.required_approvals == 2
    assert asked(bank, req.id) == ["paula@contoso.test", "quinn@contoso.test"]
    view = requests.get_request(app, bank.contoso_admin, req.id, history=False)
    assert set(view.can_approve) == {bank.contoso_approver.id, bank.contoso_approver2.id}

    # In order: the security officer cannot approve before the approvers' stage is met.
    with pytest.raises(PermissionDenied, match="Approvers stage needs an approver"):
        requests.decide_request(app, bank.contoso_admin, req.id, approve=True)
    req = requests.decide_request(app, bank.contoso_approver, req.id, approve=True)
    assert req.state is State.PENDING_APPROVAL
    assert req.current_stage() is not None and req.current_stage().key == "security"
    # The next stage's people are asked now, and only they may approve it.
    assert asked(bank, req.id) == ["ines@contoso.test", "paula@contoso.test", "quinn@contoso.test"]
    view = requests.get_request(app, bank.contoso_admin, req.id, history=False)
    assert view.can_approve == (bank.contoso_admin.id,)
    with pytest.raises(PermissionDenied, match="member of the group 'security'"):
        requests.decide_request(app, bank.contoso_approver2, req.id, approve=True)
    # Both approvals seen on the same version (If-Match) count: no conflict for the second.
    req = requests.decide_request(
        app, bank.contoso_admin, req.id, approve=True, expected_version=req.version
    )
    assert req.state is State.APPROVED
    final = stored(app, req.id)
    assert {(d.actor_id, d.stage) for d in final.decisions} == {
        (bank.contoso_approver.id, "approvers"),
        (bank.contoso_admin.id, "security"),
    }
    assert chains_ok(app)


@pytest.mark.parametrize("at_stage", ["approvers", "security"])
def test_a_denial_at_any_stage_denies(bank: World, at_stage: str) -> None:
    app = bank.app
    req = pending_approval(bank, level="read_write")
    if at_stage == "security":
        requests.decide_request(app, bank.contoso_approver, req.id, approve=True)
        denier = bank.contoso_admin
    else:
        denier = bank.contoso_approver2
    denied = requests.decide_request(app, denier, req.id, approve=False, comment="no")
    assert denied.state is State.DENIED
    (denial,) = [d for d in stored(app, req.id).decisions if d.kind.value == "deny"]
    assert denial.stage == at_stage


def test_a_stage_counts_distinct_approvals_up_to_its_threshold(world: World) -> None:
    set_policy(
        world,
        stages=[{"key": "two", "name": "Two approvers", "required": 2, "roles": ["approver"]}],
    )
    app = world.app
    req = pending_approval(world)
    req = requests.decide_request(app, world.contoso_approver, req.id, approve=True)
    assert req.state is State.PENDING_APPROVAL
    view = requests.get_request(app, world.contoso_admin, req.id, history=False)
    assert view.can_approve == (world.contoso_approver2.id,)
    req = requests.decide_request(app, world.contoso_approver2, req.id, approve=True)
    assert req.state is State.APPROVED


def test_the_plan_is_frozen_when_the_request_reaches_the_customer(bank: World) -> None:
    req = pending_approval(bank, level="read_write")
    set_policy(bank, stages=[])  # back to one stage of one approver
    approved_once = requests.decide_request(bank.app, bank.contoso_approver, req.id, approve=True)
    assert approved_once.state is State.PENDING_APPROVAL  # still needs the security officer
    assert pending_approval(bank, level="read_write").stages[0].key == "approvers"


def test_a_request_from_before_stages_keeps_its_meaning(world: World) -> None:
    """Stored without a plan and with decisions without a stage (as the migration leaves
    requests that were waiting): one stage of its own required_approvals."""
    set_policy(world, required_approvals=2)
    app = world.app
    req = pending_approval(world)
    requests.decide_request(app, world.contoso_approver, req.id, approve=True)
    with app.db.write() as conn:
        conn.execute(
            update(t.access_requests).where(t.access_requests.c.id == req.id).values(stages=None)
        )
        conn.execute(update(t.request_decisions).values(stage=None))
    legacy = stored(app, req.id)
    assert legacy.stages == () and legacy.decisions[0].stage is None
    assert [s.required for s in legacy.planned_stages()] == [2]
    assert len(legacy.stage_approvals(legacy.planned_stages()[0])) == 1
    done = requests.decide_request(app, world.contoso_approver2, req.id, approve=True)
    assert done.state is State.APPROVED


def test_groups_hold_only_the_tenants_own_people(world: World) -> None:
    with pytest.raises(ValidationError) as err:
        set_policy(world, groups={"security": ["fay@fabrikam.test"]})
    assert err.value.field == "groups.security[0]"
    with pytest.raises(ValidationError) as err:
        set_policy(world, stages=[{"key": "sec", "group": "nobody"}])
    assert err.value.field == "stages[0].group"
    with pytest.raises(ValidationError) as err:
        set_policy(world, stages=[{"key": "Bad Key"}])
    assert err.value.field == "stages[0].key"
