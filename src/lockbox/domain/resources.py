"""Resource names, access levels and the scope check.

A resource name is a slash-separated path such as
``exchange/mailbox/alice@contoso.com``. A request may end a name with ``*`` as
a whole last segment (``exchange/mailbox/*``) to cover everything below that
prefix; a ``*`` anywhere else is refused, so a grant can never be broader than
what the approver read.
"""

from __future__ import annotations

import re
from enum import StrEnum

from lockbox.domain.errors import ValidationError

MAX_RESOURCES = 50
MAX_RESOURCE_LENGTH = 512
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._@+:=~-]{1,200}$")


class AccessLevel(StrEnum):
    READ = "read"
    READ_WRITE = "read_write"


class Action(StrEnum):
    READ = "read"
    WRITE = "write"


def level_allows(level: AccessLevel, action: Action) -> bool:
    """``read`` permits reading; ``read_write`` permits both."""
    return action is Action.READ or level is AccessLevel.READ_WRITE


def validate_resource(name: object, field_name: str = "resource", *, pattern: bool = True) -> str:
    """Check one resource name; ``pattern`` allows a trailing ``*`` segment."""
    if not isinstance(name, str):
        raise ValidationError(field_name, "must be a string")
    if not name or len(name) > MAX_RESOURCE_LENGTH:
        raise ValidationError(field_name, f"must be 1 to {MAX_RESOURCE_LENGTH} characters")
    segments = name.split("/")
    for index, segment in enumerate(segments):
        if segment == "*":
            if not pattern:
                raise ValidationError(field_name, "a concrete resource name cannot contain '*'")
            if index != len(segments) - 1 or index == 0:
                raise ValidationError(
                    field_name, "'*' is allowed only as the whole last segment, after a prefix"
                )
            continue
        if segment in (".", ".."):
            # 'a/b/*' must not cover 'a/b/../c' for a service that resolves paths.
            raise ValidationError(field_name, "segments '.' and '..' are not allowed")
        if not _SEGMENT_RE.fullmatch(segment):
            raise ValidationError(
                field_name,
                f"segment {segment!r} must be non-empty and use only letters, digits and ._@+:=~-",
            )
    return name


def validate_resources(names: object, field_name: str = "resources") -> tuple[str, ...]:
    """Validate a request's list of resources; duplicates are folded, order kept."""
    if not isinstance(names, list | tuple) or not names:
        raise ValidationError(field_name, "name at least one resource")
    if len(names) > MAX_RESOURCES:
        raise ValidationError(field_name, f"at most {MAX_RESOURCES} resources per request")
    cleaned = [validate_resource(n, f"{field_name}[{i}]") for i, n in enumerate(names)]
    return tuple(dict.fromkeys(cleaned))


def covers(granted: str, resource: str) -> bool:
    """Whether the granted name or pattern covers the concrete ``resource``."""
    if granted.endswith("/*"):
        prefix = granted[:-1]  # keep the trailing slash: 'a/b/*' covers 'a/b/x', not 'a/bx'
        return resource.startswith(prefix) and len(resource) > len(prefix)
    return granted == resource


def in_scope(granted: tuple[str, ...], resource: str) -> bool:
    return any(covers(g, resource) for g in granted)


def within(granted: str, name: str) -> bool:
    """Whether ``name`` (a concrete name or a ``prefix/*`` pattern) asks for nothing that
    ``granted`` does not cover: what an approver may grant out of what was asked."""
    if name.endswith("/*"):
        return granted.endswith("/*") and name[:-1].startswith(granted[:-1])
    return covers(granted, name)
