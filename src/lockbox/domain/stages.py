"""Approval stages: who must approve a request, in what order, and how many of them.

A tenant's policy holds an ordered list of :class:`StageRule`. When a support
manager forwards a request, the rules that apply to it (their condition holds)
become the request's :class:`StagePlan`, frozen on the request: a later policy
change never moves the goalposts of a request already waiting. Stages are met
in order; a stage is met when ``required`` distinct people eligible for it
approved; one denial at any stage denies the request.

Today's single setting "required approvals: N" is the one-stage case
(:func:`default_stages`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lockbox.domain import text
from lockbox.domain.errors import ValidationError
from lockbox.domain.ids import validate_id
from lockbox.domain.resources import AccessLevel, validate_resource
from lockbox.domain.roles import Role

MAX_STAGES = 5
MAX_REQUIRED = 10
STAGE_ROLES = frozenset({Role.APPROVER, Role.TENANT_ADMIN})
_KEY_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
_GROUP_RE = re.compile(r"[a-z][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class Condition:
    """When a stage applies: all given parts must hold (none given: always)."""

    access_level: AccessLevel | None = None  # e.g. only for read_write
    resources: tuple[str, ...] = ()  # names or prefix/* patterns; any requested resource under one

    def holds(self, level: AccessLevel, resources: Sequence[str]) -> bool:
        if self.access_level is not None and level is not self.access_level:
            return False
        return not self.resources or any(
            _overlaps(pattern, name) for pattern in self.resources for name in resources
        )

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.access_level is not None:
            data["access_level"] = self.access_level.value
        if self.resources:
            data["resources"] = list(self.resources)
        return data


def _overlaps(a: str, b: str) -> bool:
    """Whether two names or ``prefix/*`` patterns have any concrete name in common."""
    pa, wild_a = (a[:-1], True) if a.endswith("/*") else (a, False)
    pb, wild_b = (b[:-1], True) if b.endswith("/*") else (b, False)
    if wild_a and wild_b:
        return pa.startswith(pb) or pb.startswith(pa)
    if wild_a:
        return pb.startswith(pa) and len(pb) > len(pa)
    if wild_b:
        return pa.startswith(pb) and len(pa) > len(pb)
    return pa == pb


@dataclass(frozen=True)
class StageRule:
    """One stage of a tenant's approval policy."""

    key: str
    name: str
    required: int = 1
    roles: frozenset[Role] = field(default_factory=lambda: frozenset(STAGE_ROLES))
    group: str | None = None  # a named group of the tenant's people (instead of, or with, roles)
    condition: Condition = field(default_factory=Condition)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "key": self.key,
            "name": self.name,
            "required": self.required,
            "roles": sorted(r.value for r in self.roles),
            "group": self.group,
        }
        condition = self.condition.as_dict()
        if condition:
            data["condition"] = condition
        return data


def default_stages(required: int = 1) -> tuple[StageRule, ...]:
    """The one-stage policy: ``required`` of the tenant's approvers and admins."""
    return (StageRule(key="approvers", name="Approvers", required=required),)


@dataclass(frozen=True)
class PlannedStage:
    """A stage as frozen on a request when it reached the customer."""

    key: str
    name: str
    required: int
    roles: frozenset[Role]
    group: str | None

    @classmethod
    def of(cls, rule: StageRule) -> PlannedStage:
        return cls(rule.key, rule.name, rule.required, rule.roles, rule.group)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "required": self.required,
            "roles": sorted(r.value for r in self.roles),
            "group": self.group,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlannedStage:
        return cls(
            key=str(data["key"]),
            name=str(data["name"]),
            required=int(data["required"]),
            roles=frozenset(Role(r) for r in data.get("roles") or ()),
            group=data.get("group"),
        )

    def admits(self, roles: Iterable[Role], groups: Iterable[str]) -> bool:
        """Whether someone with ``roles`` and membership of ``groups`` may approve here."""
        return bool(self.roles & set(roles)) or (self.group is not None and self.group in groups)


def plan(
    rules: Sequence[StageRule],
    level: AccessLevel,
    resources: Sequence[str],
    fallback: Sequence[StageRule] = default_stages(),
) -> tuple[PlannedStage, ...]:
    """The stages that apply to a request, in policy order; ``fallback`` when none does
    (never empty: with the lockbox on, a customer approval always needs someone)."""
    applicable = tuple(PlannedStage.of(r) for r in rules if r.condition.holds(level, resources))
    return applicable or tuple(PlannedStage.of(r) for r in fallback)


# -- reading a policy's stages from people's input ----------------------------------------------


def parse_stages(
    values: object, field_name: str = "stages", *, allow_empty: bool = False
) -> tuple[StageRule, ...]:
    """Validate a list of stage dicts (from the API, the CLI or the settings page);
    ``allow_empty``: an empty list is the policy's one default stage."""
    if isinstance(values, list | tuple) and not values and allow_empty:
        return ()
    if not isinstance(values, list | tuple) or not values:
        raise ValidationError(field_name, "give at least one stage")
    if len(values) > MAX_STAGES:
        raise ValidationError(field_name, f"at most {MAX_STAGES} stages")
    stages = tuple(_parse_stage(v, f"{field_name}[{i}]") for i, v in enumerate(values))
    keys = [s.key for s in stages]
    if len(set(keys)) != len(keys):
        raise ValidationError(field_name, "stage keys must be different")
    return stages


def _parse_stage(value: object, where: str) -> StageRule:
    if isinstance(value, StageRule):
        return value
    if not isinstance(value, dict):
        raise ValidationError(where, "must be an object")
    unknown = set(value) - {"key", "name", "required", "roles", "group", "condition"}
    if unknown:
        raise ValidationError(f"{where}.{sorted(unknown)[0]}", "is not a stage setting")
    key = value.get("key")
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise ValidationError(f"{where}.key", "must be 1-40 lower-case letters, digits or '-'")
    name = text.required_text(
        value.get("name") or key, f"{where}.name", max_len=80, multiline=False
    )
    required = value.get("required", 1)
    if (
        isinstance(required, bool)
        or not isinstance(required, int)
        or not 1 <= required <= MAX_REQUIRED
    ):
        raise ValidationError(
            f"{where}.required", f"must be a whole number from 1 to {MAX_REQUIRED}"
        )
    roles_in = value.get("roles")
    group = value.get("group")
    if group is not None and (not isinstance(group, str) or not _GROUP_RE.fullmatch(group)):
        raise ValidationError(f"{where}.group", "must be a group name (lower-case, digits, '-')")
    roles: frozenset[Role] = frozenset()
    if roles_in is None:
        roles = frozenset() if group else frozenset(STAGE_ROLES)
    else:
        if not isinstance(roles_in, list | tuple):
            raise ValidationError(f"{where}.roles", "must be a list of roles")
        found = set()
        for i, r in enumerate(roles_in):
            try:
                role = Role(str(r))
            except ValueError:
                raise ValidationError(
                    f"{where}.roles[{i}]", "must be approver or tenant_admin"
                ) from None
            if role not in STAGE_ROLES:
                raise ValidationError(f"{where}.roles[{i}]", "must be approver or tenant_admin")
            found.add(role)
        roles = frozenset(found)
    if not roles and group is None:
        raise ValidationError(where, "name who approves: roles, a group, or both")
    return StageRule(
        key=key,
        name=name,
        required=required,
        roles=roles,
        group=group,
        condition=_parse_condition(value.get("condition"), f"{where}.condition"),
    )


def _parse_condition(value: object, where: str) -> Condition:
    if value is None:
        return Condition()
    if not isinstance(value, dict):
        raise ValidationError(where, "must be an object")
    unknown = set(value) - {"access_level", "resources"}
    if unknown:
        raise ValidationError(f"{where}.{sorted(unknown)[0]}", "is not a condition")
    level = value.get("access_level")
    parsed_level = None
    if level is not None:
        try:
            parsed_level = AccessLevel(str(level))
        except ValueError:
            raise ValidationError(f"{where}.access_level", "must be read or read_write") from None
    resources = value.get("resources") or []
    if not isinstance(resources, list | tuple):
        raise ValidationError(f"{where}.resources", "must be a list of resource patterns")
    cleaned = tuple(
        validate_resource(r, f"{where}.resources[{i}]") for i, r in enumerate(resources)
    )
    return Condition(access_level=parsed_level, resources=cleaned)


MAX_GROUPS = 20
MAX_GROUP_MEMBERS = 100


def parse_groups(
    values: object, field_name: str = "groups"
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Validate named groups: ``{name: [user id, ...]}`` (or the stored pairs), sorted by
    name. Members are user ids: the service resolves e-mail addresses before this."""
    pairs = list(values.items()) if isinstance(values, dict) else values
    if not isinstance(pairs, list | tuple):
        raise ValidationError(field_name, "must map group names to lists of people")
    if len(pairs) > MAX_GROUPS:
        raise ValidationError(field_name, f"at most {MAX_GROUPS} groups")
    groups: dict[str, tuple[str, ...]] = {}
    for pair in pairs:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValidationError(field_name, "must map group names to lists of people")
        name, members = pair
        if not isinstance(name, str) or not _GROUP_RE.fullmatch(name):
            raise ValidationError(
                f"{field_name}.{str(name)[:40]}",
                "a group name is 1-63 lower-case letters, digits or '-', starting with a letter",
            )
        if not isinstance(members, list | tuple) or len(members) > MAX_GROUP_MEMBERS:
            raise ValidationError(
                f"{field_name}.{name}", f"must list at most {MAX_GROUP_MEMBERS} people"
            )
        for i, member in enumerate(members):
            validate_id(member, "user", f"{field_name}.{name}[{i}]")
        groups[name] = tuple(dict.fromkeys(members))
    return tuple(sorted(groups.items()))
