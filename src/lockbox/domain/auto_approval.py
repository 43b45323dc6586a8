"""Auto-approval rules a tenant admin writes: which requests the customer approves in advance.

A rule says which resources (patterns), up to which access level (read unless the
rule says otherwise), for which justification categories, on which days and
hours in which time zone, and for at most how long. A request the provider's
manager forwarded is approved by the first active rule it matches entirely
(every resource covered, the level allowed, the category listed, the local time
inside the hours), audited with the rule's id; no rule matching means the
customer's approvers decide, as always. With the tenant's lockbox on, nothing
else ever approves on the customer's behalf.

Hours are wall-clock times in the rule's own time zone (an IANA name such as
``Europe/Berlin``), so "09:00-17:00" follows daylight-saving time: 09:00 in Berlin
is 08:00 UTC in winter and 07:00 UTC in summer. The end is exclusive; ``24:00``
(or ``00:00`` as an end) means midnight at the end of the day; an end before the
start spans midnight, and the part after midnight belongs to the day it started.
On the night clocks go back, the repeated hour is inside the hours twice (both
instants read as that local time); on the night they go forward, the skipped
hour does not exist and no instant reads as it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lockbox.domain import text
from lockbox.domain.errors import ValidationError
from lockbox.domain.policy import WINDOW_BOUNDS
from lockbox.domain.resources import AccessLevel, validate_resource, within

#: Why an engineer needs access: what a request says it is for (rules select on it).
CATEGORIES = ("incident", "maintenance", "investigation", "customer_request", "other")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_PATTERNS = 20
NAME_MAX = 80
#: What a rule allows when it does not say: one hour of access.
DEFAULT_WINDOW = timedelta(hours=1)
_TIME_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_MIDNIGHT = time(0)
#: Zone names people pick: ``UTC`` or ``Area/Location`` (never ``localtime``, ``Factory``
#: or ``posixrules``, whose meaning depends on the server they run on).
ZONE_PATTERN = r"^(?:UTC|[A-Z][A-Za-z]+(?:/[A-Za-z0-9_+\-]+){1,2})$"
_ZONE_RE = re.compile(ZONE_PATTERN)


class RuleState(StrEnum):
    """Where a stored rule stands. Only an ``active`` rule approves anything."""

    PENDING = "pending"  # proposed, waiting for a second tenant admin (four eyes)
    ACTIVE = "active"
    DISABLED = "disabled"  # switched off; kept, and can be switched on again
    DELETED = "deleted"
    REJECTED = "rejected"  # its proposal was rejected: it never approved anything
    WITHDRAWN = "withdrawn"  # its proposal was withdrawn by its author

    @property
    def final(self) -> bool:
        return self in (RuleState.DELETED, RuleState.REJECTED, RuleState.WITHDRAWN)


def validate_zone(value: object, field: str) -> str:
    """An IANA time zone name this machine knows (``Europe/Berlin``, ``UTC``)."""
    if not isinstance(value, str) or not _ZONE_RE.fullmatch(value):
        shown = repr(value)[:60]
        raise ValidationError(field, f"{shown} is not a time zone name such as Europe/Berlin")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError(
            field, f"{value!r} is not a time zone name such as Europe/Berlin"
        ) from None
    return value


@dataclass(frozen=True)
class AutoApprovalRule:
    id: str
    tenant_id: str
    name: str
    resources: tuple[str, ...]
    categories: frozenset[str]
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time  # exclusive; 00:00 is midnight at the end of the day; before the start: overnight
    time_zone: str
    max_access_window: timedelta
    access_level: AccessLevel = AccessLevel.READ
    enabled: bool = True

    def miss(
        self, *, resources: Sequence[str], level: AccessLevel, category: str, now: datetime
    ) -> str | None:
        """Why this rule does not approve the request (None: it does).

        The first reason found, in a fixed order, so a near miss is explained.
        """
        if not self.enabled:
            return "the rule is switched off"
        if level is AccessLevel.READ_WRITE and self.access_level is AccessLevel.READ:
            return "the rule approves read access only"
        if not resources:
            return "the request names no resource"
        uncovered = [r for r in resources if not any(within(p, r) for p in self.resources)]
        if uncovered:
            return f"{uncovered[0]} is not among the rule's resources"
        if category not in self.categories:
            return f"the rule does not cover the category {category!r}"
        local = now.astimezone(ZoneInfo(self.time_zone))
        if not self._in_hours(local):
            return "outside the rule's days and hours"
        return None

    def _in_hours(self, local: datetime) -> bool:
        clock = local.time().replace(tzinfo=None)
        day = local.weekday()
        if self.end == _MIDNIGHT:  # until midnight (all day when it starts at 00:00)
            return day in self.days and clock >= self.start
        if self.start < self.end:
            return day in self.days and self.start <= clock < self.end
        # Overnight (22:00-06:00): the part after midnight belongs to the day it started.
        if clock >= self.start:
            return day in self.days
        return clock < self.end and (day - 1) % 7 in self.days

    @property
    def hours(self) -> str:
        """``09:00-17:00``; ``24:00`` for midnight at the end."""
        end = "24:00" if self.end == _MIDNIGHT else f"{self.end:%H:%M}"
        return f"{self.start:%H:%M}-{end}"

    def looser_than(self, other: AutoApprovalRule) -> bool:
        """Whether this version approves something ``other`` would not (needs four eyes)."""
        return bool(self.loosenings(other))

    def loosenings(self, other: AutoApprovalRule) -> list[str]:
        """How this version approves more than ``other``, in words (empty: it does not).

        Conservative: anything not plainly narrower counts as looser (switching it on, a
        higher level, more categories, days or time, a longer window, a resource outside
        the old ones, other hours that are not inside the old ones, another time zone).
        """
        found = []
        if self.enabled and not other.enabled:
            found.append("switches the rule on")
        if self.access_level is AccessLevel.READ_WRITE and other.access_level is AccessLevel.READ:
            found.append("approves write access")
        if any(not any(within(o, p) for o in other.resources) for p in self.resources):
            found.append("covers more resources")
        if not self.categories <= other.categories:
            found.append("covers more categories")
        if not self.days <= other.days:
            found.append("covers more days")
        if not _hours_within(self, other):
            found.append("covers other hours")
        if self.time_zone != other.time_zone:
            found.append("changes the time zone")
        if self.max_access_window > other.max_access_window:
            found.append("grants a longer access window")
        return found

    def patched(self, changes: dict[str, Any], field: str = "rule") -> AutoApprovalRule:
        """This rule with ``changes`` (settings as :func:`parse_rule` takes them), validated."""
        data = {k: v for k, v in self.as_dict().items() if k != "id"}
        data.update(changes)
        return parse_rule(data, rule_id=self.id, tenant_id=self.tenant_id, field=field)

    def definition(self) -> dict[str, Any]:
        """What a rule says, without its id, name and whether it is on (how it is stored)."""
        return {k: v for k, v in self.as_dict().items() if k not in ("id", "name", "enabled")}

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "resources": list(self.resources),
            "access_level": self.access_level.value,
            "categories": [c for c in CATEGORIES if c in self.categories],
            "days": [DAYS[d] for d in sorted(self.days)],
            "hours": self.hours,
            "time_zone": self.time_zone,
            "max_access_window_seconds": int(self.max_access_window.total_seconds()),
            "enabled": self.enabled,
        }


@dataclass(frozen=True)
class StoredRule:
    """A rule as the tenant keeps it: its settings, where it stands, who wrote it."""

    rule: AutoApprovalRule
    state: RuleState
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    version: int = 1

    @property
    def id(self) -> str:
        return self.rule.id


def first_match(
    rules: Sequence[AutoApprovalRule],
    *,
    resources: Sequence[str],
    level: AccessLevel,
    category: str,
    now: datetime,
) -> AutoApprovalRule | None:
    """The first rule (in the order given) that approves the request at ``now``."""
    for rule in rules:
        if rule.miss(resources=resources, level=level, category=category, now=now) is None:
            return rule
    return None


def _minutes(value: time, *, end: bool) -> int:
    minutes = value.hour * 60 + value.minute
    return 24 * 60 if end and minutes == 0 else minutes


def _hours_within(a: AutoApprovalRule, b: AutoApprovalRule) -> bool:
    """Whether ``a``'s hours lie inside ``b``'s (same-day windows; anything else: not inside)."""
    if a.start == b.start and a.end == b.end:
        return True
    a_start, a_end = _minutes(a.start, end=False), _minutes(a.end, end=True)
    b_start, b_end = _minutes(b.start, end=False), _minutes(b.end, end=True)
    return a_start < a_end and b_start < b_end and b_start <= a_start and a_end <= b_end


RULE_SETTINGS = frozenset(
    {
        "name",
        "resources",
        "access_level",
        "categories",
        "days",
        "hours",
        "time_zone",
        "max_access_window_seconds",
        "enabled",
    }
)


def parse_rule(
    data: dict[str, Any], *, rule_id: str, tenant_id: str, field: str = "rule"
) -> AutoApprovalRule:
    """A validated rule from people's input (API, CLI, settings page); errors name
    ``<field>.<setting>`` (just ``<setting>`` when ``field`` is empty).

    Left out: read access, Monday to Friday, all day, UTC, one hour, switched on.
    """
    if not isinstance(data, dict):
        raise ValidationError(field or "rule", "must be an object")
    field = f"{field}." if field else ""
    unknown = sorted(set(data) - RULE_SETTINGS)
    if unknown:
        raise ValidationError(f"{field}{unknown[0]}", "is not a rule setting")
    name = text.required_text(data.get("name"), f"{field}name", max_len=NAME_MAX, multiline=False)
    resources = data.get("resources")
    if not isinstance(resources, list | tuple) or not resources:
        raise ValidationError(f"{field}resources", "name at least one resource pattern")
    if len(resources) > MAX_PATTERNS:
        raise ValidationError(f"{field}resources", f"at most {MAX_PATTERNS} patterns")
    patterns = tuple(
        dict.fromkeys(
            validate_resource(r, f"{field}resources[{i}]") for i, r in enumerate(resources)
        )
    )
    level_in = data.get("access_level")
    try:
        level = AccessLevel(str(level_in)) if level_in is not None else AccessLevel.READ
    except ValueError:
        raise ValidationError(f"{field}access_level", "must be read or read_write") from None
    categories = data.get("categories")
    if not isinstance(categories, list | tuple) or not categories:
        raise ValidationError(f"{field}categories", f"name one or more of {', '.join(CATEGORIES)}")
    for i, c in enumerate(categories):
        if c not in CATEGORIES:
            raise ValidationError(
                f"{field}categories[{i}]", f"must be one of {', '.join(CATEGORIES)}"
            )
    days = data.get("days")
    if days is None:
        days = list(DAYS[:5])
    if not isinstance(days, list | tuple) or not days:
        raise ValidationError(f"{field}days", "name at least one day, such as ['mon', 'tue']")
    day_numbers = set()
    for i, d in enumerate(days):
        if d not in DAYS:
            raise ValidationError(f"{field}days[{i}]", f"must be one of {', '.join(DAYS)}")
        day_numbers.add(DAYS.index(str(d)))
    hours = data.get("hours")
    start, end = _hours("00:00-24:00" if hours is None else hours, f"{field}hours")
    zone_in = data.get("time_zone")
    zone = validate_zone("UTC" if zone_in is None else zone_in, f"{field}time_zone")
    low, high = WINDOW_BOUNDS["access_window"]
    seconds = data.get("max_access_window_seconds")
    if seconds is None:
        seconds = int(DEFAULT_WINDOW.total_seconds())
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise ValidationError(f"{field}max_access_window_seconds", "must be whole seconds")
    if not int(low.total_seconds()) <= seconds <= int(high.total_seconds()):
        raise ValidationError(
            f"{field}max_access_window_seconds", "must be between 15 minutes and 7 days"
        )
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValidationError(f"{field}enabled", "must be true or false")
    return AutoApprovalRule(
        id=rule_id,
        tenant_id=tenant_id,
        name=name,
        resources=patterns,
        categories=frozenset(str(c) for c in categories),
        days=frozenset(day_numbers),
        start=start,
        end=end,
        time_zone=zone,
        max_access_window=timedelta(seconds=seconds),
        access_level=level,
        enabled=enabled,
    )


def _hours(value: object, field: str) -> tuple[time, time]:
    """``09:00-17:00``; ``24:00`` (or ``00:00``) as the end is midnight at the end of the day."""
    if not isinstance(value, str) or "-" not in value:
        raise ValidationError(field, "must look like 09:00-17:00")
    first, _, second = value.partition("-")
    second = second.strip()
    if second == "24:00":
        second = "00:00"
    parts = []
    for part in (first.strip(), second):
        found = _TIME_RE.fullmatch(part)
        if found is None:
            raise ValidationError(field, "must look like 09:00-17:00")
        parts.append(time(int(found.group(1)), int(found.group(2))))
    start, end = parts
    if start == end and not (end == _MIDNIGHT and value.strip().endswith("24:00")):
        raise ValidationError(field, "the hours must not start and end at the same time")
    return start, end
