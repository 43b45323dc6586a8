"""Auto-approval rules and four eyes through the service layer, on SQLite and PostgreSQL.

The world's clock (a :class:`~lockbox.clock.ManualClock`) starts on Monday 5 January 2026
at 09:00 UTC, 10:00 in Berlin; the daylight-saving edges move it to the last weekends of
March and October 2026.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from lockbox.domain.auto_approval import RuleState
from lockbox.domain.changes import ChangeKind, ChangeState
from lockbox.domain.errors import (
    ChangePending,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    SeparationOfDuties,
    ValidationError,
)
from lockbox.domain.lifecycle import State
from lockbox.domain.roles import Principal
from lockbox.notify import chat, render
from lockbox.service import auto_approval, cases, changes, requests, tenants, users
from lockbox.store import tables as t
from tests.conftest import World
from tests.integration.helpers import chains_ok, records, set_policy, stored
from tests.integration.test_cli import Cli, bootstrap, cli  # noqa: F401 - the fixture

MAILBOX = "exchange/mailbox/alice@contoso.com"
RULE: dict[str, Any] = {
    "name": "Mailboxes for incidents in office hours",
    "resources": ["exchange/mailbox/*"],
    "categories": ["incident", "customer_request"],
    "days": ["mon", "tue", "wed", "thu", "fri"],
    "hours": "09:00-17:00",
    "time_zone": "Europe/Berlin",
    "max_access_window_seconds": 3600,
}


def add_rule(world: World, admin: Principal | None = None, **changes: Any) -> Any:
    outcome = auto_approval.create_rule(
        world.app, admin or world.contoso_admin, "contoso", {**RULE, **changes}
    )
    return outcome


def reviewed(
    world: World,
    *,
    resources: list[str] | None = None,
    level: str = "read",
    category: str = "incident",
    tenant: str = "contoso",
) -> Any:
    """A request submitted now and forwarded by the manager: what became of it."""
    case_id = cases.open_case(world.app, world.engineer, tenant=tenant, title="Sync broken").id
    req = requests.submit_request(
        world.app,
        world.engineer,
        tenant=tenant,
        case_id=case_id,
        resources=resources or [MAILBOX],
        access_level=level,
        justification="Mailbox does not sync",
        category=category,
    )
    return requests.review_request(world.app, world.manager, req.id, approve=True)


def second_admin(world: World) -> Principal:
    return world.user("ivan@contoso.test", ["tenant_admin"], "contoso")


def ops(world: World) -> list[str]:
    """Contoso's audit operations about rules, changes and the policy, in order."""
    kinds = ("auto_rule.", "change.", "policy.")
    return [r.operation for r in records(world.app, world.contoso) if r.operation.startswith(kinds)]


def last(world: World, operation: str) -> Any:
    return [r for r in records(world.app, world.contoso) if r.operation == operation][-1]


# -- auto-approval ----------------------------------------------------------------------------


def test_a_matching_request_is_approved_by_the_rule_audited_and_announced(world: World) -> None:
    rule = add_rule(world).rule
    assert rule.state is RuleState.ACTIVE
    done = reviewed(world)
    assert done.state is State.APPROVED
    assert done.customer_step is True
    # the shorter of the rule's hour and the policy's four hours
    assert done.access_deadline == world.clock.now() + timedelta(hours=1)
    assert stored(world.app, done.id).category == "incident"
    record = records(world.app, world.contoso, done.id)[-1]
    assert record.operation == "request.review_approve"
    assert record.details["auto_approved_by_rule"] == rule.id
    assert record.details["rule_name"] == RULE["name"]
    assert record.details["to"] == "approved"
    with world.app.read() as tx:
        mails = tx.conn.execute(
            select(t.outbox.c.topic, t.outbox.c.recipient, t.outbox.c.payload).where(
                t.outbox.c.request_id == done.id, t.outbox.c.channel == "email"
            )
        ).all()
        basis = tx.conn.execute(
            select(t.decision_receipts.c.payload).where(t.decision_receipts.c.request_id == done.id)
        ).scalar_one()
    approved = [m for m in mails if m.topic == "approved"]
    assert [m.recipient for m in approved] == ["erin@provider.test"]
    assert approved[0].payload["approved_by_rule"] == rule.id
    assert approved[0].payload["rule_name"] == RULE["name"]
    assert not [m for m in mails if m.topic == "approval_needed"]  # nobody is asked
    mail = render.render("approved", approved[0].payload, world.clock.now())
    assert f"approved by Contoso Ltd's auto-approval rule “{RULE['name']}”" in mail.text
    said = chat.notice(
        {"type": "request.review_approve", "data": approved[0].payload},
        world.clock.now(),
        provider_name="Acme",
    )
    assert "Access approved by a rule" in said.headline and RULE["name"] in said.summary
    assert '"basis":"approval_rule"' in basis
    assert chains_ok(world.app)


