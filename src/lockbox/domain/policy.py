"""A tenant's lockbox policy and its bounds.

The bounds exist so that a typo cannot create a request that waits a year for
approval or grants access for a month: every window has a floor and a ceiling,
and values outside them are refused with an error naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from lockbox.domain.errors import ValidationError
from lockbox.domain.stages import StageRule, default_stages, parse_groups, parse_stages

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)

#: (minimum, maximum) for each window.
WINDOW_BOUNDS: dict[str, tuple[timedelta, timedelta]] = {
    "approval_window": (15 * MINUTE, 7 * 24 * HOUR),
    "access_window": (15 * MINUTE, 7 * 24 * HOUR),
    "review_window": (15 * MINUTE, 7 * 24 * HOUR),
}
REQUIRED_APPROVALS_BOUNDS = (1, 10)
MAX_EXTENSIONS_BOUNDS = (0, 10)
MAX_NOTIFY_EMAILS = 20
_EMAIL_RE = re.compile(r"^[^@\s<>,;\"'\\]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


def validate_email(value: str, field_name: str = "email") -> str:
    """Normalise and check an e-mail address; refuse anything that could inject headers."""
    candidate = value.strip()
    if not _EMAIL_RE.fullmatch(candidate) or any(c in candidate for c in "\r\n"):
        raise ValidationError(field_name, f"{value!r} is not a valid e-mail address")
    local, _, domain = candidate.rpartition("@")
    return f"{local}@{domain.lower()}"


@dataclass(frozen=True)
class LockboxPolicy:
    """What a tenant decided about support access to its content."""

    enabled: bool = True
    approval_window: timedelta = 12 * HOUR
    access_window: timedelta = 4 * HOUR
    review_window: timedelta = 12 * HOUR
    required_approvals: int = 1
    notify_emails: tuple[str, ...] = field(default_factory=tuple)
    #: A reminder goes out when this fraction of the approval window is left.
    reminder_fraction: float = 0.25
    #: The customer's approval stages, in order; empty: one stage of ``required_approvals``
    #: of the tenant's approvers and admins (:meth:`approval_stages`).
    stages: tuple[StageRule, ...] = ()
    #: Named groups of the tenant's people (user ids) that a stage can name.
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: How many times one request's access may be extended (each by at most
    #: ``access_window``); 0: never.
    max_extensions: int = 2
    #: The stages an extension must pass; empty: the same as the request's
    #: (:meth:`approval_stages`). No manager review either way.
    extension_stages: tuple[StageRule, ...] = ()

    def __post_init__(self) -> None:
        for name, (low, high) in WINDOW_BOUNDS.items():
            value = getattr(self, name)
            if not isinstance(value, timedelta) or not low <= value <= high:
                raise ValidationError(
                    name,
                    f"must be between {_fmt(low)} and {_fmt(high)}, got {_fmt_any(value)}",
                )
        low_n, high_n = REQUIRED_APPROVALS_BOUNDS
        if (
            isinstance(self.required_approvals, bool)
            or not isinstance(self.required_approvals, int)
            or not low_n <= self.required_approvals <= high_n
        ):
            raise ValidationError(
                "required_approvals", f"must be a whole number from {low_n} to {high_n}"
            )
        if not isinstance(self.reminder_fraction, int | float) or not (
            0.0 <= float(self.reminder_fraction) < 1.0
        ):
            raise ValidationError(
                "reminder_fraction", "must be at least 0 (no reminder) and below 1"
            )
        if len(self.notify_emails) > MAX_NOTIFY_EMAILS:
            raise ValidationError("notify_emails", f"at most {MAX_NOTIFY_EMAILS} addresses")
        cleaned = tuple(
            validate_email(e, f"notify_emails[{i}]") for i, e in enumerate(self.notify_emails)
        )
        object.__setattr__(self, "notify_emails", tuple(dict.fromkeys(cleaned)))
        low_e, high_e = MAX_EXTENSIONS_BOUNDS
        if (
            isinstance(self.max_extensions, bool)
            or not isinstance(self.max_extensions, int)
            or not low_e <= self.max_extensions <= high_e
        ):
            raise ValidationError(
                "max_extensions", f"must be a whole number from {low_e} to {high_e}"
            )
        object.__setattr__(self, "stages", parse_stages(self.stages, allow_empty=True))
        object.__setattr__(
            self,
            "extension_stages",
            parse_stages(self.extension_stages, "extension_stages", allow_empty=True),
        )
        object.__setattr__(self, "groups", parse_groups(self.groups))
        named = dict(self.groups)
        for field_name in ("stages", "extension_stages"):
            for i, stage in enumerate(getattr(self, field_name)):
                if stage.group is not None and stage.group not in named:
                    raise ValidationError(
                        f"{field_name}[{i}].group", f"no group named {stage.group!r}"
                    )

    def approval_stages(self) -> tuple[StageRule, ...]:
        """The stages a request that reaches the customer must pass (never empty)."""
        return self.stages or default_stages(self.required_approvals)

    def extension_rules(self) -> tuple[StageRule, ...]:
        """The stages an extension must pass (never empty)."""
        return self.extension_stages or self.approval_stages()

    def groups_of(self, user_id: str) -> frozenset[str]:
        """The names of the groups ``user_id`` belongs to."""
        return frozenset(name for name, members in self.groups if user_id in members)

    def group_members(self, name: str) -> tuple[str, ...]:
        return dict(self.groups).get(name, ())

    def widens(self, current: LockboxPolicy) -> bool:
        """Whether this policy, replacing ``current``, lets access through more easily
        (four eyes: another tenant admin must approve it; :meth:`widenings` says why)."""
        return bool(self.widenings(current))

    def widenings(self, current: LockboxPolicy) -> list[str]:
        """How this policy, replacing ``current``, widens access, in words (empty: it does
        not). Conservative: whatever is not plainly at least as strict counts.

        Widening: turning the lockbox off; a longer approval or access window; a longer
        review window while the lockbox is off (the manager's review is then the only
        step); fewer required approvals (the default stage, and the fallback when no stage
        applies); a stage removed, needing fewer approvals, admitting another role or
        group, or applying to other requests (its condition changed in any way); a stage
        added when no stage applied to every request (it can replace the default stage);
        more extensions or weaker extension stages (compared the same way); anyone added
        to a group. Not widening: shorter windows, more approvals, stricter stages,
        people removed from groups, notification addresses, the reminder, names.
        """
        found: list[str] = []
        if current.enabled and not self.enabled:
            found.append("turns the lockbox off")
        if self.approval_window > current.approval_window:
            found.append("gives approvers longer to approve")
        if self.access_window > current.access_window:
            found.append("lets access last longer")
        if not self.enabled and self.review_window > current.review_window:
            found.append("gives the provider's review longer while the lockbox is off")
        if self.required_approvals < current.required_approvals:
            found.append("needs fewer approvals")
        found += _weaker_stages(current.approval_stages(), self.approval_stages(), "stage")
        if self.max_extensions > current.max_extensions:
            found.append("allows more extensions")
        if current.extension_stages or self.extension_stages:  # else: the same as the stages
            found += _weaker_stages(
                current.extension_rules(), self.extension_rules(), "extension stage"
            )
        for name, members in self.groups:
            if set(members) - set(current.group_members(name)):
                found.append(f"adds people to the group {name}")
        return list(dict.fromkeys(found))

    def with_changes(self, **changes: Any) -> LockboxPolicy:
        """Return a validated copy; unknown fields are refused by name."""
        known = set(self.__dataclass_fields__)
        for key in changes:
            if key not in known:
                raise ValidationError(key, "is not a policy setting")
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe representation (windows in whole seconds) for audit and APIs."""
        return {
            "enabled": self.enabled,
            "approval_window_seconds": int(self.approval_window.total_seconds()),
            "access_window_seconds": int(self.access_window.total_seconds()),
            "review_window_seconds": int(self.review_window.total_seconds()),
            "required_approvals": self.required_approvals,
            "notify_emails": list(self.notify_emails),
            "reminder_fraction": self.reminder_fraction,
            "stages": [stage.as_dict() for stage in self.stages],
            "groups": {name: list(members) for name, members in self.groups},
            "max_extensions": self.max_extensions,
            "extension_stages": [stage.as_dict() for stage in self.extension_stages],
        }


