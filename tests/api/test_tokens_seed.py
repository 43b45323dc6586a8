"""API tokens over HTTP (shown once, last use recorded, revocable) and the demo seed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lockbox.domain.errors import AuthenticationFailed
from lockbox.domain.roles import Principal
from lockbox.service import passwords, resource_services, tenants, tokens
from lockbox.service.app import Lockbox
from lockbox.service.seed import DEMO_USERS, seed_demo
from tests.api.conftest import Api, auth


def test_token_lifecycle_over_http(api: Api) -> None:
    r = api.call("contoso_auditor", "POST", "/v1/tokens", json={"name": "script"})
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["token"]
    assert secret.startswith("lbx_") and r.headers["cache-control"] == "no-store"

    assert api.client.get("/v1/me", headers=auth(secret)).json()["email"] == "audrey@contoso.test"
    listed = api.call("contoso_auditor", "GET", "/v1/tokens").json()["items"]
    mine = next(t for t in listed if t["id"] == created["id"])
    assert "token" not in mine and "token_hash" not in mine
    assert mine["last_used_at"] is not None

    # Another customer user cannot touch it; another tenant cannot see it; the tenant admin can.
    r = api.call("contoso_approver", "POST", f"/v1/tokens/{created['id']}/revoke")
    assert r.status_code == 404  # approvers do not see other users, nor their tokens
    r = api.call("fabrikam_admin", "POST", f"/v1/tokens/{created['id']}/revoke")
    assert r.status_code == 404 and r.json()["detail"] == "token not found"
    r = api.call("contoso_admin", "POST", f"/v1/tokens/{created['id']}/revoke")
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    r = api.client.get("/v1/me", headers=auth(secret))
    assert r.status_code == 401

    # Contoso's audit log shows the credential being issued and revoked (never the secret).
    audit = api.call("contoso_auditor", "GET", "/v1/tenants/contoso/audit?operation=token.")
    records = [a for a in audit.json()["items"] if a["details"]["token_id"] == created["id"]]
    assert [a["operation"] for a in records] == ["token.created", "token.revoked"]
    assert secret not in audit.text

    # Nobody creates a credential another person can act with: not provider staff for a
    # customer, not the provider admin for staff, not a tenant admin for its own people.
    for who, user in (
        ("provider_admin", "paula@contoso.test"),
        ("provider_admin", "erin@provider.test"),
        ("contoso_admin", "paula@contoso.test"),
    ):
        r = api.call(who, "POST", "/v1/tokens", json={"user": user, "name": "x"})
        assert r.status_code == 403, (who, user, r.text)
        assert "created by their owner" in r.json()["detail"]
    r = api.call(
        "engineer",
        "POST",
        "/v1/tokens",
        json={"user": "erin@provider.test", "name": "ci", "expires_at": "2026-02-01T00:00:00Z"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["user_id"] == api.world.engineer.id
    r = api.call(
        "provider_admin",
        "POST",
        "/v1/users",
        json={
            "email": "mallory@contoso.test",
            "roles": ["approver"],
            "tenant": "contoso",
            "password": "a-password-the-provider-knows",
        },
    )
    assert r.status_code == 403

    # Deactivating a user stops their tokens at once.
    r = api.call("contoso_admin", "PATCH", "/v1/users/paula@contoso.test", json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert api.call("contoso_approver", "GET", "/v1/me").status_code == 401


def test_seed_demo_is_idempotent(app: Lockbox) -> None:
    first = seed_demo(app)
    assert first.tenants_created == ["contoso", "fabrikam"]
    second = seed_demo(app)
    assert second.tenants_created == []
    assert [s.created for s in second.users] == [False] * len(DEMO_USERS)
    assert {s.user_id for s in first.users} == {s.user_id for s in second.users}
    for old, new in zip(first.users, second.users, strict=True):
        with pytest.raises(AuthenticationFailed):
            tokens.authenticate(app, old.token)  # re-issuing revoked the previous demo token
        principal = tokens.authenticate(app, new.token)
        assert {r.value for r in principal.roles} == {new.user.role}
    # Every role is there, and the demo password signs in.
    assert {u.role for u in DEMO_USERS} == {
        "engineer", "manager", "provider_admin", "resource_service",
        "tenant_admin", "approver", "auditor",
    }  # fmt: skip
    demo = DEMO_USERS[0]
    assert passwords.verify_password(app, demo.email, demo.password).id == first.users[0].user_id
    # The demo mail store serves both demo tenants' mailboxes, under the default audience.
    service = next(s for s in first.users if s.user.role == "resource_service")
    registered = resource_services.get_registration(app, Principal.operator(), service.user_id)
    assert registered.scope.prefixes == ("exchange/",)
    assert registered.tenant_slugs == ("contoso", "fabrikam")
    assert registered.scope.audience == "lockbox-resource"
    tenant = tenants.get_tenant(app, Principal.operator(), "contoso")
    assert tenant.email_domains == ("contoso.example",)


def test_seed_demo_command_writes_tokens_file(app: Lockbox, tmp_path: Path) -> None:
    target = tmp_path / "var" / "demo-tokens.env"
    env = {**os.environ, "LOCKBOX_DATABASE_URL": app.db.url, "COLUMNS": "200"}
    lockbox = str(Path(sys.executable).with_name("lockbox"))
    run = subprocess.run(
        [lockbox, "seed-demo", "--tokens-file", str(target)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "paula@contoso.example" in run.stdout and "LOCKBOX_TOKEN_ENGINEER" in run.stdout
    lines = [x for x in target.read_text().splitlines() if not x.startswith("#")]
    assert len(lines) == len(DEMO_USERS)
    values = dict(line.split("=", 1) for line in lines)
    assert set(values) == {f"LOCKBOX_TOKEN_{u.key}" for u in DEMO_USERS}
    principal = tokens.authenticate(app, values["LOCKBOX_TOKEN_CONTOSO_APPROVER"])
    assert principal.tenant_id is not None
    assert oct(target.stat().st_mode & 0o777) == "0o600"