def test_the_policy_access_window_caps_the_rule(world: World) -> None:
    set_policy(world, access_window=timedelta(minutes=30))
    add_rule(world, max_access_window_seconds=4 * 3600)
    done = reviewed(world)
    assert done.access_deadline == world.clock.now() + timedelta(minutes=30)


NEAR_MISSES: dict[str, tuple[dict[str, Any], dict[str, Any], datetime | None]] = {
    "resource": ({"resources": ["exchange/calendar/alice@contoso.com"]}, {}, None),
    "one resource of two": (
        {"resources": [MAILBOX, "exchange/calendar/alice@contoso.com"]},
        {},
        None,
    ),
    "level": ({"level": "read_write"}, {}, None),
    "category": ({"category": "maintenance"}, {}, None),
    "day": ({}, {}, datetime(2026, 1, 10, 9, 0, tzinfo=UTC)),  # Saturday
    "hour": ({}, {}, datetime(2026, 1, 5, 16, 0, tzinfo=UTC)),  # 17:00 in Berlin: the end
    "time zone": ({}, {"time_zone": "America/New_York"}, None),  # 04:00 in New York
}


@pytest.mark.parametrize("near_miss", list(NEAR_MISSES))
def test_a_near_miss_on_any_field_waits_for_the_customer(world: World, near_miss: str) -> None:
    ask, rule_changes, when = NEAR_MISSES[near_miss]
    add_rule(world, **rule_changes)
    if when is not None:
        world.clock.set(when)
    done = reviewed(world, **ask)
    assert done.state is State.PENDING_APPROVAL
    assert "auto_approved_by_rule" not in records(world.app, world.contoso, done.id)[-1].details


#: (instant, approved?) for Europe/Berlin 09:00-17:00 Monday to Friday, around 2026's switches
#: to summer time (Sunday 29 March) and back (Sunday 25 October).
DST_EDGES = [
    (datetime(2026, 3, 27, 7, 59, tzinfo=UTC), False),  # Fri 08:59 CET
    (datetime(2026, 3, 27, 8, 0, tzinfo=UTC), True),  # Fri 09:00 CET
    (datetime(2026, 3, 27, 15, 59, tzinfo=UTC), True),  # Fri 16:59 CET
    (datetime(2026, 3, 30, 6, 59, tzinfo=UTC), False),  # Mon 08:59 CEST
    (datetime(2026, 3, 30, 7, 0, tzinfo=UTC), True),  # Mon 09:00 CEST
    (datetime(2026, 3, 30, 15, 0, tzinfo=UTC), False),  # Mon 17:00 CEST
    (datetime(2026, 10, 23, 7, 0, tzinfo=UTC), True),  # Fri 09:00 CEST
    (datetime(2026, 10, 23, 15, 0, tzinfo=UTC), False),  # Fri 17:00 CEST
    (datetime(2026, 10, 26, 7, 30, tzinfo=UTC), False),  # Mon 08:30 CET
    (datetime(2026, 10, 26, 8, 0, tzinfo=UTC), True),  # Mon 09:00 CET
    (datetime(2026, 10, 26, 15, 59, tzinfo=UTC), True),  # Mon 16:59 CET
]


def test_office_hours_follow_daylight_saving_time(world: World) -> None:
    add_rule(world)
    outcomes = []
    for when, _expected in DST_EDGES:
        world.clock.set(when)
        outcomes.append(reviewed(world).state is State.APPROVED)
    assert outcomes == [expected for _when, expected in DST_EDGES]


