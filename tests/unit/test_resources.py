"""Resource names: ``*`` only as a whole last segment, and what a grant covers."""

from __future__ import annotations

import pytest

from lockbox.domain.errors import ValidationError
from lockbox.domain.resources import (
    AccessLevel,
    Action,
    covers,
    in_scope,
    level_allows,
    validate_resource,
    validate_resources,
)


@pytest.mark.parametrize(
    "name",
    [
        "exchange/mailbox/alice@contoso.com",
        "exchange/mailbox/*",
        "a/*",
        "files/share-1/q3.report+v2",
        "x",
    ],
)
def test_valid_names(name: str) -> None:
    assert validate_resource(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "*",
        "*/mailbox",
        "exchange/*/alice",
        "exchange/mail*",
        "exchange/mailbox/*x",
        "exchange//alice",
        "/exchange",
        "exchange/",
        "",
        "exchange/mail box",
        "exchange/../secret",
        "exchange/mailbox/..",
        "exchange/./x",
        "exchange/\x00",
        "a" * 513,
        "exchange/mailbox/**",
    ],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_resource(name, "resources[0]")
    assert info.value.field == "resources[0]"


def test_a_wildcard_cannot_be_escaped_with_dot_segments() -> None:
    # A resource service that resolves paths would read 'exchange/secret' here.
    with pytest.raises(ValidationError):
        validate_resource("exchange/mailbox/../../secret", "resource", pattern=False)


def test_concrete_names_have_no_wildcards() -> None:
    with pytest.raises(ValidationError):
        validate_resource("exchange/mailbox/*", "resource", pattern=False)


def test_validate_resources() -> None:
    assert validate_resources(["a/b", "a/c", "a/b"]) == ("a/b", "a/c")
    for bad in ([], None, "a/b", ["ok/x", 3], [f"r/{i}" for i in range(51)]):
        with pytest.raises(ValidationError, match="resources"):
            validate_resources(bad)
    with pytest.raises(ValidationError) as info:
        validate_resources(["ok/x", "bad/*/y"])
    assert info.value.field == "resources[1]"


@pytest.mark.parametrize(
    ("granted", "resource", "expected"),
    [
        ("exchange/mailbox/alice", "exchange/mailbox/alice", True),
        ("exchange/mailbox/alice", "exchange/mailbox/alice2", False),
        ("exchange/mailbox/alice", "exchange/mailbox/alice/inbox", False),
        ("exchange/mailbox/alice", "exchange/mailbox", False),
        ("exchange/mailbox/*", "exchange/mailbox/alice", True),
        ("exchange/mailbox/*", "exchange/mailbox/alice/inbox", True),
        ("exchange/mailbox/*", "exchange/mailbox", False),
        ("exchange/mailbox/*", "exchange/mailbox/", False),
        ("exchange/mailbox/*", "exchange/mailboxes/alice", False),
        ("exchange/mailbox/*", "exchange/mailboxalice", False),
        ("exchange/mailbox/*", "files/mailbox/alice", False),
        ("exchange/mailbox/*", "EXCHANGE/mailbox/alice", False),
    ],
)
def test_covers(granted: str, resource: str, expected: bool) -> None:
    assert covers(granted, resource) is expected


def test_in_scope_any_of() -> None:
    granted = ("a/x", "b/*")
    assert in_scope(granted, "a/x")
    assert in_scope(granted, "b/y")
    assert not in_scope(granted, "a/y")
    assert not in_scope((), "a/x")


def test_levels() -> None:
    assert level_allows(AccessLevel.READ, Action.READ)
    assert not level_allows(AccessLevel.READ, Action.WRITE)
    assert level_allows(AccessLevel.READ_WRITE, Action.READ)
    assert level_allows(AccessLevel.READ_WRITE, Action.WRITE)
