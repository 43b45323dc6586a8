"""Approval stages over HTTP: the policy takes stages and groups, a request shows its
stages, the one waiting, and who may still approve it, by name."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.integration.helpers import MAILBOX

STAGES = [
    {"key": "approvers", "name": "Approvers", "roles": ["approver"]},
    {
        "key": "security",
        "name": "Security officer",
        "group": "security",
        "condition": {"access_level": "read_write"},
    },
]


def test_stages_through_the_api(api: Api) -> None:
    body = {"groups": {"security": ["INES@contoso.test"]}, "stages": STAGES}
    r = api.call("contoso_admin", "PATCH", "/v1/tenants/contoso/policy", json=body)
    assert r.status_code == 200, r.text
    policy = r.json()
    assert [s["key"] for s in policy["stages"]] == ["approvers", "security"]
    assert policy["stages"][1]["condition"] == {"access_level": "read_write"}
    ines = api.world.contoso_admin.id
    assert policy["groups"] == {"security": [ines]}

    case_id = api.call(
        "engineer", "POST", "/v1/cases", json={"tenant": "contoso", "title": "t"}
    ).json()["id"]
    request = {
        "tenant": "contoso",
        "case_id": case_id,
        "resources": [MAILBOX],
        "access_level": "read_write",
        "justification": "fix the mailbox rules",
    }
    rid = api.call("engineer", "POST", "/v1/requests", json=request).json()["id"]
    api.call("manager", "POST", f"/v1/requests/{rid}/review", json={"decision": "approve"})
    r = api.call(
        "contoso_approver", "POST", f"/v1/requests/{rid}/decide", json={"decision": "approve"}
    )
    assert r.status_code == 200, r.text

    shown = api.call("contoso_auditor", "GET", f"/v1/requests/{rid}").json()
    assert shown["state"] == "pending_approval"
    assert shown["current_stage"] == "security"
    assert [(s["key"], s["met"]) for s in shown["stages"]] == [
        ("approvers", True),
        ("security", False),
    ]
    assert shown["stages"][0]["approved_by"] == [api.world.contoso_approver.id]
    assert shown["can_approve"] == [ines]
    assert shown["people"][ines]["email"] == "ines@contoso.test"

    r = api.call(
        "contoso_approver2", "POST", f"/v1/requests/{rid}/decide", json={"decision": "approve"}
    )
    assert r.status_code == 403
    assert "Security officer stage" in r.json()["detail"]


def test_bad_stages_are_refused_naming_the_field(api: Api) -> None:
    for body, field in [
        ({"stages": [{"key": "x", "required": 11}]}, "stages[0].required"),
        ({"stages": [{"key": "x", "group": "missing"}]}, "stages[0].group"),
        ({"groups": {"g": ["someone@fabrikam.test"]}}, "groups.g[0]"),
        ({"stages": [{"key": "x", "roles": ["auditor"]}]}, "stages[0].roles[0]"),
    ]:
        r = api.call("contoso_admin", "PATCH", "/v1/tenants/contoso/policy", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in [e["field"] for e in r.json()["errors"]], (body, r.json())
    assert api.call("contoso_admin", "GET", "/v1/tenants/contoso/policy").json()["stages"] == []
