"""The SDK's own token parser and its verified-token cache.

The SDK parses the compact JWS itself (PyJWT's generic path cost half of a verification),
so these tests hold it to the strictness a reader of RFC 7515 expects, and hold the cache
to the promise in ``TokenVerifier``'s docstring: it never answers differently from a
verification from scratch at the same instant (expiry, a retired key, another audience).
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lockbox_sdk.scope import ScopeError, is_concrete, validate_resource

from lockbox.access import keys
from lockbox.sdk.verify import TokenError, TokenVerifier
from tests.access.test_sdk import NOW, Fake, mint


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign(key: keys.SigningKey, header: str, payload: str) -> str:
    """A token from raw header and payload JSON texts, signed by ``key``."""
    signed = f"{b64(header.encode())}.{b64(payload.encode())}"
    signature = key.private_key().sign(signed.encode("ascii"))
    return f"{signed}.{b64(signature)}"


def claims_json(**over: Any) -> str:
    epoch = int(NOW.timestamp())
    claims: dict[str, Any] = {
        "iss": "lockbox",
        "sub": "usr_1",
        "aud": "mailstore",
        "tenant_id": "ten_1",
        "tenant": "contoso",
        "request_id": "req_1",
        "resources": ["exchange/mailbox/*"],
        "access_level": "read",
        "iat": epoch,
        "nbf": epoch,
        "exp": epoch + 300,
        "jti": "j1",
    }
    claims.update(over)
    return json.dumps(claims)


def reason(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenError) as err:
        verifier.verify(token)
    return err.value.reason


# -- the parser ------------------------------------------------------------------------------


def test_a_hand_signed_token_verifies_like_a_minted_one() -> None:
    key = keys.generate(NOW)
    fake = Fake(key)
    header = json.dumps({"alg": "EdDSA", "kid": key.kid, "typ": "JWT"})
    claims = fake.verifier().verify(sign(key, header, claims_json()))
    assert (claims.engineer, claims.tenant, claims.resources) == (
        "usr_1",
        "contoso",
        ("exchange/mailbox/*",),
    )


def test_padding_other_alphabets_and_non_canonical_encodings_are_malformed() -> None:
    key = keys.generate(NOW)
    verifier = Fake(key).verifier()
    token = mint(key)
    head, body, signature = token.split(".")
    assert len(signature) % 4 == 2  # 64 bytes: the last character carries 4 unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # The next character differs from the last only in those unused bits: the very same
    # signature bytes, spelled differently. Refused, so no token has two spellings.
    respelled = signature[:-1] + alphabet[alphabet.index(signature[-1]) + 1]
    assert base64.urlsafe_b64decode(respelled + "==") == base64.urlsafe_b64decode(signature + "==")
    for bad in (
        f"{head}.{body}.{respelled}",
        f"{head}.{body}.{signature}==",  # padding
        f"{head}.{body}.{signature[:-1]}+",  # the standard alphabet
        f"{head}.{body}.{signature[:-1]}/",
        f"{head}.{body}",  # two parts
        f"{head}.{body}.{signature}.x",  # four parts
        f" {token}",  # whitespace
        f"{head}.{body}.{signature[:-1]}",  # 85 characters: length 1 (mod 4)
        f"{head}.{body}.{signature[:-1]}é",  # not ASCII
    ):
        assert reason(verifier, bad) == "malformed", bad


def test_a_member_named_twice_is_malformed_in_the_header_and_in_the_payload() -> None:
    key = keys.generate(NOW)
    verifier = Fake(key).verifier()
    twice_alg = f'{{"alg": "EdDSA", "kid": "{key.kid}", "alg": "none"}}'
    assert reason(verifier, sign(key, twice_alg, claims_json())) == "malformed"
    header = json.dumps({"alg": "EdDSA", "kid": key.kid})
    twice_sub = claims_json()[:-1] + ', "sub": "usr_2"}'
    assert reason(verifier, sign(key, header, twice_sub)) == "malformed"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"alg": "none"}, "unsupported_algorithm"),
        ({"alg": "HS256"}, "unsupported_algorithm"),
        ({"alg": "EdDSA", "crit": ["exp"]}, "malformed"),
        ({"alg": "EdDSA", "b64": False}, "malformed"),
        ({"alg": "EdDSA", "kid": 7}, "malformed"),
    ],
)
def test_headers_the_sdk_does_not_understand_are_refused(
    header: dict[str, Any], expected: str
) -> None:
    key = keys.generate(NOW)
    header = {"kid": key.kid, **header}
    assert reason(Fake(key).verifier(), sign(key, json.dumps(header), claims_json())) == expected


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"exp": "1767603900"}, "malformed"),  # a string is not a NumericDate
        ({"exp": True}, "malformed"),
        ({"exp": float("nan")}, "malformed"),  # NaN is not JSON
        ({"resources": "exchange/mailbox/*"}, "malformed"),
        ({"sub": 1}, "malformed"),
        ({"aud": ["other", 1]}, "wrong_audience"),
        ({"aud": []}, "missing_claim"),
        ({"jti": None}, "missing_claim"),
        ({"iss": "someone-else"}, "wrong_issuer"),
    ],
)
def test_payloads_with_wrong_types_are_refused(over: dict[str, Any], expected: str) -> None:
    key = keys.generate(NOW)
    header = json.dumps({"alg": "EdDSA", "kid": key.kid})
    token = sign(key, header, claims_json(**over))
    assert reason(Fake(key).verifier(), token) == expected


# -- the cache -------------------------------------------------------------------------------


def test_a_cached_token_is_refused_at_its_exp_like_a_fresh_one() -> None:
    key = keys.generate(NOW)
    fake = Fake(key)
    now = [NOW]
    verifier = TokenVerifier(
        audience="mailstore", fetch_jwks=fake.fetch, clock=lambda: now[0], monotonic=lambda: 0.0
    )
    token = mint(key, ttl=timedelta(minutes=5))
    first = verifier.verify(token)
    assert verifier.verify(token) is first  # the cached answer
    now[0] = first.expires_at - timedelta(microseconds=1)
    assert verifier.verify(token) is first
    now[0] = first.expires_at
    assert reason(verifier, token) == "expired"
    now[0] = NOW  # the clock moved back: the token is verified afresh, not trusted blindly
    assert verifier.verify(token) == first


def test_a_cached_token_stops_verifying_when_its_key_is_no_longer_published() -> None:
    key = keys.generate(NOW)
    fake = Fake(key)
    verifier = fake.verifier(max_age=60, min_refresh_interval=0)
    token = mint(key)
    verifier.verify(token)
    fake.published = [keys.generate(NOW)]  # `lockbox keys retire`
    fake.t = 30
    verifier.verify(token)  # within max_age: the documented bound, cached or not
    fake.t = 61
    assert reason(verifier, token) == "unknown_key"
    assert reason(verifier, token) == "unknown_key"  # and the entry is gone


def test_a_token_for_another_audience_is_not_answered_from_the_cache() -> None:
    key = keys.generate(NOW)
    verifier = Fake(key).verifier()
    token = mint(key)
    verifier.verify(token)
    verifier.audience = "calendar"
    assert reason(verifier, token) == "wrong_audience"


def test_the_cache_is_bounded_and_can_be_turned_off() -> None:
    key = keys.generate(NOW)
    verifier = Fake(key).verifier(cache_size=2)
    tokens = [mint(key) for _ in range(3)]
    answers = [verifier.verify(t) for t in tokens]
    assert len(verifier._cache) == 2
    assert verifier.verify(tokens[2]) is answers[2]
    assert verifier.verify(tokens[0]) is not answers[0]  # evicted, verified afresh
    verifier.clear_cache()
    assert len(verifier._cache) == 0
    off = Fake(key).verifier(cache_size=0)
    assert off.verify(tokens[0]) is not off.verify(tokens[0])
    with pytest.raises(ValueError, match="cache_size"):
        Fake(key).verifier(cache_size=-1)


def test_an_altered_token_is_never_answered_from_the_cache() -> None:
    key = keys.generate(NOW)
    verifier = Fake(key).verifier()
    token = mint(key)
    verifier.verify(token)
    head, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=="))
    payload["resources"] = ["*"]
    assert reason(verifier, f"{head}.{b64(json.dumps(payload).encode())}.{signature}") == (
        "bad_signature"
    )


# -- the scope fast path ---------------------------------------------------------------------

_NAME_CHARS = st.sampled_from(list("ab.-_@+:=~/*Z9 é%"))


@given(st.text(_NAME_CHARS, max_size=24))
def test_is_concrete_agrees_with_the_reference_rules(name: str) -> None:
    try:
        validate_resource(name, pattern=False)
        valid = True
    except ScopeError:
        valid = False
    assert is_concrete(name) is valid


@pytest.mark.parametrize(
    "name", ["a/./b", "a/../b", "..", ".", "a//b", "/a", "a/", "a/*", "a" * 513, ""]
)
def test_is_concrete_refuses_what_could_escape_a_pattern(name: str) -> None:
    assert not is_concrete(name)