def test_overnight_hours_in_a_zone_of_their_own(world: World) -> None:
    add_rule(world, hours="22:00-06:00", days=["sun"], time_zone="Europe/Berlin")
    world.clock.set(datetime(2026, 3, 29, 3, 30, tzinfo=UTC))  # Sun 05:30 CEST, night of Sat
    assert reviewed(world).state is State.PENDING_APPROVAL
    world.clock.set(datetime(2026, 3, 29, 21, 0, tzinfo=UTC))  # Sun 23:00 CEST
    assert reviewed(world).state is State.APPROVED
    world.clock.set(datetime(2026, 3, 30, 3, 59, tzinfo=UTC))  # Mon 05:59 CEST, night of Sun
    assert reviewed(world).state is State.APPROVED


def test_never_auto_approved_with_the_lockbox_on_and_no_rule_in_force(world: World) -> None:
    assert reviewed(world).state is State.PENDING_APPROVAL  # no rule at all
    off = add_rule(world, enabled=False).rule
    assert off.state is RuleState.DISABLED
    assert reviewed(world).state is State.PENDING_APPROVAL  # switched off
    on = add_rule(world, name="second").rule
    auto_approval.delete_rule(world.app, world.contoso_admin, "contoso", on.id)
    assert reviewed(world).state is State.PENDING_APPROVAL  # deleted
    auto_approval.create_rule(world.app, world.fabrikam_admin, "fabrikam", RULE)
    assert reviewed(world).state is State.PENDING_APPROVAL  # another tenant's rule
    assert reviewed(world, tenant="fabrikam").state is State.APPROVED  # … is Fabrikam's
    ivan = second_admin(world)
    proposed = add_rule(world, ivan, name="third")
    assert proposed.rule.state is RuleState.PENDING
    assert reviewed(world).state is State.PENDING_APPROVAL  # waiting for a second admin


def test_with_the_lockbox_off_a_rule_changes_nothing(world: World) -> None:
    add_rule(world)
    set_policy(world, enabled=False)
    done = reviewed(world)
    assert done.state is State.APPROVED and done.customer_step is False
    details = records(world.app, world.contoso, done.id)[-1].details
    assert details["lockbox"] == "off" and "auto_approved_by_rule" not in details


def test_a_rejected_review_is_not_approved_by_a_rule(world: World) -> None:
    add_rule(world)
    case_id = cases.open_case(world.app, world.engineer, tenant="contoso", title="x").id
    req = requests.submit_request(
        world.app,
        world.engineer,
        tenant="contoso",
        case_id=case_id,
        resources=[MAILBOX],
        access_level="read",
        justification="x",
        category="incident",
    )
    done = requests.review_request(world.app, world.manager, req.id, approve=False)
    assert done.state is State.REJECTED


def test_the_category_is_validated_and_kept(world: World) -> None:
    case_id = cases.open_case(world.app, world.engineer, tenant="contoso", title="x").id
    with pytest.raises(ValidationError) as err:
        requests.submit_request(
            world.app,
            world.engineer,
            tenant="contoso",
            case_id=case_id,
            resources=[MAILBOX],
            access_level="read",
            justification="x",
            category="fun",
        )
    assert err.value.field == "category"
    req = requests.submit_request(
        world.app,
        world.engineer,
        tenant="contoso",
        case_id=case_id,
        resources=[MAILBOX],
        access_level="read",
        justification="x",
    )
    assert stored(world.app, req.id).category == "other"
    submitted = records(world.app, world.contoso, req.id)[0]
    assert submitted.details["category"] == "other"


def test_who_may_see_and_write_rules(world: World) -> None:
    rule = add_rule(world).rule
    assert [
        r.id for r in auto_approval.list_rules(world.app, world.contoso_auditor, "contoso")
    ] == [rule.id]
    with pytest.raises(PermissionDenied):
        auto_approval.create_rule(world.app, world.contoso_auditor, "contoso", RULE)
    with pytest.raises(PermissionDenied):
        auto_approval.list_rules(world.app, world.contoso_approver, "contoso")
    with pytest.raises(NotFound):
        auto_approval.get_rule(world.app, world.fabrikam_admin, "fabrikam", rule.id)
    with pytest.raises(NotFound):
        auto_approval.list_rules(world.app, world.fabrikam_admin, "contoso")
    with pytest.raises(PermissionDenied):  # the provider sees the tenant, not its rules
        auto_approval.list_rules(world.app, world.manager, "contoso")


