"""The trust routes (issue #12) over HTTP: published audit keys, checkpoints, verification
against held checkpoints, the signed export, receipts, and the provider's actions a tenant
may see."""

from __future__ import annotations

import json

from lockbox.domain.audit import PROVIDER_CHAIN
from lockbox.domain.signing import b64, unb64
from lockbox.service import requests
from lockbox.verify import checkpoint as open_checkpoint
from lockbox.verify import load_keys, receipt, verify_export
from tests.api.conftest import Api
from tests.integration.helpers import approved
from tests.integration.trust_helpers import cut_tail


def test_the_audit_keys_need_no_token(api: Api) -> None:
    r = api.call(None, "GET", "/.well-known/lockbox-audit-keys.json")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-cache"
    doc = r.json()
    assert doc["type"] == "lockbox.audit-keys" and doc["keys"]
    assert set(load_keys(doc)) == {k["kid"] for k in doc["keys"]}


def test_checkpoints_list_verify_and_refuse(api: Api) -> None:
    w = api.world
    req = approved(w)
    url = "/v1/tenants/contoso/audit/checkpoints"
    page = api.call("contoso_auditor", "GET", url, params={"limit": 2})
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["latest"]["reason"] == "decision" and len(body["items"]) == 2
    assert body["next_cursor"]
    more = api.call("contoso_auditor", "GET", url, params={"cursor": body["next_cursor"]})
    assert more.status_code == 200 and more.json()["items"]
    held = body["latest"]["document"]
    keys = load_keys(api.call(None, "GET", "/.well-known/lockbox-audit-keys.json").json())
    assert open_checkpoint(held, keys).tenant == w.contoso
    for who, status in (
        ("engineer", 403),
        ("contoso_approver", 403),
        ("fabrikam_auditor", 404),
        ("provider_admin", 200),
    ):
        assert api.call(who, "GET", url).status_code == status, who

    verify = "/v1/tenants/contoso/audit/verify"
    ok = api.call("contoso_auditor", "POST", verify, json={"checkpoints": [held]})
    assert ok.status_code == 200 and ok.json()["ok"] is True, ok.text
    requests.close_request(w.app, w.engineer, req.id)
    cut_tail(w.app, w.contoso, held["checkpoint"]["seq"] - 1)
    broken = api.call("contoso_auditor", "POST", verify, json={"checkpoints": [held]})
    assert broken.status_code == 200 and broken.json()["ok"] is False
    assert "removed from the end" in broken.json()["problem"]
    assert api.call("contoso_auditor", "GET", verify).json()["ok"] is True  # the head lies

    bad = json.loads(json.dumps(held))
    signature = bytearray(unb64(bad["signature"]))
    signature[5] ^= 0xFF
    bad["signature"] = b64(bytes(signature))
    refused = api.call("contoso_auditor", "POST", verify, json={"checkpoints": [bad]})
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["errors"][0]["field"] == "checkpoints[0]"
    assert "signature does not verify" in problem["errors"][0]["message"]
    empty = api.call("contoso_auditor", "POST", verify, json={"checkpoints": []})
    assert empty.status_code == 422
    issued = api.call("contoso_auditor", "POST", url)
    assert issued.status_code == 201 and issued.json()["reason"] == "manual"


def test_the_signed_export_verifies_independently(api: Api) -> None:
    approved(api.world)
    r = api.call("contoso_auditor", "GET", "/v1/tenants/contoso/audit/signed-export")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    keys = load_keys(api.call(None, "GET", "/.well-known/lockbox-audit-keys.json").json())
    report = verify_export(r.text.splitlines(), keys)
    assert report.ok and report.records == len(r.text.splitlines()) - 1
    assert api.call("engineer", "GET", "/v1/tenants/contoso/audit/signed-export").status_code == 403


def test_receipts_over_the_api(api: Api) -> None:
    req = approved(api.world)
    listed = api.call("contoso_approver", "GET", f"/v1/requests/{req.id}/receipts")
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert item["kind"] == "approve" and item["basis"] == "customer"
    assert item["decided_by_email"] == "paula@contoso.test"
    one = api.call("engineer", "GET", f"/v1/receipts/{item['id']}")
    assert one.status_code == 200
    assert one.headers["content-disposition"] == f'attachment; filename="receipt-{item["id"]}.json"'
    keys = load_keys(api.call(None, "GET", "/.well-known/lockbox-audit-keys.json").json())
    assert receipt(one.json(), keys)["id"] == item["id"]
    for who in ("fabrikam_auditor", "engineer2"):
        assert api.call(who, "GET", f"/v1/receipts/{item['id']}").status_code == 404
        assert api.call(who, "GET", f"/v1/requests/{req.id}/receipts").status_code == 404
    assert api.call("engineer", "GET", "/v1/receipts/rct_nope").status_code == 422


def test_the_provider_chain_and_what_a_tenant_sees_of_it(api: Api) -> None:
    own = api.call("contoso_auditor", "GET", "/v1/tenants/contoso/audit/provider")
    assert own.status_code == 200, own.text
    body = own.json()
    assert "erin@provider.test" in {h["email"] for h in body["holders"]}
    assert body["items"] and body["head"]["seq"] >= body["items"][-1]["seq"]
    assert (
        api.call("fabrikam_auditor", "GET", "/v1/tenants/contoso/audit/provider").status_code == 404
    )
    assert (
        api.call("contoso_approver", "GET", "/v1/tenants/contoso/audit/provider").status_code == 403
    )
    path = f"/v1/tenants/{PROVIDER_CHAIN}/audit"
    assert api.call("provider_admin", "GET", path).status_code == 200
    assert api.call("provider_admin", "GET", f"{path}/verify").json()["ok"] is True
    assert api.call("contoso_auditor", "GET", path).status_code == 403
    issued = api.call("provider_admin", "POST", f"{path}/checkpoints")
    assert issued.status_code == 201 and issued.json()["tenant_id"] == PROVIDER_CHAIN
    held = issued.json()["document"]
    verified = api.call("provider_admin", "POST", f"{path}/verify", json={"checkpoints": [held]})
    assert verified.json()["ok"] is True
