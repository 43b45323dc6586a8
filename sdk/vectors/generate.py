"""Write the SDK's JSON test vectors: ``python sdk/vectors/generate.py [--check]``.

The vectors are the *specification* a Lockbox SDK in any language must meet, so
the expected answers below are written out by hand, case by case; nothing here
asks the Python SDK what it would decide (that would make the tests circular).
Tests then check the Python SDK, and the server's own rules, against the files.

Everything is deterministic: the Ed25519 test keys come from fixed seeds (test
keys, never used anywhere else), every time is fixed, and tokens are assembled
byte by byte (compact JSON, base64url without padding) instead of through a JWT
library whose output could change between versions. Ed25519 signatures are
deterministic, so the same seeds always give the same tokens. ``--check`` exits
non-zero when the committed files differ from what this script produces.

Deliberately absent: resource names containing a newline. The server's segment
expression (``^…$`` with ``re.match``) accepts one trailing ``\\n`` per segment,
which no rule intends; pinning either answer here would either enshrine that or
fail the server, so it is left for a fix of both copies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HERE = Path(__file__).resolve().parent
FORMAT = 1

# -- shared helpers ------------------------------------------------------------------------


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _epoch(text: str) -> int:
    return int(_instant(text).timestamp())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")


# -- scopes.json ---------------------------------------------------------------------------

MAILBOX = "exchange/mailbox/alice@contoso.com"
LONG_OK = "a" * 200 + "/" + "b" * 200 + "/" + "c" * 110  # 512 characters, segments <= 200


def _name(name: object, concrete: bool, pattern: bool, note: str) -> dict[str, Any]:
    return {"name": name, "concrete": concrete, "pattern": pattern, "note": note}


def _scope(granted: list[str], resource: str, covered: bool, note: str) -> dict[str, Any]:
    return {"granted": granted, "resource": resource, "covered": covered, "note": note}


def scopes() -> dict[str, Any]:
    names = [
        _name(MAILBOX, True, True, "an ordinary concrete name"),
        _name("exchange/mailbox/*", False, True, "'*' as the whole last segment, after a prefix"),
        _name("Exchange/Mailbox/Alice@Contoso.com", True, True, "names are case-sensitive text"),
        _name("a/b+c=d:e~f.g-h@i_j", True, True, "every allowed punctuation character"),
        _name("a/.hidden/...", True, True, "dots are allowed except as '.' or '..' alone"),
        _name("a", True, True, "a single segment"),
        _name(LONG_OK, True, True, "512 characters: the longest name"),
        _name(LONG_OK + "c", False, False, "513 characters: too long"),
        _name("a/" + "x" * 200, True, True, "a 200-character segment"),
        _name("a/" + "x" * 201, False, False, "a 201-character segment"),
        _name("", False, False, "empty"),
        _name("*", False, False, "'*' needs a prefix"),
        _name("exchange/*/alice", False, False, "'*' only as the last segment"),
        _name("exchange/mailbox/*/x", False, False, "'*' only as the last segment"),
        _name("exchange/mailbox/a*", False, False, "'*' only as a whole segment"),
        _name("exchange/mailbox/**", False, False, "'**' is not a segment wildcard"),
        _name("exchange/mailbox/*/", False, False, "'*' then an empty segment"),
        _name("exchange/mailbox/", False, False, "trailing slash: an empty last segment"),
        _name("/exchange/mailbox", False, False, "leading slash: an empty first segment"),
        _name("exchange//mailbox", False, False, "empty segment"),
        _name("exchange/./mailbox", False, False, "'.' segment"),
        _name("exchange/mailbox/..", False, False, "'..' segment"),
        _name("exchange/mailbox/../../secret", False, False, "'..' segments"),
        _name(".", False, False, "'.' alone"),
        _name("exchange/mail box", False, False, "space"),
        _name("exchange/mail\tbox", False, False, "tab"),
        _name("exchange/mail_box", True, True, "underscore is allowed"),
        _name("exchange/mailbox\n", False, False, "a trailing newline is not allowed"),
        _name("exchange/mail\nbox/x", False, False, "a newline inside a segment"),
        _name("exchange/mail%2Fbox", False, False, "percent-encoding is not decoded"),
        _name("exchange\\mailbox", False, False, "backslash"),
        _name("exchange/mailbox/älice@contoso.com", False, False, "non-ASCII letter"),
        _name("exchange/mailbox/ａlice", False, False, "fullwidth letter"),
        _name("exchange/mailbox/alice\u200b", False, False, "zero-width space"),
        _name("exchange/mailbox/bad name\u202e@contoso.com", False, False, "RTL override"),
        _name("exchange/mailbox/\u212aelvin", False, False, "Kelvin sign (not 'K')"),
        _name("exchange/mailbox/١٢٣", False, False, "non-ASCII digits"),
        _name(None, False, False, "not a string"),
        _name(42, False, False, "not a string"),
    ]
    cases = [
        _scope([MAILBOX], MAILBOX, True, "exact name"),
        _scope([MAILBOX], MAILBOX + "/", False, "trailing slash is another (invalid) name"),
        _scope([MAILBOX], MAILBOX + "/inbox", False, "an exact grant covers no children"),
        _scope([MAILBOX], "exchange/mailbox/alice@contoso.co", False, "a prefix is not a match"),
        _scope([MAILBOX], MAILBOX + ".evil", False, "a longer name is not a match"),
        _scope([MAILBOX], "exchange/mailbox/Alice@contoso.com", False, "case-sensitive"),
        _scope([MAILBOX], "Exchange/mailbox/alice@contoso.com", False, "case-sensitive"),
        _scope(["a/b/*"], "a/b/x", True, "one segment below the prefix"),
        _scope(["a/b/*"], "a/b/x/y/z", True, "any depth below the prefix"),
        _scope(["a/b/*"], "a/b/...", True, "'...' is an ordinary segment"),
        _scope(["a/b/*"], "a/bx", False, "the prefix keeps its slash: not a/bx"),
        _scope(["a/b/*"], "a/b", False, "the prefix itself is not below it"),
        _scope(["a/b/*"], "a/b/", False, "trailing slash: empty segment"),
        _scope(["a/b/*"], "a/b/x/", False, "trailing slash: empty segment"),
        _scope(["a/b/*"], "a/b//x", False, "empty segment"),
        _scope(["a/b/*"], "a/b/*", False, "a literal '*' is no concrete name"),
        _scope(["a/b/*"], "a/b/x*", False, "'*' inside a concrete segment"),
        _scope(["a/b/*"], "a/b/../secret", False, "'..' would escape the prefix"),
        _scope(["a/b/*"], "a/b/./x", False, "'.' segment"),
        _scope(["a/b/*"], "a/b/x/..", False, "'..' segment"),
        _scope(["a/b/*"], "a/c/x", False, "another prefix"),
        _scope(["a/b/*"], "A/b/x", False, "case-sensitive prefix"),
        _scope(["a/*"], "a/" + "x" * 200, True, "a 200-character segment"),
        _scope(["a/*"], "a/" + "x" * 201, False, "a 201-character segment"),
        _scope(["exchange/mailbox/*"], "exchange/mailbox/älice", False, "non-ASCII"),
        _scope(["exchange/mailbox/*"], "exchange/mailbox/alice\u200b", False, "zero-width"),
        _scope(["exchange/mailbox/*"], "exchange/mailbox/a b", False, "space"),
        _scope(["*"], "anything", False, "'*' alone is no wildcard"),
        _scope(["*"], "*", False, "'*' is no concrete name"),
        _scope(["a/*/c"], "a/b/c", False, "a '*' inside a name is no wildcard"),
        _scope(["a/b*"], "a/bc", False, "'*' only as a whole segment"),
        _scope(["a/x", "b/*"], "b/y", True, "any grant may cover"),
        _scope(["a/x", "b/*"], "a/x", True, "any grant may cover"),
        _scope(["a/x", "b/*"], "c", False, "none covers"),
        _scope([], "a", False, "nothing granted"),
    ]
    return {
        "format": FORMAT,
        "description": (
            "Resource names and the scope check. 'names': whether each name is a valid "
            "concrete name (no '*') and a valid pattern (may end in a whole '*' segment "
            "after a prefix). 'scopes': whether 'resource' is covered by any of 'granted': "
            "it is when 'resource' is a valid concrete name AND some granted entry equals "
            "it or ends in '/*' and is a proper prefix of it (the prefix keeps its slash)."
        ),
        "rules": {
            "max_length": 512,
            "segment": (
                "1 to 200 of the ASCII characters A-Z a-z 0-9 . _ @ + : = ~ -; "
                "not '.' or '..'; '*' only as a whole last segment of a pattern, after a prefix"
            ),
            "separator": "/",
        },
        "names": names,
        "scopes": cases,
    }


# -- levels.json ---------------------------------------------------------------------------


def levels() -> dict[str, Any]:
    table = [
        ("read", "read", True, "read permits reading"),
        ("read", "write", False, "read does not permit writing"),
        ("read_write", "read", True, "read_write permits reading"),
        ("read_write", "write", True, "read_write permits writing"),
        ("admin", "read", False, "unknown level: refused"),
        ("READ", "read", False, "levels are lower-case words"),
        ("read", "delete", False, "unknown action: refused"),
        ("read_write", "Write", False, "actions are lower-case words"),
        ("", "read", False, "empty level: refused"),
    ]
    return {
        "format": FORMAT,
        "description": (
            "Access level x action -> allowed. Known levels: read, read_write; known "
            "actions: read, write. An unknown level or action is never allowed (the SDK "
            "answers 'level_too_low')."
        ),
        "levels": [
            {"level": level, "action": action, "allowed": allowed, "note": note}
            for level, action, allowed, note in table
        ],
    }


# -- decisions.json ------------------------------------------------------------------------

NOW = "2026-01-05T09:00:00Z"
ERIN, ERIN_EMAIL = "usr_erin", "erin@provider.test"
OMAR, OMAR_EMAIL = "usr_omar", "omar@provider.test"
CONTOSO, FABRIKAM = ("ten_contoso", "contoso"), ("ten_fabrikam", "fabrikam")
ALICE, BOB = MAILBOX, "exchange/mailbox/bob@contoso.com"
CAROL = "exchange/mailbox/carol@contoso.com"
SAM, SAM_EMAIL = "usr_sam", "sam@provider.test"


def _grant(
    request_id: str,
    engineer: tuple[str, str],
    tenant: tuple[str, str],
    resources: list[str],
    level: str,
    deadline: str | None,
    starts: str | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "request_id": request_id,
        "tenant_id": tenant[0],
        "tenant": tenant[1],
        "engineer_id": engineer[0],
        "engineer_email": engineer[1],
        "resources": resources,
        "access_level": level,
        "access_deadline": deadline,
    }
    if starts is not None:
        data["access_starts_at"] = starts
    return {"kind": "grant", "data": data}


def _end(request_id: str, reason: str) -> dict[str, Any]:
    return {"kind": "end", "data": {"request_id": request_id, "reason": reason}}


def _ask(
    name: str,
    engineer: str,
    tenant: str,
    resource: str,
    action: str,
    allowed: bool,
    reason: str,
    *,
    request_id: str | None = None,
    now: str = NOW,
    granted_by: str | None = None,
) -> dict[str, Any]:
    if allowed and granted_by is None:
        raise ValueError(f"{name}: an allowed case names the grant that allows it")
    return {
        "name": name,
        "question": {
            "engineer": engineer,
            "tenant": tenant,
            "resource": resource,
            "action": action,
            "request_id": request_id,
            "now": now,
        },
        "expected": {"allowed": allowed, "reason": reason, "request_id": granted_by},
    }


def decisions() -> dict[str, Any]:
    erin = (ERIN, "Erin@Provider.Test")  # e-mails are matched case-insensitively
    events = [
        _grant("req_alice", erin, CONTOSO, [ALICE], "read", "2026-01-05T10:00:00Z"),
        _grant("req_bob", (ERIN, ERIN_EMAIL), CONTOSO, [BOB], "read_write", "2026-01-05T09:30:00Z"),
        _grant(
            "req_fabrikam",
            (ERIN, ERIN_EMAIL),
            FABRIKAM,
            ["exchange/mailbox/*"],
            "read_write",
            "2026-01-05T11:00:00Z",
        ),
        _grant("req_files", (OMAR, OMAR_EMAIL), CONTOSO, ["files/share/*"], "read", None),
        _grant(
            "req_carol", (OMAR, OMAR_EMAIL), CONTOSO, [CAROL], "read_write", "2026-01-05T08:00:00Z"
        ),
        _grant(
            "req_closed", (OMAR, OMAR_EMAIL), CONTOSO, [ALICE], "read_write", "2026-01-05T12:00:00Z"
        ),
        _end("req_closed", "closed"),
        _grant(
            "req_revoked", (OMAR, OMAR_EMAIL), FABRIKAM, [ALICE], "read", "2026-01-05T12:00:00Z"
        ),
        _end("req_revoked", "revoked"),
        _end("req_never_seen", "expired"),
        _grant(
            "req_planned",
            (SAM, SAM_EMAIL),
            CONTOSO,
            [ALICE],
            "read",
            "2026-01-07T02:00:00Z",
            starts="2026-01-06T22:00:00Z",
        ),
    ]
    cases = [
        _ask("by id", ERIN, "contoso", ALICE, "read", True, "approved", granted_by="req_alice"),
        _ask(
            "a path trick under a prefix grant is out of scope",
            ERIN,
            "fabrikam",
            "exchange/mailbox/../../secrets",
            "read",
            False,
            "out_of_scope",
        ),
        _ask(
            "by e-mail, any case",
            "ERIN@provider.test",
            "contoso",
            ALICE,
            "read",
            True,
            "approved",
            granted_by="req_alice",
        ),
        _ask(
            "by tenant id",
            ERIN,
            "ten_contoso",
            ALICE,
            "read",
            True,
            "approved",
            granted_by="req_alice",
        ),
        _ask(
            "naming the request",
            ERIN,
            "contoso",
            ALICE,
            "read",
            True,
            "approved",
            request_id="req_alice",
            granted_by="req_alice",
        ),
        _ask(
            "write with read_write",
            ERIN,
            "contoso",
            BOB,
            "write",
            True,
            "approved",
            granted_by="req_bob",
        ),
        _ask(
            "wildcard grant",
            ERIN,
            "fabrikam",
            "exchange/mailbox/x@fabrikam.com",
            "write",
            True,
            "approved",
            granted_by="req_fabrikam",
        ),
        _ask(
            "no deadline",
            OMAR,
            "contoso",
            "files/share/q3.xlsx",
            "read",
            True,
            "approved",
            now="2030-01-01T00:00:00Z",
            granted_by="req_files",
        ),
        _ask(
            "just before the deadline",
            ERIN,
            "contoso",
            ALICE,
            "read",
            True,
            "approved",
            now="2026-01-05T09:59:59.999000Z",
            granted_by="req_alice",
        ),
        _ask("unknown engineer", "usr_nobody", "contoso", ALICE, "read", False, "no_request"),
        _ask("engineer ids are exact", "usr_erin2", "contoso", ALICE, "read", False, "no_request"),
        _ask("another tenant", ERIN, "northwind", ALICE, "read", False, "no_request"),
        _ask("tenant is exact", ERIN, "Contoso", ALICE, "read", False, "no_request"),
        _ask(
            "unknown request",
            ERIN,
            "contoso",
            ALICE,
            "read",
            False,
            "no_request",
            request_id="req_unknown",
        ),
        _ask(
            "request of another engineer",
            OMAR,
            "contoso",
            ALICE,
            "read",
            False,
            "no_request",
            request_id="req_alice",
        ),
        _ask(
            "request of another tenant",
            ERIN,
            "fabrikam",
            ALICE,
            "read",
            False,
            "no_request",
            request_id="req_alice",
        ),
        _ask(
            "closed request",
            OMAR,
            "contoso",
            ALICE,
            "read",
            False,
            "closed",
            request_id="req_closed",
        ),
        _ask(
            "revoked request",
            OMAR,
            "fabrikam",
            ALICE,
            "read",
            False,
            "revoked",
            request_id="req_revoked",
        ),
        _ask(
            "ended before it was seen",
            OMAR,
            "contoso",
            ALICE,
            "read",
            False,
            "expired",
            request_id="req_never_seen",
        ),
        _ask("an ended grant is gone", OMAR, "contoso", ALICE, "read", False, "out_of_scope"),
        _ask(
            "at the deadline",
            ERIN,
            "contoso",
            ALICE,
            "read",
            False,
            "expired",
            now="2026-01-05T10:00:00Z",
        ),
        _ask(
            "deadline passed, request named",
            OMAR,
            "contoso",
            CAROL,
            "read",
            False,
            "expired",
            request_id="req_carol",
        ),
        _ask(
            "every grant past its deadline",
            ERIN,
            "contoso",
            ALICE,
            "read",
            False,
            "expired",
            now="2026-01-05T10:30:00Z",
        ),
        _ask("resource not granted", ERIN, "contoso", CAROL, "read", False, "out_of_scope"),
        _ask(
            "resource not granted, request named",
            ERIN,
            "contoso",
            BOB,
            "read",
            False,
            "out_of_scope",
            request_id="req_alice",
        ),
        _ask(
            "out_of_scope outranks expired",
            ERIN,
            "contoso",
            BOB,
            "read",
            False,
            "out_of_scope",
            now="2026-01-05T09:45:00Z",
        ),
        _ask(
            "another grant still allows",
            ERIN,
            "contoso",
            ALICE,
            "read",
            True,
            "approved",
            now="2026-01-05T09:45:00Z",
            granted_by="req_alice",
        ),
        _ask(
            "out_of_scope outranks expired (other engineer)",
            OMAR,
            "contoso",
            CAROL,
            "read",
            False,
            "out_of_scope",
        ),
        _ask("write with read", ERIN, "contoso", ALICE, "write", False, "level_too_low"),
        _ask(
            "level_too_low outranks out_of_scope",
            ERIN,
            "contoso",
            ALICE,
            "write",
            False,
            "level_too_low",
        ),
        _ask("unknown action", ERIN, "contoso", ALICE, "delete", False, "level_too_low"),
        _ask(
            "a scheduled start that has not come yet",
            SAM,
            "contoso",
            ALICE,
            "read",
            False,
            "not_started",
        ),
        _ask(
            "at the scheduled start",
            SAM,
            "contoso",
            ALICE,
            "read",
            True,
            "approved",
            now="2026-01-06T22:00:00Z",
            granted_by="req_planned",
        ),
    ]
    return {
        "format": FORMAT,
        "description": (
            "The local grant table (feed mode). Apply 'events' in order, as the grant feed "
            "delivers them: 'grant' adds or replaces a grant by request_id, 'end' removes it "
            "and remembers why. Then answer each question. Without a request_id: consider the "
            "engineer's grants on the tenant (engineer = engineer_id exactly, or "
            "engineer_email case-insensitively; tenant = tenant_id or tenant slug exactly); "
            "none -> no_request; one allowing -> approved; otherwise the first reason found "
            "in the order level_too_low, out_of_scope, expired. With a request_id: that grant "
            "only; unknown -> the reason it ended, else no_request; not this engineer's or "
            "tenant's -> no_request. For one grant: now >= access_deadline -> expired; "
            "now < access_starts_at (a scheduled start, when the event has one) -> "
            "not_started; resource not covered -> out_of_scope; level does not allow the "
            "action (or either "
            "is unknown) -> level_too_low; else approved. Times are RFC 3339 UTC. "
            "'expected.request_id' is the approving grant (null when refused)."
        ),
        "events": events,
        "cases": cases,
    }


# -- tokens.json ---------------------------------------------------------------------------

ISSUER = "lockbox"
AUDIENCE = "lockbox-resource"
LEEWAY = 30
ALGORITHM = "EdDSA"
TOKEN_TYPE = "lockbox-access+jwt"
REQUIRED_CLAIMS = [
    "iss",
    "sub",
    "aud",
    "tenant_id",
    "request_id",
    "resources",
    "access_level",
    "iat",
    "nbf",
    "exp",
    "jti",
]
T0 = _epoch(NOW)


def _key(label: str) -> Ed25519PrivateKey:
    """A fixed test key: the seed is a hash of a label, so nothing random is involved."""
    seed = hashlib.sha256(f"lockbox-sdk test vectors: {label}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def _public_x(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _b64url(raw)


def _jwk(key: Ed25519PrivateKey, kid: str) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _public_x(key),
        "kid": kid,
        "alg": ALGORITHM,
        "use": "sig",
    }


KEY_1, KEY_2, FORGER = _key("key 1"), _key("key 2"), _key("forger")
KID_1, KID_2 = "key_vectors_1", "key_vectors_2"


def _header(kid: str | None = KID_1, alg: str = ALGORITHM) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": alg, "typ": TOKEN_TYPE}
    if kid is not None:
        header["kid"] = kid
    return header


def _claims(**changes: Any) -> dict[str, Any]:
    """The claims Lockbox mints (same names and order), with ``changes`` applied;
    a change to ``None`` removes the claim."""
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": ERIN,
        "aud": AUDIENCE,
        "tenant_id": "ten_contoso",
        "tenant": "contoso",
        "request_id": "req_alice",
        "resources": [ALICE, "exchange/archive/*"],
        "access_level": "read",
        "iat": T0 - 60,
        "nbf": T0 - 60,
        "exp": T0 + 240,
        "jti": "jti_vectors_1",
    }
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def _sign(header: dict[str, Any], claims: dict[str, Any], key: Ed25519PrivateKey) -> str:
    signing_input = _b64url(_compact(header)) + "." + _b64url(_compact(claims))
    return signing_input + "." + _b64url(key.sign(signing_input.encode("ascii")))


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = _b64url(_compact(header)) + "." + _b64url(_compact(claims))
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + _b64url(mac)


def _expected_claims(claims: dict[str, Any], kid: str) -> dict[str, Any]:
    aud = claims["aud"]
    return {
        "engineer": claims["sub"],
        "tenant_id": claims["tenant_id"],
        "tenant": claims.get("tenant") or None,
        "request_id": claims["request_id"],
        "resources": claims["resources"],
        "access_level": claims["access_level"],
        "audience": aud if isinstance(aud, str) else AUDIENCE,
        "issued_at": claims["iat"],
        "expires_at": claims["exp"],
        "jti": claims["jti"],
        "kid": kid,
    }


def _check(resource: str, action: str, denies: str | None) -> dict[str, Any]:
    return {"resource": resource, "action": action, "denies": denies}


def tokens() -> dict[str, Any]:
    valid: list[dict[str, Any]] = []

    def ok(
        name: str,
        claims: dict[str, Any],
        *,
        kid: str,
        key: Ed25519PrivateKey,
        now: int = T0,
        checks: list[dict[str, Any]] | None = None,
    ) -> None:
        valid.append(
            {
                "name": name,
                "token": _sign(_header(kid), claims, key),
                "now": now,
                "claims": _expected_claims(claims, kid),
                "checks": checks or [],
            }
        )

    ok(
        "a read token",
        _claims(),
        kid=KID_1,
        key=KEY_1,
        checks=[
            _check(ALICE, "read", None),
            _check(ALICE, "write", "level_too_low"),
            _check(BOB, "read", "out_of_scope"),
            _check("exchange/archive/2025/q4", "read", None),
            _check("exchange/archive", "read", "out_of_scope"),
            _check("exchange/archivex", "read", "out_of_scope"),
            _check("exchange/archive/../mailbox/bob@contoso.com", "read", "out_of_scope"),
            _check("exchange/archive/*", "read", "out_of_scope"),
            _check("exchange/archive//x", "read", "out_of_scope"),
            _check(ALICE, "delete", "level_too_low"),
        ],
    )
    ok(
        "a read_write token under the second key, without the optional tenant slug",
        _claims(
            tenant=None,
            access_level="read_write",
            jti="jti_vectors_2",
            request_id="req_bob",
            resources=[BOB],
        ),
        kid=KID_2,
        key=KEY_2,
        checks=[
            _check(BOB, "write", None),
            _check(BOB, "read", None),
            _check(ALICE, "read", "out_of_scope"),
        ],
    )
    ok("one second before expiry", _claims(), kid=KID_1, key=KEY_1, now=T0 + 239)
    ok(
        "not yet valid, but within the leeway",
        _claims(nbf=T0 + LEEWAY, iat=T0 + LEEWAY),
        kid=KID_1,
        key=KEY_1,
    )
    ok(
        "an audience list naming this service",
        _claims(aud=["filestore", AUDIENCE]),
        kid=KID_1,
        key=KEY_1,
    )
    ok("unknown extra claims are ignored", _claims(extra="ignored"), kid=KID_1, key=KEY_1)

    good = _sign(_header(), _claims(), KEY_1)
    head, _payload, signature = good.split(".")
    tampered = head + "." + _b64url(_compact(_claims(access_level="read_write"))) + "." + signature

    invalid: list[tuple[str, str, str, int]] = [
        (
            "signed by another key under a published kid",
            _sign(_header(), _claims(), FORGER),
            "bad_signature",
            T0,
        ),
        ("payload changed after signing", tampered, "bad_signature", T0),
        ("signature cut off", head + "." + _payload + ".", "bad_signature", T0),
        (
            "a kid that is not published",
            _sign(_header("key_unknown"), _claims(), FORGER),
            "unknown_key",
            T0,
        ),
        (
            "the kid of a non-Ed25519 key in the set",
            _sign(_header("key_rsa"), _claims(), FORGER),
            "unknown_key",
            T0,
        ),
        (
            "the kid of a broken key in the set",
            _sign(_header("key_broken"), _claims(), FORGER),
            "unknown_key",
            T0,
        ),
        ("no kid", _sign(_header(None), _claims(), KEY_1), "unknown_key", T0),
        ("wrong audience", _sign(_header(), _claims(aud="filestore"), KEY_1), "wrong_audience", T0),
        (
            "audience list without this service",
            _sign(_header(), _claims(aud=["filestore"]), KEY_1),
            "wrong_audience",
            T0,
        ),
        ("wrong issuer", _sign(_header(), _claims(iss="lockbox-evil"), KEY_1), "wrong_issuer", T0),
        (
            "alg none",
            _b64url(_compact(_header(alg="none"))) + "." + _payload + ".",
            "unsupported_algorithm",
            T0,
        ),
        (
            "alg HS256 keyed with the public key",
            _hs256(_header(alg="HS256"), _claims(), _public_x(KEY_1).encode("ascii")),
            "unsupported_algorithm",
            T0,
        ),
        ("alg ES256", _sign(_header(alg="ES256"), _claims(), KEY_1), "unsupported_algorithm", T0),
        ("expired: now is exp", _sign(_header(), _claims(), KEY_1), "expired", T0 + 240),
        ("expired long ago", _sign(_header(), _claims(exp=T0 - 3600), KEY_1), "expired", T0),
        ("expiry forgives no skew", _sign(_header(), _claims(exp=T0 - 1), KEY_1), "expired", T0),
        (
            "not yet valid beyond the leeway",
            _sign(_header(), _claims(nbf=T0 + LEEWAY + 1), KEY_1),
            "not_yet_valid",
            T0,
        ),
        (
            "a required claim is null",
            _sign(_header(), {**_claims(), "request_id": None}, KEY_1),
            "missing_claim",
            T0,
        ),
        (
            "resources is not a list",
            _sign(_header(), _claims(resources=ALICE), KEY_1),
            "malformed",
            T0,
        ),
        (
            "resources holds a non-string",
            _sign(_header(), _claims(resources=[ALICE, 7]), KEY_1),
            "malformed",
            T0,
        ),
        ("exp is not a number", _sign(_header(), _claims(exp="soon"), KEY_1), "malformed", T0),
        ("not a JWT", "not-a-token", "malformed", T0),
        ("empty", "", "malformed", T0),
        (
            "header is not JSON",
            _b64url(b"{not json") + "." + _payload + "." + signature,
            "malformed",
            T0,
        ),
        ("longer than 8192 characters", good + "A" * (8193 - len(good)), "malformed", T0),
    ]
    for claim in REQUIRED_CLAIMS:
        invalid.append(
            (
                f"missing {claim}",
                _sign(_header(), _claims(**{claim: None}), KEY_1),
                "missing_claim",
                T0,
            )
        )
    jwks = {
        "keys": [
            _jwk(KEY_1, KID_1),
            _jwk(KEY_2, KID_2),
            {"kty": "RSA", "kid": "key_rsa", "n": "AQAB", "e": "AQAB", "alg": "RS256"},
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": "AQAB",
                "kid": "key_broken",
                "alg": ALGORITHM,
            },
        ]
    }
    return {
        "format": FORMAT,
        "description": (
            "Access tokens. Verify each token against 'jwks' (fetched, not retried), with "
            "the given issuer and audience, at the instant 'now' (Unix seconds): only "
            "alg EdDSA (Ed25519) with a published OKP key named by the header's kid; all of "
            "'required_claims' present and not null; iss equal to the issuer; aud equal to "
            "the audience or a list containing it; expired when now >= exp (no leeway); not "
            "yet valid when now + leeway_seconds < nbf. Keys of other types or that do not "
            "parse are skipped. 'valid' tokens yield 'claims' (times in Unix seconds), and "
            "'checks' say what the claims allow: denies is null (allowed), 'out_of_scope' "
            "(the resource is no valid concrete name or no granted entry covers it, see "
            "scopes.json) or 'level_too_low' (see levels.json). 'invalid' tokens are refused "
            "with 'reason'. The signing seeds are sha256('lockbox-sdk test vectors: key 1' / "
            "'key 2' / 'forger'): test keys only."
        ),
        "algorithm": ALGORITHM,
        "token_type": TOKEN_TYPE,
        "required_claims": REQUIRED_CLAIMS,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "leeway_seconds": LEEWAY,
        "jwks": jwks,
        "valid": valid,
        "invalid": [
            {"name": name, "token": token, "now": now, "reason": reason}
            for name, token, reason, now in invalid
        ],
    }


# -- files ---------------------------------------------------------------------------------

BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "scopes.json": scopes,
    "levels.json": levels,
    "decisions.json": decisions,
    "tokens.json": tokens,
}


def render(data: dict[str, Any]) -> str:
    """Stable text: two-space indent, ASCII only (invisible characters stay visible as
    escapes), a final newline."""
    return json.dumps(data, indent=2, ensure_ascii=True) + "\n"


def build() -> dict[str, str]:
    """File name -> the exact text this script writes."""
    return {name: render(builder()) for name, builder in BUILDERS.items()}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, text in build().items():
        path = HERE / name
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run sdk/vectors/generate.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
