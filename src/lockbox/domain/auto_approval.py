"""Auto-approval rules a tenant admin writes: which requests the customer approves in advance.

A rule says which resources (patterns), up to which access level (read unless the
rule says otherwise), for which justification categories, on which days and
hours in which time zone, and for at most how long. A request the provider's
manager forwarded is approved by the first enabled rule it matches entirely
(every resource covered, the level allowed, the category listed, the local time
inside the hours), audited with the rule's id; no rule matching means the
customer's approvers decide, as always. With the tenant's lockbox on, nothing
else ever approves on the customer's behalf.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lockbox.domain import text
from lockbox.domain.errors import ValidationError
from lockbox.domain.policy import WINDOW_BOUNDS
from lockbox.domain.resources import AccessLevel, covers, validate_resource

#: Why an engineer needs access: what a request says it is for (rules select on it).
CATEGORIES = ("incident", "maintenance", "investigation", "customer_request", "other")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_PATTERNS = 20
_TIME_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True)
class AutoApprovalRule:
    id: str
    tenant_id: str
    name: str
    resources: tuple[str, ...]
    categories: frozenset[str]
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time  # exclusive; an end before the start spans midnight
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
        uncovered = [r for r in resources if not any(_within(p, r) for p in self.resources)]
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
        if self.start < self.end:
            return local.weekday() in self.days and self.start <= clock < self.end
        # Overnight (22:00-06:00): the part after midnight belongs to the day it started.
        if clock >= self.start:
            return local.weekday() in self.days
        return clock < self.end and (local.weekday() - 1) % 7 in self.days

    def looser_than(self, other: AutoApprovalRule) -> bool:
        """Whether this version approves something ``other`` would not (needs four eyes)."""
        return (
            (self.enabled and not other.enabled)
            or (
                self.access_level is AccessLevel.READ_WRITE
                and other.access_level is AccessLevel.READ
            )
            or not self.categories <= other.categories
            or not self.days <= other.days
            or self.max_access_window > other.max_access_window
            or any(not any(_within(o, p) for o in other.resources) for p in self.resources)
            or not _hours_within(self, other)
            or self.time_zone != other.time_zone
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "resources": list(self.resources),
            "access_level": self.access_level.value,
            "categories": sorted(self.categories),
            "days": [DAYS[d] for d in sorted(self.days)],
            "hours": f"{self.start:%H:%M}-{self.end:%H:%M}",
            "time_zone": self.time_zone,
            "max_access_window_seconds": int(self.max_access_window.total_seconds()),
            "enabled": self.enabled,
        }


def _within(pattern: str, name: str) -> bool:
    """Whether ``name`` (a concrete name or a ``prefix/*`` pattern) lies inside ``pattern``."""
    if name.endswith("/*"):
        return pattern.endswith("/*") and name[:-1].startswith(pattern[:-1])
    return covers(pattern, name)


def _hours_within(a: AutoApprovalRule, b: AutoApprovalRule) -> bool:
    """Whether ``a``'s hours lie inside ``b``'s (same-day windows; anything else: not inside)."""
    if a.start == b.start and a.end == b.end:
        return True
    return a.start < a.end and b.start < b.end and b.start <= a.start and a.end <= b.end


def parse_rule(
    data: dict[str, Any], *, rule_id: str, tenant_id: str, field: str = "rule"
) -> AutoApprovalRule:
    """A validated rule from people's input (API, CLI, settings page)."""
    known = {
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
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValidationError(f"{field}.{unknown[0]}", "is not a rule setting")
    name = text.required_text(data.get("name"), f"{field}.name", max_len=80, multiline=False)
    resources = data.get("resources")
    if not isinstance(resources, list | tuple) or not resources:
        raise ValidationError(f"{field}.resources", "name at least one resource pattern")
    if len(resources) > MAX_PATTERNS:
        raise ValidationError(f"{field}.resources", f"at most {MAX_PATTERNS} patterns")
    patterns = tuple(
        validate_resource(r, f"{field}.resources[{i}]") for i, r in enumerate(resources)
    )
    try:
        level = AccessLevel(str(data.get("access_level") or "read"))
    except ValueError:
        raise ValidationError(f"{field}.access_level", "must be read or read_write") from None
    categories = data.get("categories")
    if not isinstance(categories, list | tuple) or not categories:
        raise ValidationError(f"{field}.categories", f"name one or more of {', '.join(CATEGORIES)}")
    for i, c in enumerate(categories):
        if c not in CATEGORIES:
            raise ValidationError(
                f"{field}.categories[{i}]", f"must be one of {', '.join(CATEGORIES)}"
            )
    days = data.get("days") or list(DAYS[:5])
    if not isinstance(days, list | tuple):
        raise ValidationError(f"{field}.days", "must be a list such as ['mon', 'tue']")
    day_numbers = set()
    for i, d in enumerate(days):
        if d not in DAYS:
            raise ValidationError(f"{field}.days[{i}]", f"must be one of {', '.join(DAYS)}")
        day_numbers.add(DAYS.index(str(d)))
    start, end = _hours(data.get("hours") or "00:00-24:00", f"{field}.hours")
    zone = data.get("time_zone") or "UTC"
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{field}.time_zone", f"{zone!r} is not a known time zone") from None
    low, high = WINDOW_BOUNDS["access_window"]
    seconds = data.get("max_access_window_seconds", int(timedelta(hours=1).total_seconds()))
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise ValidationError(f"{field}.max_access_window_seconds", "must be whole seconds")
    window = timedelta(seconds=seconds)
    if not low <= window <= high:
        raise ValidationError(
            f"{field}.max_access_window_seconds", "must be between 15 minutes and 7 days"
        )
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValidationError(f"{field}.enabled", "must be true or false")
    return AutoApprovalRule(
        id=rule_id,
        tenant_id=tenant_id,
        name=name,
        resources=patterns,
        categories=frozenset(str(c) for c in categories),
        days=frozenset(day_numbers),
        start=start,
        end=end,
        time_zone=str(zone),
        max_access_window=window,
        access_level=level,
        enabled=enabled,
    )


def _hours(value: object, field: str) -> tuple[time, time]:
    """``09:00-17:00`` (``24:00`` ends at midnight)."""
    if not isinstance(value, str) or "-" not in value:
        raise ValidationError(field, "must look like 09:00-17:00")
    first, _, second = value.partition("-")
    if second.strip() == "24:00":
        second = "00:00"
        end_is_midnight = True
    else:
        end_is_midnight = False
    parts = []
    for part in (first.strip(), second.strip()):
        found = _TIME_RE.fullmatch(part)
        if found is None:
            raise ValidationError(field, "must look like 09:00-17:00")
        parts.append(time(int(found.group(1)), int(found.group(2))))
    start, end = parts
    if start == end and not (end_is_midnight and start == time(0)):
        raise ValidationError(field, "the hours must not start and end at the same time")
    if end_is_midnight and start == time(0):
        return time(0), time(23, 59, 59, 999999)
    return start, end
