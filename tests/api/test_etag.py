"""ETag / If-Match on requests and policy: act on the version you saw, or get 412."""

from __future__ import annotations

from lockbox.service import cases, requests
from tests.api.conftest import Api

MAILBOX = "exchange/mailbox/alice@contoso.com"


def _pending(api: Api) -> str:
    w = api.world
    case = cases.open_case(w.app, w.engineer, tenant="contoso", title="c")
    return requests.submit_request(
        w.app,
        w.engineer,
        tenant="contoso",
        case_id=case.id,
        resources=[MAILBOX],
        access_level="read",
        justification="j",
    ).id


def test_if_match_on_request_actions(api: Api) -> None:
    rid = _pending(api)
    r = api.call("manager", "GET", f"/v1/requests/{rid}")
    seen = r.headers["etag"]
    assert seen == '"1"' and r.json()["version"] == 1

    # Someone else acts first: another manager reviews it.
    r = api.call("manager2", "POST", f"/v1/requests/{rid}/review", json={"decision": "approve"})
    assert r.status_code == 200 and r.headers["etag"] == '"2"'

    # Acting on the stale version is 412, names the current state and version, changes nothing.
    r = api.call(
        "manager",
        "POST",
        f"/v1/requests/{rid}/review",
        json={"decision": "reject"},
        headers={"If-Match": seen},
    )
    assert r.status_code == 412, r.text
    body = r.json()
    assert body["type"] == "urn:lockbox:problem:precondition_failed"
    assert body["state"] == "pending_approval" and body["version"] == 2
    assert api.call("manager", "GET", f"/v1/requests/{rid}").json()["version"] == 2

    # The current version works; a weak tag and * are accepted too.
    r = api.call(
        "contoso_approver",
        "POST",
        f"/v1/requests/{rid}/decide",
        json={"decision": "approve"},
        headers={"If-Match": 'W/"2"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved" and r.headers["etag"] == '"3"'
    r = api.call(
        "contoso_approver", "POST", f"/v1/requests/{rid}/revoke", headers={"If-Match": "*"}
    )
    assert r.status_code == 200 and r.json()["state"] == "revoked"

    # Without If-Match, a wrong state is 409 (not 412) with the current state.
    r = api.call("contoso_approver", "POST", f"/v1/requests/{rid}/revoke")
    assert r.status_code == 409
    assert r.json()["type"] == "urn:lockbox:problem:invalid_state"
    assert r.json()["state"] == "revoked"


def test_if_match_on_end_actions_and_stale_cancel(api: Api) -> None:
    rid = _pending(api)
    r = api.call("engineer", "POST", f"/v1/requests/{rid}/cancel", headers={"If-Match": '"7"'})
    assert r.status_code == 412
    r = api.call("engineer", "POST", f"/v1/requests/{rid}/cancel", headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["state"] == "canceled"


def test_if_match_on_policy(api: Api) -> None:
    r = api.call("contoso_admin", "GET", "/v1/tenants/contoso/policy")
    seen = r.headers["etag"]
    r = api.call(
        "contoso_admin",
        "PATCH",
        "/v1/tenants/contoso/policy",
        json={"required_approvals": 2},
        headers={"If-Match": seen},
    )
    assert r.status_code == 200 and r.json()["required_approvals"] == 2
    assert r.headers["etag"] != seen
    r = api.call(
        "contoso_admin",
        "PATCH",
        "/v1/tenants/contoso/policy",
        json={"required_approvals": 3},
        headers={"If-Match": seen},
    )
    assert r.status_code == 412
    assert (
        api.call("contoso_admin", "GET", "/v1/tenants/contoso/policy").json()["required_approvals"]
        == 2
    )
