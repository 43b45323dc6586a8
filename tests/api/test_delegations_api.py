"""Delegations over HTTP: create, list, revoke; who may; the refusals name the field."""

from __future__ import annotations

from datetime import timedelta

from lockbox.domain.instants import format_instant
from tests.api.conftest import Api


def test_delegations_through_the_api(api: Api) -> None:
    until = format_instant(api.world.clock.now() + timedelta(days=3))
    body = {"to": "quinn@contoso.test", "ends_at": until, "reason": "on holiday"}
    r = api.call("contoso_approver", "POST", "/v1/delegations", json=body)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["from_user"] == api.world.contoso_approver.id
    assert made["to_user"] == api.world.contoso_approver2.id
    assert made["ends_at"] == until and made["revoked_at"] is None

    listed = api.call("contoso_admin", "GET", "/v1/delegations").json()["items"]
    assert [d["id"] for d in listed] == [made["id"]]
    assert api.call("fabrikam_admin", "GET", "/v1/delegations").json()["items"] == []
    assert api.call("engineer", "GET", "/v1/delegations").status_code == 403

    r = api.call("fabrikam_admin", "POST", f"/v1/delegations/{made['id']}/revoke")
    assert r.status_code == 404
    r = api.call("contoso_approver2", "POST", f"/v1/delegations/{made['id']}/revoke")
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert api.call("contoso_admin", "GET", "/v1/delegations").json()["items"] == []


def test_bad_delegations_are_refused_naming_the_field(api: Api) -> None:
    now = api.world.clock.now()
    for body, field in [
        ({"to": "quinn@contoso.test", "ends_at": "tomorrow"}, "ends_at"),
        (
            {"to": "quinn@contoso.test", "ends_at": format_instant(now + timedelta(days=100))},
            "ends_at",
        ),
        ({"to": "audrey@contoso.test", "ends_at": format_instant(now + timedelta(days=1))}, "to"),
        ({"to": "paula@contoso.test", "ends_at": format_instant(now + timedelta(days=1))}, "to"),
        ({"ends_at": format_instant(now + timedelta(days=1))}, "to"),
    ]:
        r = api.call("contoso_approver", "POST", "/v1/delegations", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in [e["field"] for e in r.json()["errors"]], (body, r.json())
