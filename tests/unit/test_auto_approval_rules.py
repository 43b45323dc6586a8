"""Auto-approval rules and four eyes as pure rules: matching, the review that applies a rule,
what widens a policy or loosens a rule, and who may decide a pending change."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lockbox.domain import changes
from lockbox.domain import request as domain
from lockbox.domain.auto_approval import (
    AutoApprovalRule,
    first_match,
    parse_rule,
    validate_zone,
)
from lockbox.domain.changes import ChangeKind, ChangeState, PendingChange
from lockbox.domain.errors import (
    BrokenInvariant,
    InvalidTransition,
    SeparationOfDuties,
    ValidationError,
)
from lockbox.domain.lifecycle import State
from lockbox.domain.policy import LockboxPolicy
from lockbox.domain.resources import AccessLevel
from lockbox.domain.roles import Role
from tests.unit.domain_helpers import (
    CONTOSO,
    ENGINEER,
    MAILBOX,
    MANAGER,
    OFF,
    ON,
    T0,
    TENANT_ADMIN,
    case,
    customer,
)

R, RW = AccessLevel.READ, AccessLevel.READ_WRITE
BASE: dict[str, Any] = {
    "name": "Mailboxes in office hours",
    "resources": ["exchange/mailbox/*"],
    "categories": ["incident"],
    "days": ["mon", "tue", "wed", "thu", "fri"],
    "hours": "09:00-17:00",
    "time_zone": "Europe/Berlin",
    "max_access_window_seconds": 3600,
}


def rule(rule_id: str = "aar_1", tenant: str = CONTOSO, **changes: Any) -> AutoApprovalRule:
    return parse_rule({**BASE, **changes}, rule_id=rule_id, tenant_id=tenant)


def matches(r: AutoApprovalRule, now: datetime, **ask: Any) -> bool:
    request = {"resources": [MAILBOX], "level": R, "category": "incident", **ask}
    return r.miss(now=now, **request) is None


# -- matching --------------------------------------------------------------------------------


def test_a_match_and_a_near_miss_on_each_field() -> None:
    monday = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    r = rule()
    assert matches(r, monday)
    assert not matches(r, monday, resources=["exchange/calendar/alice@contoso.com"])
    assert not matches(r, monday, level=RW)
    assert not matches(r, monday, category="maintenance")
    assert not matches(r, datetime(2026, 1, 4, 9, 0, tzinfo=UTC))  # Sunday
    assert not matches(r, datetime(2026, 1, 5, 16, 0, tzinfo=UTC))  # 17:00 in Berlin
    assert not matches(rule(time_zone="Asia/Tokyo"), monday)  # 18:00 in Tokyo
    assert not matches(r, monday, resources=[])
    assert not matches(rule(enabled=False), monday)
    assert matches(rule(access_level="read_write"), monday, level=RW)


def test_the_repeated_and_the_skipped_hour_of_daylight_saving_time() -> None:
    night = rule(hours="02:00-03:00", days=["sun"])
    # 25 October 2026: 02:30 happens twice in Berlin, once in summer time and once in winter.
    assert matches(night, datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
    assert matches(night, datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
    assert not matches(night, datetime(2026, 10, 25, 2, 0, tzinfo=UTC))  # 03:00 CET
    # 29 March 2026: clocks jump from 02:00 to 03:00, so no instant is inside the hour.
    assert not matches(night, datetime(2026, 3, 29, 0, 59, tzinfo=UTC))  # 01:59 CET
    assert not matches(night, datetime(2026, 3, 29, 1, 0, tzinfo=UTC))  # 03:00 CEST


def test_hours_until_midnight_and_all_day() -> None:
    evening = rule(hours="18:00-24:00", days=["mon"])
    assert evening.hours == "18:00-24:00"
    assert matches(evening, datetime(2026, 1, 5, 22, 59, tzinfo=UTC))  # Mon 23:59 CET
    assert not matches(evening, datetime(2026, 1, 5, 23, 0, tzinfo=UTC))  # Tue 00:00
    assert rule(hours="18:00-00:00").hours == "18:00-24:00"
    whole = rule(hours="00:00-24:00", days=["tue"])
    assert matches(whole, datetime(2026, 1, 5, 23, 0, tzinfo=UTC))  # Tue 00:00 CET
    assert matches(whole, datetime(2026, 1, 6, 22, 59, 59, 999999, tzinfo=UTC))  # Tue 23:59:59.9
    assert rule(hours=None).hours == "00:00-24:00"
    with pytest.raises(ValidationError):
        rule(hours="00:00-00:00")


def test_settings_round_trip_and_defaults() -> None:
    r = rule()
    again = parse_rule(
        {k: v for k, v in r.as_dict().items() if k != "id"}, rule_id="aar_1", tenant_id=CONTOSO
    )
    assert again == r
    minimal = parse_rule(
        {"name": "x", "resources": ["a/*"], "categories": ["other"]}, rule_id="aar_2", tenant_id="t"
    )
    assert minimal.access_level is R
    assert minimal.days == frozenset(range(5))
    assert minimal.hours == "00:00-24:00" and minimal.time_zone == "UTC"
    assert minimal.max_access_window == timedelta(hours=1)
    assert r.patched({"hours": "10:00-11:00"}).hours == "10:00-11:00"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"days": []}, "rule.days"),
        ({"time_zone": "localtime"}, "rule.time_zone"),
        ({"time_zone": "Factory"}, "rule.time_zone"),
        ({"time_zone": "europe/berlin"}, "rule.time_zone"),
        ({"time_zone": "../etc/passwd"}, "rule.time_zone"),
        ({"max_access_window_seconds": True}, "rule.max_access_window_seconds"),
        ({"enabled": "yes"}, "rule.enabled"),
        ({"name": " "}, "rule.name"),
    ],
)
def test_bad_settings_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        rule(**change)
    assert err.value.field == field


def test_errors_name_plain_settings_without_a_prefix() -> None:
    with pytest.raises(ValidationError) as err:
        parse_rule({**BASE, "hours": "9-5"}, rule_id="aar_1", tenant_id=CONTOSO, field="")
    assert err.value.field == "hours"


def test_zones() -> None:
    assert validate_zone("UTC", "z") == "UTC"
    assert validate_zone("America/Argentina/Buenos_Aires", "z")
    with pytest.raises(ValidationError):
        validate_zone(3, "z")


def test_the_first_matching_rule_wins() -> None:
    first, second, third = rule("aar_1", categories=["other"]), rule("aar_2"), rule("aar_3")
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    found = first_match(
        [first, second, third], resources=[MAILBOX], level=R, category="incident", now=now
    )
    assert found is second
    assert first_match([first], resources=[MAILBOX], level=R, category="x", now=now) is None


# -- loosening ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"enabled": True}, "switches the rule on"),
        ({"access_level": "read_write"}, "approves write access"),
        ({"resources": ["exchange/*"]}, "covers more resources"),
        ({"categories": ["incident", "other"]}, "covers more categories"),
        ({"days": ["sat"]}, "covers more days"),
        ({"hours": "08:00-17:00"}, "covers other hours"),
        ({"hours": "22:00-06:00"}, "covers other hours"),
        ({"time_zone": "Europe/London"}, "changes the time zone"),
        ({"max_access_window_seconds": 7200}, "grants a longer access window"),
    ],
)
def test_each_way_to_loosen_a_rule(change: dict[str, Any], reason: str) -> None:
    before = rule(enabled=False) if "enabled" in change else rule()
    assert reason in rule(**change).loosenings(before)
    assert rule(**change).looser_than(before)


@pytest.mark.parametrize(
    "change",
    [
        {"name": "renamed"},
        {"enabled": False},
        {"resources": ["exchange/mailbox/alice@contoso.com"]},
        {"resources": ["exchange/mailbox/finance/*"]},
        {"hours": "10:00-12:00"},
        {"days": ["mon"]},
        {"max_access_window_seconds": 900},
    ],
)
def test_narrowing_a_rule_is_not_loosening_it(change: dict[str, Any]) -> None:
    assert rule(**change).loosenings(rule()) == []


# -- what widens a policy ------------------------------------------------------------------------

STAGES: list[dict[str, Any]] = [
    {"key": "approvers", "name": "Approvers", "required": 1, "roles": ["approver"]},
    {
        "key": "security",
        "name": "Security",
        "group": "sec",
        "condition": {"access_level": "read_write"},
    },
]
GROUPS = {"sec": ["usr_ines"], "other": []}
STAGED = LockboxPolicy().with_changes(stages=STAGES, groups=GROUPS, required_approvals=2)


def with_stage(index: int, **changes: Any) -> LockboxPolicy:
    stages = [dict(s) for s in STAGES]
    stages[index].update(changes)
    return STAGED.with_changes(stages=stages)


@pytest.mark.parametrize(
    ("after", "reason"),
    [
        (ON.with_changes(enabled=False), "turns the lockbox off"),
        (ON.with_changes(approval_window=timedelta(hours=13)), "gives approvers longer to approve"),
        (ON.with_changes(access_window=timedelta(hours=5)), "lets access last longer"),
        (ON.with_changes(required_approvals=1), "needs fewer approvals"),
        (STAGED.with_changes(stages=STAGES[:1]), "removes the stage Security"),
        (
            with_stage(0, required=1, roles=["approver", "tenant_admin"]),
            "lets more roles approve the stage Approvers",
        ),
        (with_stage(1, condition=None), "changes when the stage Security applies"),
        (
            with_stage(0, condition={"resources": ["exchange/*"]}),
            "changes when the stage Approvers applies",
        ),
        (with_stage(1, group="other"), "lets another group approve the stage Security"),
        (
            STAGED.with_changes(groups={"sec": ["usr_ines", "usr_paula"], "other": []}),
            "adds people to the group sec",
        ),
        (STAGED.with_changes(max_extensions=3), "allows more extensions"),
    ],
)
def test_each_way_to_widen_a_policy(after: LockboxPolicy, reason: str) -> None:
    before = STAGED if after.stages else LockboxPolicy(required_approvals=2)
    if reason == "lets access last longer" or reason.startswith(("turns", "gives")):
        before = ON
    assert reason in after.widenings(before), after.widenings(before)
    assert after.widens(before)


def test_replacing_the_default_stage_widens() -> None:
    grouped = ON.with_changes(
        stages=[{"key": "sec", "name": "Security", "group": "sec"}], groups=GROUPS
    )
    assert "removes the stage Approvers" in grouped.widenings(ON)
    added = STAGED.with_changes(stages=[STAGES[1]])
    assert added.widens(STAGED)
    conditional_only = ON.with_changes(stages=[STAGES[1]], groups=GROUPS)
    more = conditional_only.with_changes(stages=[STAGES[1], {"key": "x", "name": "X"}])
    assert "adds the stage X, which can replace the default one" in more.widenings(conditional_only)


@pytest.mark.parametrize(
    "after",
    [
        ON.with_changes(required_approvals=2),
        ON.with_changes(access_window=timedelta(hours=1), approval_window=timedelta(hours=1)),
        ON.with_changes(review_window=timedelta(hours=48)),  # the customer still decides
        ON.with_changes(notify_emails=("sec@contoso.test",), reminder_fraction=0.5),
        ON.with_changes(notify_emails=()),
        ON.with_changes(max_extensions=0),
    ],
)
def test_what_does_not_widen_a_policy(after: LockboxPolicy) -> None:
    assert after.widenings(ON) == []


def test_stricter_stages_and_fewer_people_do_not_widen() -> None:
    assert with_stage(0, required=3).widenings(STAGED) == []
    assert STAGED.with_changes(groups={"sec": [], "other": []}).widenings(STAGED) == []
    reordered = STAGED.with_changes(stages=[STAGES[1], STAGES[0]])
    assert reordered.widenings(STAGED) == []
    plus = STAGED.with_changes(stages=[*STAGES, {"key": "x", "name": "X"}])
    assert plus.widenings(STAGED) == []  # the approvers stage always applies: only more


def test_a_longer_review_window_widens_only_with_the_lockbox_off() -> None:
    longer = OFF.with_changes(review_window=timedelta(hours=13))
    assert longer.widenings(OFF) == ["gives the provider's review longer while the lockbox is off"]


# -- the review that applies a rule ------------------------------------------------------------------


def submitted(category: str = "incident") -> domain.AccessRequest:
    return domain.submit(
        request_id="req_1",
        actor=ENGINEER,
        case=case(),
        tenant_id=CONTOSO,
        policy=ON,
        resources=[MAILBOX],
        access_level="read",
        justification="Inspect sync state",
        now=T0,
        category=category,
    ).request


def test_a_review_with_a_matching_rule_grants_access_at_once() -> None:
    r = rule()
    change = domain.review(
        submitted(), MANAGER, approve=True, comment="ok", policy=ON, now=T0, rule=r
    )
    assert change.target is State.APPROVED
    assert change.request.customer_step is True
    assert change.request.access_deadline == T0 + timedelta(hours=1)
    assert change.details["auto_approved_by_rule"] == "aar_1"
    assert change.details["rule_name"] == BASE["name"]
    shorter = ON.with_changes(access_window=timedelta(minutes=20))
    capped = domain.review(
        submitted(), MANAGER, approve=True, comment=None, policy=shorter, now=T0, rule=r
    )
    assert capped.request.access_deadline == T0 + timedelta(minutes=20)


def test_a_review_never_applies_a_rule_that_does_not_approve_the_request() -> None:
    for wrong in (rule(categories=["other"]), rule(tenant="ten_other"), rule(enabled=False)):
        with pytest.raises(BrokenInvariant):
            domain.review(
                submitted(), MANAGER, approve=True, comment=None, policy=ON, now=T0, rule=wrong
            )


def test_a_rule_plays_no_part_with_the_lockbox_off_or_without_a_rule() -> None:
    off = domain.review(
        submitted(), MANAGER, approve=True, comment=None, policy=OFF, now=T0, rule=rule()
    )
    assert off.details["lockbox"] == "off" and "auto_approved_by_rule" not in off.details
    waiting = domain.review(submitted(), MANAGER, approve=True, comment=None, policy=ON, now=T0)
    assert waiting.target is State.PENDING_APPROVAL


def test_the_category_of_a_request() -> None:
    assert submitted().category == "incident"
    change = domain.submit(
        request_id="req_1",
        actor=ENGINEER,
        case=case(),
        tenant_id=CONTOSO,
        policy=ON,
        resources=[MAILBOX],
        access_level="read",
        justification="x",
        now=T0,
    )
    assert change.request.category == "other" and change.details["category"] == "other"
    for bad in ("fun", None, 3):
        with pytest.raises(ValidationError) as err:
            submitted(bad)  # type: ignore[arg-type]
        assert err.value.field == "category"


# -- pending changes -------------------------------------------------------------------------------

IVAN = customer("usr_ivan", CONTOSO, Role.TENANT_ADMIN)
PROPOSED = PendingChange(
    id="pch_1",
    tenant_id=CONTOSO,
    kind=ChangeKind.POLICY,
    payload={"changes": {"enabled": {"from": True, "to": False}}, "base_version": 3},
    proposed_by=TENANT_ADMIN.id,
    proposed_at=T0,
    reasons=("turns the lockbox off",),
)


def test_four_eyes_need_two_admins() -> None:
    assert not changes.needs_second_admin(1)
    assert changes.needs_second_admin(2)


def test_nobody_decides_their_own_change() -> None:
    with pytest.raises(SeparationOfDuties):
        changes.decide(PROPOSED, TENANT_ADMIN, approve=True, comment=None, now=T0)
    with pytest.raises(SeparationOfDuties):
        changes.decide(PROPOSED, TENANT_ADMIN, approve=False, comment=None, now=T0)
    approved = changes.decide(PROPOSED, IVAN, approve=True, comment="ok", now=T0)
    assert approved.state is ChangeState.APPLIED and approved.decided_by == IVAN.id
    assert approved.version == 2 and approved.comment == "ok"
    with pytest.raises(InvalidTransition):
        changes.decide(approved, IVAN, approve=False, comment=None, now=T0)


def test_only_the_author_withdraws() -> None:
    with pytest.raises(SeparationOfDuties):
        changes.withdraw(PROPOSED, IVAN, comment=None, now=T0)
    withdrawn = changes.withdraw(PROPOSED, TENANT_ADMIN, comment=None, now=T0)
    assert withdrawn.state is ChangeState.WITHDRAWN
    with pytest.raises(InvalidTransition):
        changes.supersede(withdrawn, now=T0, by="pch_2")
    superseded = changes.supersede(PROPOSED, now=T0, by="pch_2")
    assert superseded.state is ChangeState.SUPERSEDED
    assert replace(PROPOSED, payload={"rule_id": "aar_1"}).target_id == "aar_1"
    assert PROPOSED.base_version == 3 and PROPOSED.target_id is None