def test_rule_changes_are_audited(world: World) -> None:
    rule = add_rule(world).rule
    narrowed = auto_approval.update_rule(
        world.app, world.contoso_admin, "contoso", rule.id, {"hours": "10:00-16:00"}
    )
    assert narrowed.pending is None and narrowed.rule.rule.hours == "10:00-16:00"
    auto_approval.update_rule(
        world.app, world.contoso_admin, "contoso", rule.id, {"enabled": False}
    )
    auto_approval.update_rule(world.app, world.contoso_admin, "contoso", rule.id, {"enabled": True})
    auto_approval.delete_rule(world.app, world.contoso_admin, "contoso", rule.id)
    assert ops(world)[-5:] == [
        "auto_rule.created",
        "auto_rule.updated",
        "auto_rule.disabled",
        "auto_rule.enabled",
        "auto_rule.deleted",
    ]
    with pytest.raises(InvalidTransition):
        auto_approval.update_rule(world.app, world.contoso_admin, "contoso", rule.id, {"name": "x"})
    assert auto_approval.list_rules(world.app, world.contoso_admin, "contoso") == []
    ended = auto_approval.list_rules(world.app, world.contoso_admin, "contoso", include_ended=True)
    assert [r.state for r in ended] == [RuleState.DELETED]


# -- four eyes ---------------------------------------------------------------------------------


def test_a_single_admin_changes_everything_at_once(world: World) -> None:
    outcome = tenants.update_policy(world.app, world.contoso_admin, "contoso", {"enabled": False})
    assert outcome.pending is None and outcome.tenant.policy.enabled is False
    rule = add_rule(world)
    assert rule.pending is None and rule.rule.state is RuleState.ACTIVE
    looser = auto_approval.update_rule(
        world.app, world.contoso_admin, "contoso", rule.rule.id, {"hours": "00:00-24:00"}
    )
    assert looser.pending is None and looser.rule.rule.hours == "00:00-24:00"
    assert changes.list_changes(world.app, world.contoso_admin, "contoso") == []


def test_a_new_rule_waits_for_a_second_admin(world: World) -> None:
    ivan = second_admin(world)
    proposed = add_rule(world)
    assert proposed.rule.state is RuleState.PENDING
    change = proposed.pending
    assert change is not None and change.kind is ChangeKind.RULE_CREATE
    assert change.reasons == ("writes a new auto-approval rule",)
    assert reviewed(world).state is State.PENDING_APPROVAL
    with pytest.raises(SeparationOfDuties):
        changes.approve_change(world.app, world.contoso_admin, "contoso", change.id)
    with pytest.raises(PermissionDenied):
        changes.approve_change(world.app, world.contoso_auditor, "contoso", change.id)
    with pytest.raises(NotFound):
        changes.approve_change(world.app, world.fabrikam_admin, "fabrikam", change.id)
    with pytest.raises(InvalidTransition):
        auto_approval.update_rule(
            world.app, ivan, "contoso", proposed.rule.id, {"hours": "10:00-11:00"}
        )
    decided = changes.approve_change(world.app, ivan, "contoso", change.id, comment="fine")
    assert decided.change.state is ChangeState.APPLIED
    assert decided.change.decided_by == ivan.id
    assert decided.rule is not None and decided.rule.state is RuleState.ACTIVE
    assert ops(world)[-3:] == ["change.proposed", "change.approved", "auto_rule.created"]
    created = last(world, "auto_rule.created")
    assert created.actor_id == ivan.id
    assert created.details["change_id"] == change.id
    assert created.details["proposed_by"] == world.contoso_admin.id
    assert reviewed(world).state is State.APPROVED
    with pytest.raises(InvalidTransition):
        changes.reject_change(world.app, ivan, "contoso", change.id)


