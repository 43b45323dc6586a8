"""Hostile input over HTTP: always a 4xx problem naming the field, never a 500 or a write.

PostgreSQL refuses NUL characters in text parameters, so every identifier that can
reach a query must be refused before it does; these run on both backends.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import pytest

from lockbox.sdk.verify import AccessClaims
from tests.access.helpers import ALICE, approved
from tests.api.conftest import Api

PROBLEM = "application/problem+json"
JSON = {"content-type": "application/json"}


def _assert_problem(r: Any, status: int, field: str | None = None) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    if field is not None:
        assert field in [e["field"] for e in r.json()["errors"]], r.text


def _cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def test_nul_in_ids_of_outbox_webhooks_and_access_is_422_not_500(api: Api) -> None:
    w = api.world
    req = approved(w)
    nul = "req_\x00"
    cases: list[tuple[str, str, str, dict[str, Any], str]] = [
        ("provider_admin", "GET", "/v1/outbox", {"params": {"tenant": nul}}, "tenant"),
        ("provider_admin", "GET", "/v1/outbox", {"params": {"request_id": nul}}, "request_id"),
        ("provider_admin", "GET", f"/v1/outbox/{quote(nul)}", {}, "message_id"),
        ("provider_admin", "POST", f"/v1/outbox/{quote(nul)}/retry", {}, "message_id"),
        ("contoso_admin", "GET", "/v1/webhooks", {"params": {"tenant": nul}}, "tenant"),
        ("contoso_admin", "GET", f"/v1/webhooks/{quote(nul)}", {}, "webhook_id"),
        ("engineer", "DELETE", f"/v1/webhooks/{quote(nul)}", {}, "webhook_id"),
        (
            "contoso_admin",
            "POST",
            "/v1/webhooks",
            {"json": {"url": "https://hooks.example/x", "tenant": nul}},
            "tenant",
        ),
        ("engineer", "POST", "/v1/access/token", {"json": {"request_id": nul}}, "request_id"),
        (
            "service",
            "POST",
            "/v1/access/check",
            {
                "json": {
                    "engineer": "erin@provider.test",
                    "tenant": "contoso",
                    "resource": ALICE,
                    "action": "read",
                    "request_id": nul,
                }
            },
            "request_id",
        ),
    ]
    for who, method, url, kw, field in cases:
        r = api.call(who, method, url, **kw)
        assert r.status_code == 422, (who, method, url, r.status_code, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
        assert any(e["field"].endswith(field) for e in r.json()["errors"]), (url, r.text)
    # The request is untouched and still usable.
    r = api.call("engineer", "POST", "/v1/access/token", json={"request_id": req.id})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("who", "url", "param"),
    [
        ("engineer", "/v1/requests", "created_after"),
        ("engineer", "/v1/requests", "created_before"),
        ("contoso_auditor", "/v1/tenants/contoso/audit", "since"),
        ("contoso_auditor", "/v1/tenants/contoso/audit", "until"),
    ],
)
def test_times_without_a_utc_equivalent_are_422(api: Api, who: str, url: str, param: str) -> None:
    # Valid ISO 8601 with a zone, but 23 hours past year 9999 in UTC: OverflowError.
    r = api.call(who, "GET", url, params={param: "9999-12-31T23:59:59-23:00"})
    _assert_problem(r, 422, param)
    r = api.call(who, "GET", url, params={param: "0001-01-01T00:00:00+23:00"})
    _assert_problem(r, 422, param)


@pytest.mark.parametrize("cursor", ["²", "¹²", "999999999999999999", "2147483648"])
def test_audit_cursor_odd_digits_and_overflow_are_422(api: Api, cursor: str) -> None:
    r = api.call("contoso_auditor", "GET", "/v1/tenants/contoso/audit", params={"cursor": cursor})
    _assert_problem(r, 422, "cursor")


@pytest.mark.parametrize(
    "parts",
    [
        ("2026-01-01T00:00:00", "req_x"),  # naive time: the store refuses it
        ("9999-12-31T23:59:59-23:00", "req_x"),  # no UTC equivalent
        ("2026-01-01T00:00:00+00:00", "req_\x00"),  # NUL for PostgreSQL
        ("2026-01-01T00:00:00+00:00", "x" * 300),
    ],
)
def test_forged_cursors_are_422(api: Api, parts: tuple[str, str]) -> None:
    cursor = _cursor(*parts)
    r = api.call("engineer", "GET", "/v1/requests", params={"cursor": cursor})
    _assert_problem(r, 422, "cursor")
    r = api.call("provider_admin", "GET", "/v1/outbox", params={"cursor": cursor})
    _assert_problem(r, 422, "cursor")


def test_duplicated_json_keys_are_refused_and_nothing_is_written(api: Api) -> None:
    body = b'{"tenant": "contoso", "title": "harmless", "title": "other"}'
    r = api.call("engineer", "POST", "/v1/cases", content=body, headers=JSON)
    _assert_problem(r, 422, "title")
    nested = b'{"decision": "approve", "comment": "ok", "decision": "deny"}'  # approve or deny?
    req = approved(api.world)
    r = api.call(
        "contoso_approver",
        "POST",
        f"/v1/requests/{req.id}/revoke",
        content=b'{"comment": "a", "comment": "b"}',
        headers=JSON,
    )
    _assert_problem(r, 422, "comment")
    r = api.call(
        "contoso_approver", "POST", f"/v1/requests/{req.id}/decide", content=nested, headers=JSON
    )
    _assert_problem(r, 422, "decision")
    titles = {c["title"] for c in api.call("engineer", "GET", "/v1/cases").json()["items"]}
    assert not titles & {"harmless", "other"}
    assert api.call("engineer", "GET", f"/v1/requests/{req.id}").json()["state"] == "approved"


def test_invalid_utf8_and_deep_nesting_are_422_naming_the_body(api: Api) -> None:
    r = api.call(
        "engineer",
        "POST",
        "/v1/cases",
        content=b'{"tenant": "contoso", "title": "\xff\xfe"}',
        headers=JSON,
    )
    _assert_problem(r, 422, "body")
    deep = b"[" * 30000 + b"]" * 30000
    r = api.call("engineer", "POST", "/v1/cases", content=deep, headers=JSON)
    assert r.status_code in (413, 422), r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    # Good JSON still goes through (the body is replayed to the handler intact).
    r = api.call("engineer", "POST", "/v1/cases", json={"tenant": "contoso", "title": "ok"})
    assert r.status_code == 201, r.text


def test_unknown_webhook_fields_are_refused_not_ignored(api: Api) -> None:
    r = api.call(
        "contoso_admin",
        "POST",
        "/v1/webhooks",
        json={"url": "https://hooks.example/x", "tenant_id": "fabrikam"},
    )
    _assert_problem(r, 422, "tenant_id")
    assert api.call("contoso_admin", "GET", "/v1/webhooks").json()["items"] == []


@pytest.mark.parametrize(
    "resource",
    [
        "exchange/mailbox/../../exchange/admin/keys",
        "exchange/mailbox/./alice",
        "exchange/mailbox//alice",
        "exchange/mailbox/*",
        "exchange/mailbox/al ice",
    ],
)
def test_sdk_token_check_refuses_path_tricks_under_a_wildcard(resource: str) -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    claims = AccessClaims(
        engineer="usr_x",
        tenant_id="ten_x",
        tenant="contoso",
        request_id="req_x",
        resources=("exchange/mailbox/*",),
        access_level="read",
        audience="lockbox-resource",
        issued_at=now,
        expires_at=now,
        jti="j",
        kid="k",
    )
    assert claims.denies("exchange/mailbox/alice@contoso.com", "read") is None
    assert claims.denies(resource, "read") == "out_of_scope"
