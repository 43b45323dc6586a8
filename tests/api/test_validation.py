"""Bad input never gets a 500: every class of bad input is a 4xx problem naming the field,
and nothing is written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from lockbox.api.limits import MAX_BODY_BYTES
from lockbox.service import cases, requests
from tests.api.conftest import Api
from tests.api.matrix import Ctx

PROBLEM = "application/problem+json"
MAILBOX = "exchange/mailbox/alice@contoso.com"


def _fields(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body.get("errors", [])]


def test_bad_input_is_4xx_with_field_and_writes_nothing(api: Api) -> None:
    w = api.world
    case = cases.open_case(w.app, w.engineer, tenant="contoso", title="c")
    req = requests.submit_request(
        w.app,
        w.engineer,
        tenant="contoso",
        case_id=case.id,
        resources=[MAILBOX],
        access_level="read",
        justification="j",
    )
    good = {
        "tenant": "contoso",
        "case_id": case.id,
        "resources": [MAILBOX],
        "access_level": "read",
        "justification": "why",
    }

    def submit(**changes: Any) -> dict[str, Any]:
        body = dict(good)
        body.update(changes)
        return {k: v for k, v in body.items() if v is not ...}

    # (who, method, url, kwargs, status, field that must be named or None)
    cases_: list[tuple[str, str, str, dict[str, Any], int, str | None]] = [
        # malformed JSON and wrong top-level shapes
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"content": b'{"tenant": "contoso",', "headers": {"content-type": "application/json"}},
            422,
            "body",
        ),
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"content": b"[]", "headers": {"content-type": "application/json"}},
            422,
            None,
        ),
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"content": b"", "headers": {"content-type": "application/json"}},
            422,
            None,
        ),
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"content": b'"x"', "headers": {"content-type": "application/json"}},
            422,
            None,
        ),
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}},
            422,
            None,
        ),
        # wrong types
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"json": submit(justification=123)},
            422,
            "justification",
        ),
        ("engineer", "POST", "/v1/requests", {"json": submit(resources=MAILBOX)}, 422, "resources"),
        ("engineer", "POST", "/v1/requests", {"json": submit(resources=[1])}, 422, "resources[0]"),
        (
            "contoso_admin",
            "PATCH",
            "/v1/tenants/contoso/policy",
            {"json": {"required_approvals": "2"}},
            422,
            "required_approvals",
        ),
        (
            "contoso_admin",
            "PATCH",
            "/v1/tenants/contoso/policy",
            {"json": {"enabled": "yes"}},
            422,
            "enabled",
        ),
        (
            "contoso_admin",
            "PATCH",
            "/v1/tenants/contoso/policy",
            {"json": {"required_approvals": True}},
            422,
            "required_approvals",
        ),
        (
            "manager",
            "POST",
            f"/v1/requests/{req.id}/review",
            {"json": {"decision": "approve", "comment": ["x"]}},
            422,
            "comment",
        ),
        # missing required fields
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"json": submit(justification=...)},
            422,
            "justification",
        ),
        ("manager", "POST", f"/v1/requests/{req.id}/review", {"json": {}}, 422, "decision"),
        # unknown fields
        ("engineer", "POST", "/v1/requests", {"json": submit(state="approved")}, 422, "state"),
        (
            "contoso_admin",
            "PATCH",
            "/v1/tenants/contoso/policy",
            {"json": {"lockbox": "off"}},
            422,
            "lockbox",
        ),
        (
            "manager",
            "POST",
            f"/v1/requests/{req.id}/review",
            {"json": {"decision": "approve", "approve": True}},
            422,
            "approve",
        ),
        # bad enum values
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"json": submit(access_level="admin")},
            422,
            "access_level",
        ),
        (
            "manager",
            "POST",
            f"/v1/requests/{req.id}/review",
            {"json": {"decision": "deny"}},
            422,
            "decision",
        ),
        (
            "contoso_approver",
            "POST",
            f"/v1/requests/{req.id}/decide",
            {"json": {"decision": "reject"}},
            422,
            "decision",
        ),
        ("engineer", "GET", "/v1/requests?state=bogus", {}, 422, "state[0]"),
        ("engineer", "GET", "/v1/cases?status=half", {}, 422, "status"),
        (
            "contoso_auditor",
            "GET",
            "/v1/tenants/contoso/audit/export?format=xml",
            {},
            422,
            "format",
        ),
        (
            "provider_admin",
            "POST",
            "/v1/users",
            {"json": {"email": "a@b.test", "roles": ["root"]}},
            422,
            "roles[0]",
        ),
        # over-long and out-of-range values
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"json": submit(justification="x" * 4001)},
            422,
            "justification",
        ),
        (
            "manager",
            "POST",
            f"/v1/requests/{req.id}/review",
            {"json": {"decision": "approve", "comment": "c" * 2001}},
            422,
            "comment",
        ),
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"json": submit(resources=[f"r/{i}" for i in range(51)])},
            422,
            "resources",
        ),
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"json": submit(resources=["a" * 513])},
            422,
            "resources[0]",
        ),
        (
            "engineer",
            "POST",
            "/v1/cases",
            {"json": {"tenant": "contoso", "title": "t" * 201}},
            422,
            "title",
        ),
        (
            "contoso_admin",
            "PATCH",
            "/v1/tenants/contoso/policy",
            {"json": {"approval_window_seconds": 60}},
            422,
            "approval_window_seconds",
        ),
        (
            "contoso_admin",
            "PATCH",
            "/v1/tenants/contoso/policy",
            {"json": {"required_approvals": 11}},
            422,
            "required_approvals",
        ),
        (
            "contoso_admin",
            "PATCH",
            "/v1/tenants/contoso/policy",
            {"json": {"notify_emails": ["not-an-address"]}},
            422,
            "notify_emails[0]",
        ),
        # values only the domain can judge (passed through, still a named field)
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"json": submit(resources=["a//b"])},
            422,
            "resources[0]",
        ),
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"json": submit(resources=["*"])},
            422,
            "resources[0]",
        ),
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"json": submit(justification="   ")},
            422,
            "justification",
        ),
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"json": submit(justification="a\x1bb")},
            422,
            "justification",
        ),
        (
            "provider_admin",
            "POST",
            "/v1/tenants",
            {"json": {"slug": "Bad Slug", "name": "x"}},
            422,
            "slug",
        ),
        (
            "provider_admin",
            "POST",
            "/v1/users",
            {"json": {"email": "nope", "roles": ["engineer"]}},
            422,
            "email",
        ),
        (
            "provider_admin",
            "POST",
            "/v1/users",
            {"json": {"email": "a@b.test", "roles": ["engineer"], "password": "short"}},
            422,
            "password",
        ),
        (
            "engineer",
            "POST",
            "/v1/tokens",
            {"json": {"expires_at": "2020-01-01T00:00:00Z"}},
            422,
            "expires_at",
        ),
        (
            "engineer",
            "POST",
            "/v1/tokens",
            {"json": {"expires_at": "2030-01-01T00:00:00"}},
            422,
            "expires_at",
        ),
        # NULs and control characters that would break the database
        ("engineer", "POST", "/v1/requests", {"json": submit(case_id="case_\x00")}, 422, "case_id"),
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"json": submit(justification="a\x00b")},
            422,
            "justification",
        ),
        (
            "provider_admin",
            "POST",
            "/v1/users",
            {"json": {"email": "a\x00@b.test", "roles": ["engineer"]}},
            422,
            "email",
        ),
        (
            "engineer",
            "POST",
            "/v1/requests",
            {"content": b'{"tenant": "\\ud800"}', "headers": {"content-type": "application/json"}},
            422,
            None,
        ),
        # bad cursors, filters and time values
        ("engineer", "GET", "/v1/requests?cursor=not%20a%20cursor", {}, 422, "cursor"),
        ("engineer", "GET", "/v1/requests?cursor=eyJhIjoxfQ", {}, 422, "cursor"),
        ("engineer", "GET", "/v1/requests?cursor=WyJ4IiwgInkiXQ", {}, 422, "cursor"),
        ("engineer", "GET", "/v1/requests?limit=0", {}, 422, "limit"),
        ("engineer", "GET", "/v1/requests?limit=many", {}, 422, "limit"),
        ("engineer", "GET", "/v1/requests?created_after=yesterday", {}, 422, "created_after"),
        (
            "engineer",
            "GET",
            "/v1/requests?created_after=2026-01-01T00:00:00",
            {},
            422,
            "created_after",
        ),
        ("engineer", "GET", "/v1/requests?requester=%00", {}, 422, "requester"),
        ("contoso_auditor", "GET", "/v1/tenants/contoso/audit?cursor=-1", {}, 422, "cursor"),
        ("contoso_auditor", "GET", "/v1/tenants/contoso/audit?cursor=abc", {}, 422, "cursor"),
        ("contoso_auditor", "GET", "/v1/tenants/contoso/audit?limit=100000", {}, 422, "limit"),
        # bad ids in the path
        ("engineer", "GET", "/v1/requests/%00", {}, 422, "request_id"),
        ("engineer", "GET", "/v1/requests/" + "r" * 200, {}, 422, "request_id"),
        # ids of the right characters but the wrong shape are malformed, not missing
        ("engineer", "GET", "/v1/requests/req_doesnotexist", {}, 422, "request_id"),
        ("engineer", "GET", "/v1/requests/case_" + "z" * 26, {}, 422, "request_id"),
        ("engineer", "POST", "/v1/cases/case_short/close", {}, 422, "case_id"),
        ("provider_admin", "GET", "/v1/tenants/Not_A_Slug", {}, 422, "tenant"),
        ("engineer", "GET", "/v1/requests/req_" + "z" * 26, {}, 404, None),
        ("engineer", "GET", "/v1/requests/..%2F..%2Fetc", {}, 404, None),
        ("engineer", "GET", "/v1/tenants/%20", {}, 422, "tenant"),
        ("engineer", "POST", "/v1/cases/case_x%0A/close", {}, 422, "case_id"),
        ("provider_admin", "GET", "/v1/users/a%00b", {}, 422, "user"),
        # If-Match that is not an entity tag
        (
            "manager",
            "POST",
            f"/v1/requests/{req.id}/review",
            {"json": {"decision": "approve"}, "headers": {"If-Match": "version 1"}},
            422,
            "If-Match",
        ),
        # wrong method, unknown route
        ("engineer", "DELETE", f"/v1/requests/{req.id}", {}, 405, None),
        ("engineer", "GET", "/v1/nothing-here", {}, 404, None),
    ]

    ctx = Ctx(w)
    failures: list[str] = []
    for who, method, url, kwargs, status, field in cases_:
        before = ctx.fingerprint()
        kw = dict(kwargs)
        headers = {**api.as_(who), **kw.pop("headers", {})}
        r = api.client.request(method, url, headers=headers, **kw)
        label = f"{method} {url} {json.dumps(kwargs.get('json'))[:80]}"
        if r.status_code != status:
            failures.append(f"{label}: {r.status_code}, want {status}: {r.text[:300]}")
            continue
        if not r.headers["content-type"].startswith(PROBLEM):
            failures.append(f"{label}: not problem+json")
            continue
        body = r.json()
        if body["status"] != status or not body["type"].startswith("urn:lockbox:problem:"):
            failures.append(f"{label}: bad problem body {body}")
        if field is not None and field not in _fields(body):
            failures.append(f"{label}: field {field!r} not named in {body}")
        if ctx.fingerprint() != before:
            failures.append(f"{label}: the database changed")
    assert not failures, "\n".join(failures)


def test_oversized_bodies_are_413(api: Api) -> None:
    ctx = Ctx(api.world)
    before = ctx.fingerprint()
    big = {"tenant": "contoso", "title": "t", "reference": "x" * (MAX_BODY_BYTES + 10)}
    r = api.call("engineer", "POST", "/v1/cases", json=big)
    assert r.status_code == 413
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"] == "urn:lockbox:problem:payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        yield b'{"tenant": "contoso", "title": "t", "reference": "'
        for _ in range(MAX_BODY_BYTES // 1000 + 2):
            yield b"x" * 1000
        yield b'"}'

    r = api.call(
        "engineer",
        "POST",
        "/v1/cases",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert ctx.fingerprint() == before