def test_widening_the_policy_waits_and_the_second_admin_applies_it(world: World) -> None:
    ivan = second_admin(world)
    with pytest.raises(ChangePending) as pending:
        tenants.change_policy(world.app, world.contoso_admin, "contoso", {"enabled": False})
    change = changes.get_change(world.app, ivan, "contoso", pending.value.change_id)
    assert change.kind is ChangeKind.POLICY and change.reasons == ("turns the lockbox off",)
    assert tenants.get_policy(world.app, ivan, "contoso").policy.enabled is True
    assert reviewed(world).state is State.PENDING_APPROVAL
    decided = changes.approve_change(world.app, ivan, "contoso", change.id)
    assert decided.tenant is not None and decided.tenant.policy.enabled is False
    assert ops(world)[-3:] == ["change.proposed", "change.approved", "policy.changed"]
    applied = last(world, "policy.changed")
    assert applied.details["changes"] == {"enabled": {"from": True, "to": False}}
    assert applied.details["change_id"] == change.id
    assert reviewed(world).state is State.APPROVED  # the lockbox is off now


def test_tightening_applies_at_once_with_two_admins(world: World) -> None:
    second_admin(world)
    outcome = tenants.update_policy(
        world.app,
        world.contoso_admin,
        "contoso",
        {"required_approvals": 2, "access_window": timedelta(hours=1)},
    )
    assert outcome.pending is None
    assert outcome.tenant.policy.required_approvals == 2
    rule = add_rule(world).rule  # pending: a new rule always waits
    ivan_rules = auto_approval.list_rules(world.app, world.contoso_admin, "contoso")
    assert [r.state for r in ivan_rules] == [RuleState.PENDING]
    assert rule.state is RuleState.PENDING


def test_loosening_a_rule_waits_and_tightening_it_supersedes_the_proposal(world: World) -> None:
    rule = add_rule(world).rule  # one admin: active at once
    ivan = second_admin(world)
    looser = auto_approval.update_rule(
        world.app, world.contoso_admin, "contoso", rule.id, {"days": [*RULE["days"], "sat"]}
    )
    assert looser.pending is not None and looser.pending.reasons == ("covers more days",)
    assert looser.rule.rule.days == rule.rule.days  # unchanged
    off = auto_approval.update_rule(world.app, ivan, "contoso", rule.id, {"enabled": False})
    assert off.pending is None and off.rule.state is RuleState.DISABLED
    superseded = changes.get_change(world.app, ivan, "contoso", looser.pending.id)
    assert superseded.state is ChangeState.SUPERSEDED
    with pytest.raises(InvalidTransition):
        changes.approve_change(world.app, ivan, "contoso", looser.pending.id)
    switch_on = auto_approval.update_rule(
        world.app, world.contoso_admin, "contoso", rule.id, {"enabled": True}
    )
    assert switch_on.pending is not None and switch_on.pending.reasons == ("switches the rule on",)
    changes.approve_change(world.app, ivan, "contoso", switch_on.pending.id)
    assert auto_approval.get_rule(world.app, ivan, "contoso", rule.id).state is RuleState.ACTIVE
    assert "auto_rule.enabled" in ops(world)[-1:]


def test_a_change_whose_base_moved_on_is_superseded(world: World) -> None:
    ivan = second_admin(world)
    off = tenants.update_policy(world.app, world.contoso_admin, "contoso", {"enabled": False})
    longer = tenants.update_policy(
        world.app, ivan, "contoso", {"access_window": timedelta(hours=8)}
    )
    assert off.pending is not None and longer.pending is not None
    # a tightening change applies at once and supersedes both proposals
    tenants.update_policy(world.app, ivan, "contoso", {"reminder_fraction": 0.5})
    for change_id in (off.pending.id, longer.pending.id):
        found = changes.get_change(world.app, ivan, "contoso", change_id)
        assert found.state is ChangeState.SUPERSEDED
    assert ops(world).count("change.superseded") == 2
    with pytest.raises(InvalidTransition):
        changes.approve_change(world.app, ivan, "contoso", off.pending.id)
    assert tenants.get_policy(world.app, ivan, "contoso").policy.enabled is True


