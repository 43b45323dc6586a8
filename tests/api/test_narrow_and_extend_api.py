"""Narrower approvals and extensions over HTTP: the body fields, the answers, the refusals."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.integration.helpers import MAILBOX

CALENDAR = "exchange/calendar/alice@contoso.com"


def pending(api: Api, resources: list[str], level: str = "read_write") -> str:
    case_id = api.call(
        "engineer", "POST", "/v1/cases", json={"tenant": "contoso", "title": "t"}
    ).json()["id"]
    body = {
        "tenant": "contoso",
        "case_id": case_id,
        "resources": resources,
        "access_level": level,
        "justification": "fix the rules",
    }
    rid: str = api.call("engineer", "POST", "/v1/requests", json=body).json()["id"]
    api.call("manager", "POST", f"/v1/requests/{rid}/review", json={"decision": "approve"})
    return rid


def test_an_approval_granting_less_and_an_extension(api: Api) -> None:
    rid = pending(api, [MAILBOX, CALENDAR])
    wider = {"decision": "approve", "resources": ["exchange/*"]}
    r = api.call("contoso_approver", "POST", f"/v1/requests/{rid}/decide", json=wider)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "resources[0]"
    less = {
        "decision": "approve",
        "resources": [CALENDAR],
        "access_level": "read",
        "access_window_seconds": 3600,
    }
    r = api.call("contoso_approver", "POST", f"/v1/requests/{rid}/decide", json=less)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["state"] == "approved"
    assert got["resources"] == [CALENDAR] and got["access_level"] == "read"
    assert got["asked_resources"] == [MAILBOX, CALENDAR]
    assert got["asked_access_level"] == "read_write"
    assert got["access_window_seconds"] == 3600

    ask = {"by_seconds": 1800, "reason": "half an hour more"}
    r = api.call("contoso_approver", "POST", f"/v1/requests/{rid}/extend", json=ask)
    assert r.status_code == 403  # only the requester asks
    r = api.call("engineer", "POST", f"/v1/requests/{rid}/extend", json=ask)
    assert r.status_code == 200, r.text
    extension = r.json()["extension"]
    assert extension["by_seconds"] == 1800 and extension["reason"] == "half an hour more"
    assert extension["current_stage"] == "approvers"
    r = api.call(
        "contoso_approver2",
        "POST",
        f"/v1/requests/{rid}/extension/decide",
        json={"decision": "approve"},
        headers={"If-Match": r.headers["ETag"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["extension"] is None and r.json()["extensions"] == 1


def test_extension_input_is_checked(api: Api) -> None:
    rid = pending(api, [MAILBOX], level="read")
    api.call("contoso_approver", "POST", f"/v1/requests/{rid}/decide", json={"decision": "approve"})
    for body, field in [
        ({"by_seconds": 60, "reason": "x"}, "by_seconds"),
        ({"by_seconds": 3600}, "reason"),
        ({"by_seconds": 3600, "reason": "x", "extra": 1}, "extra"),
    ]:
        r = api.call("engineer", "POST", f"/v1/requests/{rid}/extend", json=body)
        assert r.status_code == 422, r.text
        assert field in [e["field"] for e in r.json()["errors"]]
    r = api.call(
        "contoso_approver",
        "POST",
        f"/v1/requests/{rid}/extension/decide",
        json={"decision": "approve"},
    )
    assert r.status_code == 409  # nothing is waiting


def test_a_scheduled_start_over_http(api: Api) -> None:
    from datetime import timedelta

    from lockbox.domain.instants import format_instant

    start = api.world.clock.now() + timedelta(days=1)
    case_id = api.call(
        "engineer", "POST", "/v1/cases", json={"tenant": "contoso", "title": "t"}
    ).json()["id"]
    body = {
        "tenant": "contoso",
        "case_id": case_id,
        "resources": [MAILBOX],
        "justification": "planned",
        "starts_at": format_instant(start),
    }
    r = api.call("engineer", "POST", "/v1/requests", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["starts_at"] == format_instant(start)
    rid = r.json()["id"]
    api.call("manager", "POST", f"/v1/requests/{rid}/review", json={"decision": "approve"})
    api.call("contoso_approver", "POST", f"/v1/requests/{rid}/decide", json={"decision": "approve"})
    r = api.call("engineer", "POST", "/v1/access/token", json={"request_id": rid})
    assert r.status_code == 409 and "access starts at" in r.json()["detail"]
    late = {**body, "starts_at": format_instant(start + timedelta(days=7))}
    r = api.call("engineer", "POST", "/v1/requests", json=late)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "starts_at"
