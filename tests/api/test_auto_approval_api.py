"""Auto-approval rules and four eyes over HTTP: 201/200 when a change applies, 202 with the
pending change (and its ``Location``) when it waits for a second tenant admin."""

from __future__ import annotations

from typing import Any

import pytest

from lockbox.api.schemas import PendingChangeOut
from lockbox.service import auto_approval
from tests.api.conftest import Api, auth, token_for

RULES = "/v1/tenants/contoso/auto-approval-rules"
CHANGES = "/v1/tenants/contoso/pending-changes"
RULE: dict[str, Any] = {
    "name": "Mailboxes for incidents",
    "resources": ["exchange/mailbox/*"],
    "categories": ["incident"],
    "hours": "00:00-24:00",
    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    "time_zone": "Europe/Berlin",
    "max_access_window_seconds": 1800,
}
MAILBOX = "exchange/mailbox/alice@contoso.com"


def second_admin(api: Api) -> dict[str, str]:
    ivan = api.world.user("ivan@contoso.test", ["tenant_admin"], "contoso")
    return auth(token_for(api.world.app, ivan))


def submit_and_review(api: Api, category: str = "incident") -> dict[str, Any]:
    case = api.call("engineer", "POST", "/v1/cases", json={"tenant": "contoso", "title": "x"})
    assert case.status_code == 201, case.text
    body = {
        "tenant": "contoso",
        "case_id": case.json()["id"],
        "resources": [MAILBOX],
        "justification": "the mailbox does not sync",
        "category": category,
    }
    created = api.call("engineer", "POST", "/v1/requests", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["category"] == category
    rid = created.json()["id"]
    reviewed = api.call(
        "manager", "POST", f"/v1/requests/{rid}/review", json={"decision": "approve"}
    )
    assert reviewed.status_code == 200, reviewed.text
    found: dict[str, Any] = reviewed.json()
    return found


def test_a_rule_written_read_changed_and_deleted(api: Api) -> None:
    created = api.call("contoso_admin", "POST", RULES, json=RULE)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["state"] == "active" and rule["enabled"] is True
    assert rule["hours"] == "00:00-24:00" and rule["access_level"] == "read"
    assert created.headers["Location"] == f"{RULES}/{rule['id']}"
    assert created.headers["ETag"] == '"1"'
    got = api.call("contoso_auditor", "GET", created.headers["Location"])
    assert got.status_code == 200 and got.json() == rule
    listed = api.call("contoso_admin", "GET", RULES)
    assert [r["id"] for r in listed.json()["items"]] == [rule["id"]]

    done = submit_and_review(api)
    assert done["state"] == "approved"
    history = api.call("engineer", "GET", f"/v1/requests/{done['id']}?history=true").json()
    forwarded = history["history"][-1]
    assert forwarded["details"]["auto_approved_by_rule"] == rule["id"]

    stale = api.call(
        "contoso_admin",
        "PATCH",
        f"{RULES}/{rule['id']}",
        json={"hours": "09:00-17:00"},
        headers={"If-Match": '"7"'},
    )
    assert stale.status_code == 412
    narrowed = api.call(
        "contoso_admin",
        "PATCH",
        f"{RULES}/{rule['id']}",
        json={"hours": "09:00-17:00", "enabled": False},
        headers={"If-Match": '"1"'},
    )
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["state"] == "disabled" and narrowed.headers["ETag"] == '"2"'
    assert submit_and_review(api)["state"] == "pending_approval"
    deleted = api.call("contoso_admin", "DELETE", f"{RULES}/{rule['id']}")
    assert deleted.status_code == 204
    again = api.call("contoso_admin", "DELETE", f"{RULES}/{rule['id']}")
    assert again.status_code == 409 and again.json()["state"] == "deleted"
    assert api.call("contoso_admin", "GET", RULES).json()["items"] == []
    ended = api.call("contoso_admin", "GET", RULES, params={"include_ended": "true"})
    assert [r["state"] for r in ended.json()["items"]] == ["deleted"]


def test_who_may_see_and_write_rules(api: Api) -> None:
    assert api.call("contoso_approver", "GET", RULES).status_code == 403
    assert api.call("contoso_auditor", "POST", RULES, json=RULE).status_code == 403
    assert api.call("fabrikam_admin", "GET", RULES).status_code == 404
    assert api.call("manager", "GET", RULES).status_code == 403
    assert api.call("contoso_auditor", "GET", CHANGES).status_code == 200
    assert api.call("contoso_approver", "GET", CHANGES).status_code == 403
    rule = api.call("contoso_admin", "POST", RULES, json=RULE).json()
    foreign = f"/v1/tenants/fabrikam/auto-approval-rules/{rule['id']}"
    assert api.call("fabrikam_admin", "GET", foreign).status_code == 404
    assert api.call("contoso_admin", "GET", f"{RULES}/aar_short").status_code == 422


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "localtime"}, "time_zone"),
        ({"hours": "17:00-17:00"}, "hours"),
        ({"hours": "9-5"}, "hours"),
        ({"categories": ["fun"]}, "categories[0]"),
        ({"categories": []}, "categories"),
        ({"days": []}, "days"),
        ({"resources": ["a/*/b"]}, "resources[0]"),
        ({"max_access_window_seconds": 60}, "max_access_window_seconds"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_rule_is_422_naming_the_field(api: Api, change: dict[str, Any], field: str) -> None:
    r = api.call("contoso_admin", "POST", RULES, json={**RULE, **change})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]


