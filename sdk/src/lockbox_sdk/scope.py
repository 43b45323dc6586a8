"""Resource names, access levels and the scope check, as a resource service applies them.

A resource name is a slash-separated path such as
``exchange/mailbox/alice@contoso.com``. A grant may end a name with ``*`` as a
whole last segment (``exchange/mailbox/*``) to cover everything below that
prefix; a ``*`` anywhere else is refused, so a grant can never be broader than
what the approver read.

This is the SDK's own copy of the server's rules (``lockbox.domain.resources``),
so a resource service does not install the server to enforce them. The two
copies are kept equal by the JSON test vectors in ``sdk/vectors/`` (both are
tested against ``scopes.json`` and ``levels.json``), not by importing one from
the other: an SDK in another language proves itself against the same files.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache

MAX_RESOURCE_LENGTH = 512
# Same expression as the server's, deliberately: the copies must decide alike.
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._@+:=~-]{1,200}$")
# A whole concrete name in one pass: segments of _SEGMENT_RE's characters, none of them
# '.' or '..'. Only a fast path for is_concrete: it accepts no name that
# validate_resource(pattern=False) refuses, and whatever it does not accept is decided by
# validate_resource itself (tests check that the two agree).
_CONCRETE_SEGMENT = r"(?!\.\.?(?:/|\Z))[A-Za-z0-9._@+:=~-]{1,200}"
_CONCRETE_RE = re.compile(rf"{_CONCRETE_SEGMENT}(?:/{_CONCRETE_SEGMENT})*")


class ScopeError(ValueError):
    """A resource name breaks the naming rules; ``field`` names the offending input.

    A :class:`ValueError`, so callers that only care that a name is unusable can
    catch that; the SDK itself turns it into an ``out_of_scope`` refusal.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class AccessLevel(StrEnum):
    READ = "read"
    READ_WRITE = "read_write"


class Action(StrEnum):
    READ = "read"
    WRITE = "write"


def level_allows(level: AccessLevel, action: Action) -> bool:
    """``read`` permits reading; ``read_write`` permits both."""
    return action is Action.READ or level is AccessLevel.READ_WRITE


_PERMITTED = frozenset(
    (level.value, action.value)
    for level in AccessLevel
    for action in Action
    if level_allows(level, action)
)


def level_permits(level: object, action: object) -> bool:
    """:func:`level_allows` for raw strings, as a token or a request carries them: False
    when either is no known level or action (``AccessLevel(level)`` would raise)."""
    try:
        return (level, action) in _PERMITTED
    except TypeError:  # unhashable: certainly neither a level nor an action
        return False


def validate_resource(name: object, field_name: str = "resource", *, pattern: bool = True) -> str:
    """Check one resource name and return it; ``pattern`` allows a trailing ``*`` segment.

    A service checks the *concrete* name it is about to touch with
    ``pattern=False`` before asking :func:`in_scope`, because ``covers`` is a
    plain prefix test: ``a/b/*`` must not cover ``a/b/../secret``, ``a/b//x``
    or a literal ``a/b/*``.
    """
    if not isinstance(name, str):
        raise ScopeError(field_name, "must be a string")
    if not name or len(name) > MAX_RESOURCE_LENGTH:
        raise ScopeError(field_name, f"must be 1 to {MAX_RESOURCE_LENGTH} characters")
    segments = name.split("/")
    for index, segment in enumerate(segments):
        if segment == "*":
            if not pattern:
                raise ScopeError(field_name, "a concrete resource name cannot contain '*'")
            if index != len(segments) - 1 or index == 0:
                raise ScopeError(
                    field_name, "'*' is allowed only as the whole last segment, after a prefix"
                )
            continue
        if segment in (".", ".."):
            # 'a/b/*' must not cover 'a/b/../c' for a service that resolves paths.
            raise ScopeError(field_name, "segments '.' and '..' are not allowed")
        if not _SEGMENT_RE.fullmatch(segment):
            raise ScopeError(
                field_name,
                f"segment {segment!r} must be non-empty and use only letters, digits and ._@+:=~-",
            )
    return name


def is_concrete(name: object) -> bool:
    """Whether ``name`` is a valid concrete resource name (no ``*``).

    Pure, so the answers for recently seen names are kept (a bounded LRU cache of
    4,096 names of at most :data:`MAX_RESOURCE_LENGTH` characters).
    """
    return isinstance(name, str) and _is_concrete(name)


@lru_cache(maxsize=4096)
def _is_concrete(name: str) -> bool:
    if 0 < len(name) <= MAX_RESOURCE_LENGTH and _CONCRETE_RE.fullmatch(name) is not None:
        return True
    try:  # the reference rules decide whatever the fast path did not accept
        validate_resource(name, pattern=False)
    except ScopeError:
        return False
    return True


def covers(granted: str, resource: str) -> bool:
    """Whether the granted name or pattern covers ``resource`` (a prefix test only:
    validate ``resource`` as concrete first, see :func:`validate_resource`)."""
    if granted.endswith("/*"):
        prefix = granted[:-1]  # keep the trailing slash: 'a/b/*' covers 'a/b/x', not 'a/bx'
        return resource.startswith(prefix) and len(resource) > len(prefix)
    return granted == resource


def in_scope(granted: tuple[str, ...], resource: str) -> bool:
    """Whether any granted name or pattern covers ``resource`` (:func:`covers`, inlined)."""
    for g in granted:
        if g.endswith("/*"):
            if len(resource) >= len(g) and resource.startswith(g[:-1]):
                return True
        elif g == resource:
            return True
    return False


__all__ = [
    "MAX_RESOURCE_LENGTH",
    "AccessLevel",
    "Action",
    "ScopeError",
    "covers",
    "in_scope",
    "is_concrete",
    "level_allows",
    "level_permits",
    "validate_resource",
]