def test_reject_and_withdraw(world: World) -> None:
    ivan = second_admin(world)
    proposed = add_rule(world)
    assert proposed.pending is not None
    with pytest.raises(SeparationOfDuties):
        changes.withdraw_change(world.app, ivan, "contoso", proposed.pending.id)
    rejected = changes.reject_change(
        world.app, ivan, "contoso", proposed.pending.id, comment="too wide"
    )
    assert rejected.change.state is ChangeState.REJECTED
    assert rejected.change.comment == "too wide"
    assert rejected.rule is not None and rejected.rule.state is RuleState.REJECTED
    other = add_rule(world, name="again")
    assert other.pending is not None
    withdrawn = changes.withdraw_change(world.app, world.contoso_admin, "contoso", other.pending.id)
    assert withdrawn.change.state is ChangeState.WITHDRAWN
    assert withdrawn.rule is not None and withdrawn.rule.state is RuleState.WITHDRAWN
    assert ops(world)[-4:] == [
        "change.proposed",
        "change.rejected",
        "change.proposed",
        "change.withdrawn",
    ]
    assert reviewed(world).state is State.PENDING_APPROVAL
    listed = changes.list_changes(world.app, world.contoso_auditor, "contoso", states=["pending"])
    assert listed == []
    assert chains_ok(world.app)


def test_a_deactivated_second_admin_no_longer_counts(world: World) -> None:
    ivan = second_admin(world)
    assert tenants.update_policy(
        world.app, world.contoso_admin, "contoso", {"enabled": False}
    ).pending
    users.set_active(world.app, Principal.operator(), ivan.id, False)
    outcome = tenants.update_policy(world.app, world.contoso_admin, "contoso", {"enabled": False})
    assert outcome.pending is None and outcome.tenant.policy.enabled is False


# -- the CLI ------------------------------------------------------------------------------------


def test_rules_and_changes_from_the_command_line(cli: Cli) -> None:  # noqa: F811 - the fixture
    bootstrap(cli)
    admin, other = "ines@contoso.example", "ivan@contoso.example"
    cli("user", "create", admin, "--role", "tenant_admin", "--tenant", "contoso")
    rule = cli.json(
        "rule",
        "add",
        "--tenant",
        "contoso",
        "--name",
        "Mailboxes",
        "--resource",
        "exchange/mailbox/*",
        "--category",
        "incident",
        "--hours",
        "00:00-24:00",
        "--day",
        "mon",
        "--max-window",
        "30m",
        as_=admin,
    )
    assert rule["state"] == "active" and rule["max_access_window_seconds"] == 1800
    listed = cli.json("rule", "list", "--tenant", "contoso", as_="audrey@contoso.example")
    assert [r["id"] for r in listed] == [rule["id"]]
    cli("user", "create", other, "--role", "tenant_admin", "--tenant", "contoso")
    pending = cli.json(
        "rule", "update", rule["id"], "--tenant", "contoso", "--day", "sat", as_=admin
    )
    assert pending["kind"] == "auto_rule.update" and pending["state"] == "pending"
    shown = cli("rule", "update", rule["id"], "--tenant", "contoso", "--day", "tue", as_=admin)
    assert "another tenant admin must approve it" in shown.err
    refused = cli("change", "approve", pending["id"], "--tenant", "contoso", as_=admin, expect=4)
    assert "your own change" in refused.err
    applied = cli.json("change", "approve", pending["id"], "--tenant", "contoso", as_=other)
    assert applied["state"] == "applied"
    changes_listed = cli.json("change", "list", "--tenant", "contoso", as_=other)
    assert {c["state"] for c in changes_listed} == {"applied", "superseded"}
    off = cli.json("rule", "disable", rule["id"], "--tenant", "contoso", as_=other)
    assert off["state"] == "disabled"
    policy = cli("policy", "set", "contoso", "--lockbox", "off", as_=admin)
    assert "turns the lockbox off" in policy.err
    case = cli.json(
        "case", "open", "--tenant", "contoso", "--title", "x", as_="erin@provider.example"
    )
    req = cli.json(
        "request",
        "submit",
        "--tenant",
        "contoso",
        "--case",
        case["id"],
        "--resource",
        MAILBOX,
        "--justification",
        "x",
        "--category",
        "incident",
        as_="erin@provider.example",
    )
    assert req["category"] == "incident"
    cli(
        "request",
        "submit",
        "--tenant",
        "contoso",
        "--case",
        case["id"],
        "--resource",
        MAILBOX,
        "--justification",
        "x",
        "--category",
        "fun",
        as_="erin@provider.example",
        expect=2,
    )