def _fmt(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


def _fmt_any(value: object) -> str:
    return _fmt(value) if isinstance(value, timedelta) else repr(value)


def parse_duration(text: str, field_name: str) -> timedelta:
    """Parse ``90m``, ``12h``, ``2d`` or ``1h30m`` (what people type in a CLI or form)."""
    match = re.fullmatch(r"\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*", text)
    if not text.strip() or match is None or not any(match.groups()):
        raise ValidationError(field_name, f"{text!r} is not a duration like 12h, 90m or 1h30m")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _weaker_stages(old: tuple[StageRule, ...], new: tuple[StageRule, ...], label: str) -> list[str]:
    """How ``new`` stages (by key) ask less than ``old`` ones, in words (see ``widenings``)."""
    found: list[str] = []
    by_key = {stage.key: stage for stage in new}
    for stage in old:
        now = by_key.get(stage.key)
        if now is None:
            found.append(f"removes the {label} {stage.name}")
            continue
        if now.required < stage.required:
            found.append(f"needs fewer approvals in the {label} {stage.name}")
        if not now.roles <= stage.roles:
            found.append(f"lets more roles approve the {label} {stage.name}")
        if now.group is not None and now.group != stage.group:
            found.append(f"lets another group approve the {label} {stage.name}")
        if now.condition != stage.condition:
            found.append(f"changes when the {label} {stage.name} applies")
    # A request that no stage applies to gets the default stage; a new stage that applies
    # to it replaces the default stage, unless a stage always applied already.
    always = any(not stage.condition.as_dict() for stage in old)
    known = {stage.key for stage in old}
    for stage in new:
        if stage.key not in known and not always:
            found.append(f"adds the {label} {stage.name}, which can replace the default one")
    return found
