"""Delegation on the real stores: a delegate approves what the delegator could, is asked
when they would be, never adds an approval, and stops the moment the period ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lockbox.domain.errors import AlreadyDecided, PermissionDenied, ValidationError
from lockbox.domain.lifecycle import State
from lockbox.service import delegations, requests
from lockbox.store import tables as t
from tests.conftest import World
from tests.integration.helpers import operations, pending_approval, records, set_policy, stored

SECURITY = [
    {"key": "approvers", "roles": ["approver"]},
    {"key": "security", "name": "Security officer", "group": "security"},
]


@pytest.fixture
def bank(world: World) -> World:
    """Ines (tenant admin) is the security officer; she goes on holiday."""
    set_policy(world, groups={"security": ["ines@contoso.test"]}, stages=SECURITY)
    return world


def asked(world: World, request_id: str) -> list[str]:
    with world.app.read() as tx:
        rows = tx.conn.execute(
            select(t.outbox.c.recipient).where(
                t.outbox.c.request_id == request_id, t.outbox.c.topic == "approval_needed"
            )
        )
        return sorted(r[0] for r in rows)


def test_a_delegate_approves_the_stage_of_the_person_away(bank: World) -> None:
    app, clock = bank.app, bank.clock
    made = delegations.create_delegation(
        app,
        bank.contoso_admin,
        to="quinn@contoso.test",
        ends_at=clock.now() + timedelta(days=7),
        reason="holiday",
    )
    assert "delegation.created" in [r.operation for r in records(app, bank.contoso)]
    req = pending_approval(bank)
    req = requests.decide_request(app, bank.contoso_approver, req.id, approve=True)
    assert req.current_stage() is not None and req.current_stage().key == "security"
    # Quinn is asked for the security stage as Ines's delegate, and listed as able to act.
    assert "quinn@contoso.test" in asked(bank, req.id)
    view = requests.get_request(app, bank.contoso_auditor, req.id, history=False)
    assert set(view.can_approve) == {bank.contoso_admin.id, bank.contoso_approver2.id}
    done = requests.decide_request(app, bank.contoso_approver2, req.id, approve=True)
    assert done.state is State.APPROVED
    (decision,) = [d for d in stored(app, req.id).decisions if d.stage == "security"]
    assert decision.actor_id == bank.contoso_approver2.id
    assert decision.on_behalf_of == bank.contoso_admin.id
    (record,) = [r for r in records(app, bank.contoso, req.id) if r.details.get("on_behalf_of")]
    assert record.details["on_behalf_of"] == bank.contoso_admin.id
    assert made.to_user == bank.contoso_approver2.id


def test_a_delegate_never_adds_an_approval(bank: World) -> None:
    """Two security officers needed; Ines's delegate and Ines together are one of them."""
    app = bank.app
    set_policy(
        bank,
        groups={"security": ["ines@contoso.test", "audrey@contoso.test"]},
        stages=[{"key": "security", "group": "security", "required": 2}],
    )
    delegations.create_delegation(
        app,
        bank.contoso_admin,
        to="quinn@contoso.test",
        ends_at=bank.clock.now() + timedelta(days=1),
    )
    req = pending_approval(bank)
    requests.decide_request(app, bank.contoso_approver2, req.id, approve=True)  # for Ines
    # Ines has decided through Quinn: neither is asked or listed again.
    view = requests.get_request(app, bank.contoso_auditor, req.id, history=False)
    assert bank.contoso_admin.id not in view.can_approve
    assert bank.contoso_approver2.id not in view.can_approve
    with pytest.raises(AlreadyDecided):
        requests.decide_request(app, bank.contoso_admin, req.id, approve=True)
    assert stored(app, req.id).state is State.PENDING_APPROVAL


def test_a_delegation_ends_on_time_and_when_revoked(bank: World) -> None:
    app, clock = bank.app, bank.clock
    made = delegations.create_delegation(
        app, bank.contoso_admin, to="quinn@contoso.test", ends_at=clock.now() + timedelta(hours=1)
    )
    first = pending_approval(bank)
    requests.decide_request(app, bank.contoso_approver, first.id, approve=True)
    clock.advance(timedelta(hours=1))  # the period is over: [starts, ends)
    with pytest.raises(PermissionDenied, match="Security officer stage"):
        requests.decide_request(app, bank.contoso_approver2, first.id, approve=True)

    again = delegations.create_delegation(
        app, bank.contoso_admin, to="quinn@contoso.test", ends_at=clock.now() + timedelta(days=1)
    )
    delegations.revoke_delegation(app, bank.contoso_approver2, again.id)  # the delegate ends it
    with pytest.raises(PermissionDenied):
        requests.decide_request(app, bank.contoso_approver2, first.id, approve=True)
    assert "delegation.revoked" in [r.operation for r in records(app, bank.contoso)]
    assert made.id != again.id
    assert "request.approve" in operations(app, bank.contoso, first.id)


def test_who_can_delegate_to_whom(world: World) -> None:
    app, now = world.app, world.clock.now()
    week = now + timedelta(days=7)
    for to, field in [
        ("ines@contoso.test", "to"),  # herself
        ("fay@fabrikam.test", "to"),  # another tenant
        ("audrey@contoso.test", "to"),  # an auditor cannot approve
        ("nobody@contoso.test", "to"),
    ]:
        with pytest.raises(ValidationError) as err:
            delegations.create_delegation(app, world.contoso_admin, to=to, ends_at=week)
        assert err.value.field == field, to
    with pytest.raises(ValidationError) as err:
        delegations.create_delegation(
            app, world.contoso_admin, to="quinn@contoso.test", ends_at=now + timedelta(days=91)
        )
    assert err.value.field == "ends_at"
    with pytest.raises(PermissionDenied):
        delegations.create_delegation(app, world.engineer, to="quinn@contoso.test", ends_at=week)
    with pytest.raises(PermissionDenied):
        delegations.create_delegation(
            app, world.contoso_auditor, to="quinn@contoso.test", ends_at=week
        )
    made = delegations.create_delegation(
        app, world.contoso_approver, to="quinn@contoso.test", ends_at=week
    )
    # Fabrikam's people cannot see or end Contoso's delegation; Paula sees her own.
    assert delegations.list_delegations(app, world.fabrikam_admin) == []
    with pytest.raises(Exception, match="not found"):
        delegations.revoke_delegation(app, world.fabrikam_admin, made.id)
    assert [d.id for d in delegations.list_delegations(app, world.contoso_approver)] == [made.id]
    assert [d.id for d in delegations.list_delegations(app, world.contoso_admin)] == [made.id]
    other = world.user("olga@contoso.test", ["approver"], "contoso")
    with pytest.raises(PermissionDenied, match="its two people or a tenant admin"):
        delegations.revoke_delegation(app, other, made.id)
    ended = delegations.revoke_delegation(app, world.contoso_admin, made.id)
    again = delegations.revoke_delegation(app, world.contoso_approver, made.id)
    assert again.revoked_at == ended.revoked_at and again.revoked_by == world.contoso_admin.id
    revoked = [r for r in records(app, world.contoso) if r.operation == "delegation.revoked"]
    assert len(revoked) == 1
