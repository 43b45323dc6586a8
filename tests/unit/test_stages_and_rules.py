"""Approval stages and auto-approval rules, as pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lockbox.domain.auto_approval import parse_rule
from lockbox.domain.errors import ValidationError
from lockbox.domain.resources import AccessLevel
from lockbox.domain.roles import Role
from lockbox.domain.stages import parse_stages, plan

R, RW = AccessLevel.READ, AccessLevel.READ_WRITE
BANK = parse_stages(
    [
        {"key": "approvers", "name": "Approvers", "required": 1},
        {
            "key": "security",
            "name": "Security officer",
            "group": "security",
            "condition": {"access_level": "read_write"},
        },
        {
            "key": "finance",
            "name": "Finance",
            "roles": ["tenant_admin"],
            "required": 2,
            "condition": {"resources": ["exchange/mailbox/finance/*"]},
        },
    ]
)


def keys(level: AccessLevel, resources: list[str]) -> list[str]:
    return [s.key for s in plan(BANK, level, resources)]


def test_stages_apply_by_condition_in_policy_order() -> None:
    assert keys(R, ["exchange/mailbox/alice@x.com"]) == ["approvers"]
    assert keys(RW, ["exchange/mailbox/alice@x.com"]) == ["approvers", "security"]
    assert keys(R, ["exchange/mailbox/finance/ledger"]) == ["approvers", "finance"]
    # A request for a whole prefix touches what the condition names below it.
    assert keys(RW, ["exchange/mailbox/*"]) == ["approvers", "security", "finance"]
    assert keys(R, ["exchange/calendar/*"]) == ["approvers"]


def test_who_may_approve_a_stage() -> None:
    approvers, security, finance = plan(BANK, RW, ["exchange/mailbox/finance/x"])
    assert approvers.admits({Role.APPROVER}, []) and approvers.admits({Role.TENANT_ADMIN}, [])
    assert not security.admits({Role.APPROVER}, []) and security.admits(set(), ["security"])
    assert finance.admits({Role.TENANT_ADMIN}, []) and not finance.admits({Role.APPROVER}, [])
    assert finance.required == 2


@pytest.mark.parametrize(
    ("stages", "field"),
    [
        ([], "stages"),
        ([{"key": "A"}], "stages[0].key"),
        ([{"key": "a", "required": 0}], "stages[0].required"),
        ([{"key": "a", "required": 11}], "stages[0].required"),
        ([{"key": "a", "roles": ["auditor"]}], "stages[0].roles[0]"),
        ([{"key": "a", "roles": []}], "stages[0]"),
        ([{"key": "a"}, {"key": "a"}], "stages"),
        (
            [{"key": "a", "condition": {"access_level": "admin"}}],
            "stages[0].condition.access_level",
        ),
        ([{"key": "a", "condition": {"resources": ["a/*/b"]}}], "stages[0].condition.resources[0]"),
        ([{"key": "a", "when": 1}], "stages[0].when"),
    ],
)
def test_bad_stages_name_the_field(stages: list[object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_stages(stages)
    assert err.value.field == field


CALENDARS = {
    "name": "Calendars during office hours",
    "resources": ["exchange/calendar/*"],
    "categories": ["customer_request", "incident"],
    "days": ["mon", "tue", "wed", "thu", "fri"],
    "hours": "09:00-17:00",
    "time_zone": "Europe/Berlin",
    "max_access_window_seconds": 3600,
}


def rule(**changes: object):  # type: ignore[no-untyped-def]
    return parse_rule({**CALENDARS, **changes}, rule_id="aar_1", tenant_id="ten_1")


def miss(**ask: object) -> str | None:
    request = {
        "resources": ["exchange/calendar/alice@contoso.com"],
        "level": R,
        "category": "customer_request",
        "now": datetime(2026, 3, 2, 9, 30, tzinfo=UTC),  # Monday 10:30 in Berlin (CET)
    }
    request.update(ask)
    return rule().miss(**request)  # type: ignore[arg-type]


def test_a_matching_request_and_a_near_miss_on_each_field() -> None:
    assert miss() is None
    assert miss(resources=["exchange/mailbox/alice@contoso.com"]) is not None
    assert miss(resources=["exchange/calendar/a@c.com", "exchange/mailbox/b@c.com"]) is not None
    assert miss(resources=["exchange/*"]) is not None  # wider than the rule's pattern
    assert miss(level=RW) == "the rule approves read access only"
    assert miss(category="maintenance") is not None
    assert miss(now=datetime(2026, 3, 7, 10, 0, tzinfo=UTC)) is not None  # Saturday
    assert miss(now=datetime(2026, 3, 2, 7, 59, tzinfo=UTC)) is not None  # 08:59 Berlin
    assert miss(now=datetime(2026, 3, 2, 8, 0, tzinfo=UTC)) is None  # 09:00 Berlin
    assert miss(now=datetime(2026, 3, 2, 16, 0, tzinfo=UTC)) is not None  # 17:00: the end is out


def test_daylight_saving_time_moves_the_hours_with_the_zone() -> None:
    # Berlin switches to CEST on 29 March 2026: 09:00 local is 08:00 UTC before, 07:00 after.
    assert miss(now=datetime(2026, 3, 27, 7, 30, tzinfo=UTC)) is not None  # Fri 08:30 CET
    assert miss(now=datetime(2026, 3, 30, 7, 30, tzinfo=UTC)) is None  # Mon 09:30 CEST
    assert miss(now=datetime(2026, 3, 30, 15, 0, tzinfo=UTC)) is not None  # Mon 17:00 CEST


def test_overnight_hours_belong_to_the_day_they_start() -> None:
    night = rule(hours="22:00-06:00", days=["sat"], time_zone="UTC")
    ask = {"resources": ["exchange/calendar/a@c.com"], "level": R, "category": "incident"}
    assert night.miss(now=datetime(2026, 3, 7, 23, 0, tzinfo=UTC), **ask) is None  # Sat 23:00
    assert night.miss(now=datetime(2026, 3, 8, 5, 59, tzinfo=UTC), **ask) is None  # Sun 05:59
    assert night.miss(now=datetime(2026, 3, 8, 23, 0, tzinfo=UTC), **ask) is not None  # Sun 23:00


def test_loosening_a_rule_is_told_apart_from_narrowing_it() -> None:
    base = rule()
    assert not rule(hours="10:00-16:00").looser_than(base)
    assert not rule(max_access_window_seconds=1800).looser_than(base)
    assert not rule(categories=["incident"]).looser_than(base)
    assert rule(hours="08:00-18:00").looser_than(base)
    assert rule(access_level="read_write").looser_than(base)
    assert rule(resources=["exchange/*"]).looser_than(base)
    assert rule(days=["sat"]).looser_than(base)
    assert rule(max_access_window_seconds=7200).looser_than(base)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"resources": []}, "rule.resources"),
        ({"categories": ["fun"]}, "rule.categories[0]"),
        ({"days": ["someday"]}, "rule.days[0]"),
        ({"hours": "9-5"}, "rule.hours"),
        ({"time_zone": "Mars/Olympus"}, "rule.time_zone"),
        ({"max_access_window_seconds": 60}, "rule.max_access_window_seconds"),
        ({"max_access_window_seconds": 30 * 24 * 3600}, "rule.max_access_window_seconds"),
        ({"access_level": "admin"}, "rule.access_level"),
        ({"colour": "red"}, "rule.colour"),
    ],
)
def test_bad_rules_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        rule(**change)
    assert err.value.field == field


def test_a_rule_window_is_a_duration() -> None:
    assert rule().max_access_window == timedelta(hours=1)