def test_a_new_rule_waits_for_a_second_admin(api: Api) -> None:
    ivan = second_admin(api)
    proposed = api.call("contoso_admin", "POST", RULES, json=RULE)
    assert proposed.status_code == 202, proposed.text
    change = proposed.json()
    PendingChangeOut.model_validate(change)  # the 202 answer is the documented schema
    assert change["kind"] == "auto_rule.create" and change["state"] == "pending"
    assert change["reasons"] == ["writes a new auto-approval rule"]
    location = proposed.headers["Location"]
    assert location == f"{CHANGES}/{change['id']}"
    assert api.client.get(location, headers=ivan).json() == change
    rule_id = change["payload"]["rule_id"]
    assert api.call("contoso_admin", "GET", f"{RULES}/{rule_id}").json()["state"] == "pending"
    assert submit_and_review(api)["state"] == "pending_approval"

    own = api.call("contoso_admin", "POST", f"{location}/approve")
    assert own.status_code == 403
    assert own.json()["type"] == "urn:lockbox:problem:separation_of_duties"
    approved = api.client.post(f"{location}/approve", headers=ivan, json={"comment": "ok"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "applied" and approved.json()["comment"] == "ok"
    assert api.call("contoso_admin", "GET", f"{RULES}/{rule_id}").json()["state"] == "active"
    assert submit_and_review(api)["state"] == "approved"
    again = api.client.post(f"{location}/reject", headers=ivan)
    assert again.status_code == 409 and again.json()["state"] == "applied"
    pending = api.call("contoso_admin", "GET", CHANGES, params={"state": "pending"})
    assert pending.json()["items"] == []


def test_widening_the_policy_answers_202_and_changes_nothing_yet(api: Api) -> None:
    ivan = second_admin(api)
    policy = "/v1/tenants/contoso/policy"
    widened = api.call("contoso_admin", "PATCH", policy, json={"enabled": False})
    assert widened.status_code == 202, widened.text
    change = widened.json()
    assert change["kind"] == "policy.change"
    assert change["reasons"] == ["turns the lockbox off"]
    assert change["payload"]["changes"] == {"enabled": {"from": True, "to": False}}
    assert api.call("contoso_admin", "GET", policy).json()["enabled"] is True
    tightened = api.call("contoso_admin", "PATCH", policy, json={"required_approvals": 2})
    assert tightened.status_code == 200 and tightened.json()["required_approvals"] == 2
    superseded = api.client.get(widened.headers["Location"], headers=ivan).json()
    assert superseded["state"] == "superseded"
    again = api.call("contoso_admin", "PATCH", policy, json={"enabled": False})
    assert again.status_code == 202
    withdrawn_by_other = api.client.post(f"{again.headers['Location']}/withdraw", headers=ivan)
    assert withdrawn_by_other.status_code == 403
    applied = api.client.post(f"{again.headers['Location']}/approve", headers=ivan)
    assert applied.status_code == 200 and applied.json()["state"] == "applied"
    assert api.call("contoso_admin", "GET", policy).json()["enabled"] is False
    states = [c["state"] for c in api.call("contoso_auditor", "GET", CHANGES).json()["items"]]
    assert sorted(states) == ["applied", "superseded"]


def test_loosening_a_rule_waits_and_withdrawing_it_changes_nothing(api: Api) -> None:
    rule = api.call("contoso_admin", "POST", RULES, json=RULE).json()
    ivan = second_admin(api)
    looser = api.call(
        "contoso_admin",
        "PATCH",
        f"{RULES}/{rule['id']}",
        json={"access_level": "read_write", "max_access_window_seconds": 3600},
    )
    assert looser.status_code == 202, looser.text
    assert looser.json()["reasons"] == ["approves write access", "grants a longer access window"]
    current = api.client.get(f"{RULES}/{rule['id']}", headers=ivan).json()
    assert current["access_level"] == "read" and current["pending_changes"] == [looser.json()["id"]]
    withdrawn = api.call("contoso_admin", "POST", f"{looser.headers['Location']}/withdraw")
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"
    assert api.client.get(f"{RULES}/{rule['id']}", headers=ivan).json()["version"] == 1


def test_requests_carry_their_category(api: Api) -> None:
    done = submit_and_review(api, category="maintenance")
    assert done["category"] == "maintenance"
    case = api.call("engineer", "POST", "/v1/cases", json={"tenant": "contoso", "title": "x"})
    bad = api.call(
        "engineer",
        "POST",
        "/v1/requests",
        json={
            "tenant": "contoso",
            "case_id": case.json()["id"],
            "resources": [MAILBOX],
            "justification": "x",
            "category": "fun",
        },
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "category"


def test_the_service_view_and_the_api_agree(api: Api) -> None:
    rule = api.call("contoso_admin", "POST", RULES, json=RULE).json()
    stored = auto_approval.get_rule(api.world.app, api.world.contoso_admin, "contoso", rule["id"])
    assert auto_approval.view(stored) == rule
