"""The server's own rules decide exactly as the SDK's test vectors say.

The SDK (``lockbox_sdk.scope``, in its own distribution) carries a copy of
``lockbox.domain.resources`` rather than importing it, so a resource service
never installs the server. The copies are kept equal here: the server is held
to the same ``sdk/vectors/scopes.json`` and ``levels.json`` the SDK passes
(``sdk/tests/test_sdk_vectors.py``), its token shape to ``tokens.json``, and a
property test compares the two copies on generated names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lockbox_sdk import claims as sdk_claims
from lockbox_sdk import scope as sdk_scope

from lockbox.access import claims
from lockbox.domain.errors import ValidationError
from lockbox.domain.resources import (
    AccessLevel,
    Action,
    covers,
    in_scope,
    level_allows,
    validate_resource,
)

VECTORS = Path(__file__).resolve().parents[2] / "sdk" / "vectors"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


def case_id(case: dict[str, Any]) -> str:
    return str(case.get("note") or "")[:60]


SCOPES = load("scopes.json")
LEVELS = load("levels.json")
TOKENS = load("tokens.json")


def valid(name: object, *, pattern: bool) -> bool:
    try:
        validate_resource(name, pattern=pattern)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("case", SCOPES["names"], ids=case_id)
def test_server_names_match_the_vectors(case: dict[str, Any]) -> None:
    assert valid(case["name"], pattern=False) is case["concrete"]
    assert valid(case["name"], pattern=True) is case["pattern"]


@pytest.mark.parametrize("case", SCOPES["scopes"], ids=case_id)
def test_server_scopes_match_the_vectors(case: dict[str, Any]) -> None:
    granted, resource = tuple(case["granted"]), case["resource"]
    covered = valid(resource, pattern=False) and in_scope(granted, resource)
    assert covered is case["covered"]


@pytest.mark.parametrize("case", LEVELS["levels"], ids=case_id)
def test_server_levels_match_the_vectors(case: dict[str, Any]) -> None:
    try:
        allowed = level_allows(AccessLevel(case["level"]), Action(case["action"]))
    except ValueError:
        allowed = False
    assert allowed is case["allowed"]


def test_server_token_shape_matches_the_vectors() -> None:
    assert TOKENS["algorithm"] == claims.ALGORITHM == sdk_claims.ALGORITHM
    assert TOKENS["token_type"] == claims.TOKEN_TYPE == sdk_claims.TOKEN_TYPE
    assert TOKENS["required_claims"] == list(claims.REQUIRED_CLAIMS)
    assert claims.REQUIRED_CLAIMS == sdk_claims.REQUIRED_CLAIMS


def test_the_enums_are_the_same() -> None:
    assert [m.value for m in AccessLevel] == [m.value for m in sdk_scope.AccessLevel]
    assert [m.value for m in Action] == [m.value for m in sdk_scope.Action]


# Names built from the characters that matter: allowed ones, separators, '*', dots and a
# few that must be refused (space, non-ASCII, newline), so edge cases come up often.
_names = st.text(alphabet="ab/*._@-~ Zä\n", max_size=12)


def _server_valid(name: str, pattern: bool) -> bool:
    return valid(name, pattern=pattern)


def _sdk_valid(name: str, pattern: bool) -> bool:
    try:
        sdk_scope.validate_resource(name, pattern=pattern)
    except sdk_scope.ScopeError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(name=_names, pattern=st.booleans())
def test_the_two_copies_validate_alike(name: str, pattern: bool) -> None:
    assert _server_valid(name, pattern) is _sdk_valid(name, pattern)


@settings(max_examples=400, deadline=None)
@given(granted=_names, resource=_names)
def test_the_two_copies_cover_alike(granted: str, resource: str) -> None:
    assert covers(granted, resource) is sdk_scope.covers(granted, resource)
