"""The SDK meets every JSON test vector in ``sdk/vectors/``, and those files are exactly
what ``generate.py`` writes (so nobody hand-edits one into disagreeing with the spec).

The same files are what an SDK in another language is tested against; the
server's own rules are checked against them in ``tests/unit/test_scope_vectors.py``.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from lockbox_sdk.feed import Grant, GrantTable
from lockbox_sdk.scope import (
    AccessLevel,
    Action,
    ScopeError,
    in_scope,
    is_concrete,
    level_allows,
    validate_resource,
)
from lockbox_sdk.verify import TokenError, TokenVerifier

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def case_id(case: dict[str, Any]) -> str:
    return str(case.get("name") or case.get("note") or "")[:60]


SCOPES = load("scopes.json")
LEVELS = load("levels.json")
DECISIONS = load("decisions.json")
TOKENS = load("tokens.json")


# -- scopes.json / levels.json ------------------------------------------------------------


def valid(name: object, *, pattern: bool) -> bool:
    try:
        validate_resource(name, pattern=pattern)
    except ScopeError:
        return False
    return True


@pytest.mark.parametrize("case", SCOPES["names"], ids=case_id)
def test_names(case: dict[str, Any]) -> None:
    assert valid(case["name"], pattern=False) is case["concrete"]
    assert valid(case["name"], pattern=True) is case["pattern"]
    assert is_concrete(case["name"]) is case["concrete"]


@pytest.mark.parametrize("case", SCOPES["scopes"], ids=case_id)
def test_scopes(case: dict[str, Any]) -> None:
    granted, resource = tuple(case["granted"]), case["resource"]
    covered = is_concrete(resource) and in_scope(granted, resource)
    assert covered is case["covered"]


def allowed(level: str, action: str) -> bool:
    try:
        return level_allows(AccessLevel(level), Action(action))
    except ValueError:
        return False


@pytest.mark.parametrize("case", LEVELS["levels"], ids=case_id)
def test_levels(case: dict[str, Any]) -> None:
    assert allowed(case["level"], case["action"]) is case["allowed"]


# -- decisions.json -----------------------------------------------------------------------


def table_from_events(events: list[dict[str, Any]]) -> GrantTable:
    table = GrantTable()
    for event in events:
        if event["kind"] == "grant":
            table.grant(Grant.from_event(event["data"]))
        elif event["kind"] == "end":
            table.end(event["data"]["request_id"], event["data"]["reason"])
        else:  # pragma: no cover - a vector file this test does not understand
            pytest.fail(f"unknown event kind {event['kind']!r}")
    return table


@pytest.mark.parametrize("case", DECISIONS["cases"], ids=case_id)
def test_decisions(case: dict[str, Any]) -> None:
    table = table_from_events(DECISIONS["events"])
    q = case["question"]
    decision = table.decide(
        engineer=q["engineer"],
        tenant=q["tenant"],
        resource=q["resource"],
        action=q["action"],
        now=instant(q["now"]),
        request_id=q["request_id"],
    )
    expected = case["expected"]
    assert (decision.allowed, decision.reason) == (expected["allowed"], expected["reason"])
    if expected["allowed"]:
        assert decision.grant is not None
        assert decision.grant.request_id == expected["request_id"]


def test_decisions_give_every_reason_of_the_local_table() -> None:
    reasons = {case["expected"]["reason"] for case in DECISIONS["cases"]}
    assert {"approved", "no_request", "expired", "out_of_scope", "level_too_low"} <= reasons
    ended = {e["data"]["reason"] for e in DECISIONS["events"] if e["kind"] == "end"}
    assert reasons & ended, "no question reaches a grant that ended"


# -- tokens.json --------------------------------------------------------------------------


def verifier_at(now: int) -> TokenVerifier:
    at = datetime.fromtimestamp(now, tz=UTC)
    jwks: dict[str, Any] = TOKENS["jwks"]
    return TokenVerifier(
        audience=TOKENS["audience"],
        issuer=TOKENS["issuer"],
        fetch_jwks=lambda: jwks,
        clock=lambda: at,
        leeway=timedelta(seconds=TOKENS["leeway_seconds"]),
    )


@pytest.mark.parametrize("case", TOKENS["valid"], ids=case_id)
def test_valid_tokens(case: dict[str, Any]) -> None:
    with verifier_at(case["now"]) as verifier:
        claims = verifier.verify(case["token"])
    want = case["claims"]
    got = {
        "engineer": claims.engineer,
        "tenant_id": claims.tenant_id,
        "tenant": claims.tenant,
        "request_id": claims.request_id,
        "resources": list(claims.resources),
        "access_level": claims.access_level,
        "audience": claims.audience,
        "issued_at": int(claims.issued_at.timestamp()),
        "expires_at": int(claims.expires_at.timestamp()),
        "jti": claims.jti,
        "kid": claims.kid,
    }
    assert got == want
    for check in case["checks"]:
        assert claims.denies(check["resource"], check["action"]) == check["denies"], check


@pytest.mark.parametrize("case", TOKENS["invalid"], ids=case_id)
def test_forged_tokens(case: dict[str, Any]) -> None:
    with verifier_at(case["now"]) as verifier, pytest.raises(TokenError) as refused:
        verifier.verify(case["token"])
    assert refused.value.reason == case["reason"]


def test_the_token_shape_is_the_sdks() -> None:
    from lockbox_sdk.claims import ALGORITHM, REQUIRED_CLAIMS, TOKEN_TYPE

    assert TOKENS["algorithm"] == ALGORITHM
    assert TOKENS["token_type"] == TOKEN_TYPE
    assert TOKENS["required_claims"] == list(REQUIRED_CLAIMS)


# -- the files are generated ----------------------------------------------------------------


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lockbox_sdk_vectors", VECTORS / "generate.py")
    if spec is None or spec.loader is None:  # pragma: no cover - the file is in the repo
        pytest.fail("cannot load sdk/vectors/generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_vectors_are_what_generate_py_writes() -> None:
    expected: dict[str, str] = generator().build()
    committed = {p.name for p in VECTORS.glob("*.json")}
    assert committed == set(expected), "a vector file is missing or not generated"
    for name, text in expected.items():
        assert (VECTORS / name).read_text(encoding="utf-8") == text, (
            f"{name} differs from generate.py's output: run python sdk/vectors/generate.py"
        )


def test_generation_is_deterministic() -> None:
    module = generator()
    assert module.build() == module.build()
