"""The reference scenario through HTTP only, role by role, on both databases."""

from __future__ import annotations

from datetime import timedelta

from tests.api.conftest import Api

MAILBOX = "exchange/mailbox/alice@contoso.com"


def test_reference_scenario_over_http(api: Api) -> None:
    # The engineer opens a case and asks for read access to one mailbox.
    r = api.call("engineer", "POST", "/v1/cases", json={"tenant": "contoso", "title": "Mailbox"})
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    assert r.headers["location"] == f"/v1/cases/{case_id}"
    r = api.call(
        "engineer",
        "POST",
        "/v1/requests",
        json={
            "tenant": "contoso",
            "case_id": case_id,
            "resources": [MAILBOX],
            "access_level": "read",
            "justification": "Inspect the sync state",
        },
    )
    assert r.status_code == 201, r.text
    req = r.json()
    rid = req["id"]
    assert req["state"] == "pending_review"
    assert r.headers["etag"] == '"1"'

    # The customer cannot see it yet in a way that lets them act: decide is 409 (wrong state).
    r = api.call(
        "contoso_approver", "POST", f"/v1/requests/{rid}/decide", json={"decision": "approve"}
    )
    assert r.status_code == 409
    assert r.json()["state"] == "pending_review"

    # The manager reviews it (with If-Match of the version they read).
    r = api.call(
        "manager",
        "POST",
        f"/v1/requests/{rid}/review",
        json={"decision": "approve", "comment": "scope ok"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "pending_approval"
    assert r.headers["etag"] == '"2"'

    # Fabrikam's approver does not even learn that the request exists.
    r = api.call("fabrikam_approver", "GET", f"/v1/requests/{rid}")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")

    # Contoso's approver approves; the engineer has access for 4 hours.
    r = api.call("contoso_approver", "GET", "/v1/requests?state=pending_approval")
    assert [i["id"] for i in r.json()["items"]] == [rid]
    r = api.call(
        "contoso_approver",
        "POST",
        f"/v1/requests/{rid}/decide",
        json={"decision": "approve", "comment": "for today"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "approved"
    assert body["access_deadline"] is not None

    # The engineer sees it approved, then closes it when the work is done.
    r = api.call("engineer", "GET", f"/v1/requests/{rid}")
    assert r.json()["state"] == "approved"
    r = api.call("engineer", "POST", f"/v1/requests/{rid}/close", json={"comment": "fixed"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "closed"
    assert r.json()["history"] is None  # an action answers what it wrote; history is opt-in
    r = api.call("engineer", "GET", f"/v1/requests/{rid}?history=true")
    ops = [h["operation"] for h in r.json()["history"]]
    assert ops == ["request.submit", "request.review_approve", "request.approve", "request.close"]

    # The auditor reads, exports and verifies the log.
    r = api.call("contoso_auditor", "GET", "/v1/tenants/contoso/audit?operation=request.")
    assert [i["operation"] for i in r.json()["items"]] == ops
    r = api.call("contoso_auditor", "GET", "/v1/tenants/contoso/audit/export?format=csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines()[0].startswith("seq,id,at")
    assert "request.close" in r.text
    r = api.call("contoso_auditor", "GET", "/v1/tenants/contoso/audit/verify")
    assert r.status_code == 200 and r.json()["ok"] is True


def test_lockbox_off_revoke_and_expiry(api: Api) -> None:
    w = api.world
    r = api.call("contoso_admin", "PATCH", "/v1/tenants/contoso/policy", json={"enabled": False})
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is False
    case_id = api.call(
        "engineer", "POST", "/v1/cases", json={"tenant": "contoso", "title": "t"}
    ).json()["id"]
    body = {"tenant": "contoso", "case_id": case_id, "resources": [MAILBOX], "justification": "x"}
    rid = api.call("engineer", "POST", "/v1/requests", json=body).json()["id"]
    r = api.call("manager", "POST", f"/v1/requests/{rid}/review", json={"decision": "approve"})
    assert r.json()["state"] == "approved"  # lockbox off: no customer step
    r = api.call("contoso_approver", "POST", f"/v1/requests/{rid}/revoke", json={"comment": "no"})
    assert r.status_code == 200 and r.json()["state"] == "revoked"

    rid2 = api.call("engineer", "POST", "/v1/requests", json=body).json()["id"]
    w.clock.advance(timedelta(hours=13))  # past the 12h review window
    r = api.call("engineer", "GET", f"/v1/requests/{rid2}")
    assert r.json()["state"] == "expired"
    r = api.call("manager", "POST", f"/v1/requests/{rid2}/review", json={"decision": "approve"})
    assert r.status_code == 409
    assert r.json()["type"] == "urn:lockbox:problem:deadline_passed"
    assert r.json()["state"] == "expired"
