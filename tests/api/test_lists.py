"""List endpoints: every role sees exactly what the permission matrix lets it see (no more),
and cursor pagination walks every item once."""

from __future__ import annotations

from typing import Any

from lockbox.domain.permissions import Intent
from lockbox.domain.roles import Role
from lockbox.service import cases, requests, tenants
from tests.api.conftest import Api
from tests.api.matrix import ROLE_PRINCIPAL, covers

MAILBOX = "exchange/mailbox/alice@contoso.com"


def _ids(body: dict[str, Any]) -> set[str]:
    return {item["id"] for item in body["items"]}


def test_lists_show_exactly_what_the_matrix_allows(api: Api) -> None:
    w = api.world
    made: list[tuple[str, str, str]] = []  # (request id, tenant id, requester id)
    case_rows: list[tuple[str, str]] = []
    for tenant in (w.contoso, w.fabrikam):
        for engineer in (w.engineer, w.engineer2):
            case = cases.open_case(w.app, engineer, tenant=tenant, title="t")
            case_rows.append((case.id, tenant))
            rid = requests.submit_request(
                w.app,
                engineer,
                tenant=tenant,
                case_id=case.id,
                resources=[MAILBOX],
                access_level="read",
                justification="j",
            ).id
            made.append((rid, tenant, engineer.id))
    all_tenants = tenants.list_tenants(w.app, w.provider_admin)

    for role, name in ROLE_PRINCIPAL.items():
        p = getattr(w, name)
        want = {rid for rid, t, owner in made if covers(p, role, Intent.REQUEST_VIEW, t, owner)}
        got = _ids(api.call(name, "GET", "/v1/requests?limit=200").json())
        assert got == want, (role, got ^ want)

        want = {cid for cid, t in case_rows if covers(p, role, Intent.CASE_VIEW, t, None)}
        assert _ids(api.call(name, "GET", "/v1/cases").json()) == want, role

        want = {t.id for t in all_tenants if covers(p, role, Intent.TENANT_VIEW, t.id, None)}
        assert _ids(api.call(name, "GET", "/v1/tenants").json()) == want, role

        r = api.call(name, "GET", "/v1/audit/verify").json()
        want = {t.id for t in all_tenants if covers(p, role, Intent.AUDIT_VERIFY, t.id, None)}
        assert {i["tenant_id"] for i in r["items"]} == want, role

        users = api.call(name, "GET", "/v1/users").json()["items"]
        for user in users:
            assert covers(p, role, Intent.USER_VIEW, user["tenant_id"], None), (role, user)
        if role in (Role.TENANT_ADMIN, Role.MANAGER):
            assert users, role

        me = api.call(name, "GET", "/v1/me").json()
        assert me["id"] == p.id


def test_request_and_audit_pagination(api: Api) -> None:
    w = api.world
    case = cases.open_case(w.app, w.engineer, tenant="contoso", title="t")
    from datetime import timedelta

    ids = []
    for i in range(5):
        w.clock.advance(timedelta(seconds=1))
        ids.append(
            requests.submit_request(
                w.app,
                w.engineer,
                tenant="contoso",
                case_id=case.id,
                resources=[MAILBOX],
                access_level="read",
                justification=f"j{i}",
            ).id
        )
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = "/v1/requests?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = api.call("engineer", "GET", url).json()
        seen += [i["id"] for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids)) and pages == 3  # newest first, each once

    # Filters: by case, by creation time, by requester.
    after = api.call("engineer", "GET", "/v1/requests?limit=200").json()["items"][2]["created_at"]
    body = api.call("manager", "GET", "/v1/requests", params={"created_after": after}).json()
    assert [i["id"] for i in body["items"]] == list(reversed(ids))[:3]
    body = api.call("manager", "GET", "/v1/requests", params={"requester": "eddie@provider.test"})
    assert body.json()["items"] == []

    seqs: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = api.call("contoso_auditor", "GET", "/v1/tenants/contoso/audit", params=params).json()
        seqs += [i["seq"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 7
