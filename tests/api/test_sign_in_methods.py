"""Sign-in beyond passwords over HTTP (both databases): single sign-on refusals with crafted
ID tokens, the SSO settings API (secret write-only), TOTP and recovery codes on the test
clock, step-up enforced in the service (sessions only, never API tokens), and the replay
of the confirmed action after re-authentication.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from fastapi.testclient import TestClient

from lockbox.api import problems
from lockbox.api.app import create_app
from lockbox.config import Settings
from lockbox.domain import errors
from lockbox.domain.roles import Principal
from lockbox.service import (
    audit,
    cases,
    factors,
    passwords,
    requests,
    sso,
    step_up,
    tenants,
    users,
)
from tests.api.conftest import auth, token_for
from tests.browser import harness
from tests.conftest import World
from tests.idp import CraftedProvider

PASSWORD = "paula's long passphrase"


@pytest.fixture
def provider() -> Iterator[CraftedProvider]:
    idp = CraftedProvider()
    server = harness.start_server(idp.app())  # type: ignore[arg-type]
    idp.issuer = server.base_url
    sso.CACHE.clear()
    try:
        yield idp
    finally:
        server.stop()
        sso.CACHE.clear()


@pytest.fixture
def web(world: World) -> Iterator[TestClient]:
    for who in (world.contoso_approver, world.contoso_admin):
        passwords.set_password(world.app, Principal.operator(), who.id, PASSWORD)
    app = create_app(world.app)
    app.state.settings = Settings(provider_name="Acme Cloud", cookie_secure="false")
    with TestClient(app, base_url="http://lockbox.test") as client:
        yield client


def configure(world: World, provider: CraftedProvider, **extra: Any) -> None:
    changes: dict[str, Any] = {
        "issuer": provider.issuer,
        "client_id": "lockbox",
        "client_secret": "s3cret-value",
        "enabled": True,
        **extra,
    }
    sso.set_config(
        world.app, replace(world.contoso_admin, credential="local-cli"), "contoso", changes
    )


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:300]
    return found.group(1)


def start(client: TestClient, email: str = "paula@contoso.test") -> dict[str, str]:
    token = csrf(client.get("/signin").text)
    r = client.post(
        "/sso/start", data={"sso_email": email, "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 200, r.text[:500]
    found = re.search(r'content="0;url=([^"]+)"', r.text)
    assert found, r.text[:800]
    query = parse_qs(urlsplit(html.unescape(found.group(1))).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    return {k: v[0] for k, v in query.items()}


def claims(world: World, provider: CraftedProvider, expected: str, **over: Any) -> dict[str, Any]:
    now = int(world.clock.now().timestamp())
    base: dict[str, Any] = {
        "iss": provider.issuer,
        "aud": "lockbox",
        "sub": "paula-sub",
        "nonce": expected,
        "iat": now,
        "exp": now + 300,
        "auth_time": now,
        "email": "paula@contoso.test",
        "email_verified": True,
        "groups": ["approvers"],
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def callback(client: TestClient, state: str) -> Any:
    return client.get(f"/sso/callback?state={state}&code=the-code", follow_redirects=False)


def refusals(world: World) -> list[dict[str, Any]]:
    records = audit.query(world.app, world.contoso_auditor, "contoso", limit=1000)[0]
    return [r.details for r in records if r.operation == "session.signin_refused"]


def test_sso_signs_in_with_pkce_and_maps_groups(
    world: World, web: TestClient, provider: CraftedProvider
) -> None:
    configure(world, provider, role_map={"approvers": ["approver"], "admins": ["tenant_admin"]})
    params = start(web)
    provider.make_token = lambda: provider.sign(
        claims(world, provider, params["nonce"], groups=["approvers", "admins"])
    )
    r = callback(web, params["state"])
    assert r.status_code == 303, r.text[:800]
    # The code was redeemed with the PKCE verifier and the client's credentials.
    sent = provider.token_requests[-1]
    assert sent["code"] == "the-code" and len(sent["code_verifier"]) >= 43
    roles = users.get_user(world.app, Principal.operator(), "paula@contoso.test").roles
    assert {r.value for r in roles} == {"approver", "tenant_admin"}
    # The state is used once: the same callback again is refused.
    again = callback(web, params["state"])
    assert again.status_code == 403 and "start again" in again.text


CASES = {
    "issuer": ({"iss": "https://evil.example"}, "another issuer"),
    "audience": ({"aud": "someone-else"}, "another application"),
    "nonce": ({"nonce": "not-the-nonce"}, "wrong nonce"),
    "expired": ({"exp": -600}, "expired"),
    "not_yet_valid": ({"iat": 3600}, "dated in the future"),
    "email_unverified": ({"email_verified": False}, "verified"),
    "domain": ({"email": "paula@elsewhere.test"}, "domain may not sign in"),
    "unknown_user": ({"email": "nobody@contoso.test"}, "no Lockbox account"),
}


@pytest.mark.parametrize("reason", sorted(CASES))
def test_every_refusal_has_a_page_and_an_audit_record(
    reason: str, world: World, web: TestClient, provider: CraftedProvider
) -> None:
    configure(world, provider)
    over = dict(CASES[reason][0])
    params = start(web)
    now = int(world.clock.now().timestamp())
    if "exp" in over:
        over["exp"] = now + int(over["exp"])
        over["iat"] = now - 900
    if "iat" in over and "exp" not in over:
        over["iat"] = now + int(over["iat"])
        over["exp"] = now + 7200
    provider.make_token = lambda: provider.sign(claims(world, provider, params["nonce"], **over))
    r = callback(web, params["state"])
    assert r.status_code == 403, r.text[:500]
    assert CASES[reason][1] in r.text
    assert "lockbox_session" not in r.cookies
    assert refusals(world)[-1]["reason"] == reason


def test_a_tampered_token_and_a_foreign_key_are_refused(
    world: World, web: TestClient, provider: CraftedProvider
) -> None:
    configure(world, provider)
    from joserfc.jwk import RSAKey

    for make in ("tamper", "other_key"):
        params = start(web)
        good = provider.sign(claims(world, provider, params["nonce"]))
        if make == "tamper":
            head, _body, sig = good.split(".")
            forged = provider.sign(
                claims(world, provider, params["nonce"], email="ines@contoso.test")
            )
            token = ".".join([head, forged.split(".")[1], sig])
        else:
            token = provider.sign(
                claims(world, provider, params["nonce"]),
                RSAKey.generate_key(2048, parameters={"kid": "k1"}),
            )
        provider.make_token = lambda token=token: token
        r = callback(web, params["state"])
        assert r.status_code == 403 and "signature does not check out" in r.text
        assert refusals(world)[-1]["reason"] == "token"


def test_a_user_of_another_tenant_is_refused_through_this_tenants_provider(
    world: World, web: TestClient, provider: CraftedProvider
) -> None:
    # Contoso's provider vouches for an address at Contoso's domain that a Fabrikam person has.
    tenants.set_domains(world.app, Principal.operator(), "contoso", ["contoso.test", "shared.test"])
    world.user("sam@shared.test", ["approver"], "fabrikam")
    configure(world, provider)
    params = start(web, "sam@shared.test")
    provider.make_token = lambda: provider.sign(
        claims(world, provider, params["nonce"], email="sam@shared.test")
    )
    r = callback(web, params["state"])
    assert r.status_code == 403 and "another organisation" in r.text
    assert refusals(world)[-1]["reason"] == "foreign_tenant"


def test_state_from_another_browser_is_refused(
    world: World, web: TestClient, provider: CraftedProvider
) -> None:
    configure(world, provider)
    params = start(web)
    web.cookies.delete("lockbox_sso", path="/sso/")
    web.cookies.clear()
    provider.make_token = lambda: provider.sign(claims(world, provider, params["nonce"]))
    r = callback(web, params["state"])
    assert r.status_code == 403 and "another browser" in r.text
    assert refusals(world)[-1]["reason"] == "state"


def test_jit_provisioning_and_deactivated_users(
    world: World, web: TestClient, provider: CraftedProvider
) -> None:
    configure(world, provider, role_map={"approvers": ["approver"]})
    params = start(web, "newbie@contoso.test")
    provider.make_token = lambda: provider.sign(
        claims(world, provider, params["nonce"], email="newbie@contoso.test")
    )
    assert callback(web, params["state"]).status_code == 403  # off by default
    assert refusals(world)[-1]["reason"] == "unknown_user"
    configure(world, provider, jit=True)
    params = start(web, "newbie@contoso.test")
    r = callback(web, params["state"])
    assert r.status_code == 303
    created = users.get_user(world.app, Principal.operator(), "newbie@contoso.test")
    assert {r.value for r in created.roles} == {"approver"}
    records = audit.query(world.app, world.contoso_auditor, "contoso", limit=1000)[0]
    assert any(r.operation == "user.provisioned" for r in records)
    users.set_active(world.app, Principal.operator(), created.id, False)
    params = start(web, "newbie@contoso.test")
    assert callback(web, params["state"]).status_code == 403
    assert refusals(world)[-1]["reason"] == "deactivated"


def test_sso_settings_api_keeps_the_secret_write_only(
    world: World, client: TestClient, provider: CraftedProvider
) -> None:
    admin = auth(token_for(world.app, world.contoso_admin))
    body = {"issuer": provider.issuer, "client_id": "lockbox", "client_secret": "hush-hush"}
    r = client.put("/v1/tenants/contoso/sso", json=body, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["client_secret"] == "set" and "hush-hush" not in r.text
    assert client.get("/v1/tenants/contoso/sso", headers=admin).json()["client_secret"] == "set"
    # Provider staff cannot point a customer's sign-in somewhere else.
    staff = auth(token_for(world.app, world.provider_admin))
    assert (
        client.put("/v1/tenants/contoso/sso", json={"jit": True}, headers=staff).status_code == 403
    )
    # Another tenant's admin does not even see it.
    other = auth(token_for(world.app, world.fabrikam_admin))
    assert client.get("/v1/tenants/contoso/sso", headers=other).status_code == 404
    assert client.get("/v1/sso", headers=staff).json()["scope"] == "provider"
    records = audit.query(world.app, world.contoso_auditor, "contoso", limit=1000)[0]
    assert "hush-hush" not in str([r.details for r in records])
    operation_ids = {
        op["operationId"]
        for path, item in client.get("/openapi.json").json()["paths"].items()
        if path.endswith("/sso")
        for op in item.values()
    }
    assert operation_ids == {"getTenantSso", "putTenantSso", "getProviderSso", "putProviderSso"}


# -- TOTP and recovery codes on the test clock ---------------------------------------------


def test_totp_windows_reuse_and_recovery_codes(world: World) -> None:
    app, me = world.app, world.contoso_approver
    secret = factors.new_totp_secret()
    totp = pyotp.TOTP(secret)
    now = world.clock.now().timestamp()
    enrolled = factors.enrol_totp(app, me, secret, totp.at(now))
    assert len(enrolled.recovery_codes) == 10
    world.clock.advance(timedelta(minutes=5))
    now = world.clock.now().timestamp()
    assert factors.check_totp(app, me.id, totp.at(now - 30))  # the previous window
    assert not factors.check_totp(app, me.id, totp.at(now - 30))  # the same code again
    assert factors.check_totp(app, me.id, totp.at(now + 30))  # the next window
    assert not factors.check_totp(app, me.id, totp.at(now))  # older than one already used
    assert not factors.check_totp(app, me.id, totp.at(now + 90))  # too far ahead
    code = enrolled.recovery_codes[0]
    assert factors.use_recovery_code(app, me.id, code.lower())
    assert not factors.use_recovery_code(app, me.id, code)
    assert factors.recovery_codes_left(app, me) == 9


# -- step-up in the service ----------------------------------------------------------------


def pending(world: World) -> str:
    case = cases.open_case(world.app, world.engineer, tenant="contoso", title="Sync").id
    rid = requests.submit_request(
        world.app,
        world.engineer,
        tenant="contoso",
        case_id=case,
        resources=["exchange/mailbox/alice@contoso.test"],
        access_level="read",
        justification="Inspect the sync state",
    ).id
    requests.review_request(world.app, world.manager, rid, approve=True)
    return rid


def test_step_up_is_enforced_in_the_service_for_sessions_only(world: World) -> None:
    rid = pending(world)
    stale = replace(
        world.contoso_approver,
        credential="session:ses_x",
        auth_time=world.clock.now() - timedelta(minutes=6),
        auth_method="password",
    )
    with pytest.raises(errors.StepUpRequired):
        requests.decide_request(world.app, stale, rid, approve=True)
    with pytest.raises(errors.StepUpRequired):
        tenants.change_policy(
            world.app,
            replace(stale, roles=world.contoso_admin.roles, id=world.contoso_admin.id),
            "contoso",
            {"required_approvals": 2},
        )
    fresh = replace(
        stale, auth_time=world.clock.now() - timedelta(minutes=4), auth_method="passkey"
    )
    done = requests.decide_request(world.app, fresh, rid, approve=True)
    records = audit.query(world.app, world.contoso_auditor, "contoso", limit=1000)[0]
    decision = [r for r in records if r.operation == "request.approve"][-1]
    assert decision.details["authenticated_by"] == "passkey"
    assert done.id == rid
    # An API token is not a session: it is never asked to step up (documented).
    token_principal = replace(world.contoso_approver2, credential="token:tok_x")
    requests.revoke_request(world.app, token_principal, rid)


def test_stale_session_approval_is_kept_and_replayed_after_reauthentication(
    world: World, web: TestClient
) -> None:
    rid = pending(world)
    token = csrf(web.get("/signin").text)
    r = web.post(
        "/signin",
        data={"email": "paula@contoso.test", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    world.clock.advance(timedelta(minutes=6))
    page = web.get(f"/requests/{rid}/approve")
    version = re.search(r'name="version" value="(\d+)"', page.text)
    assert version
    r = web.post(
        f"/requests/{rid}/approve",
        data={"csrf_token": csrf(page.text), "version": version.group(1), "comment": "ok"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/reauth"
    assert not requests.get_request(world.app, world.contoso_approver, rid).request.approvals()
    page = web.get("/reauth")
    assert "Confirm it's you" in page.text
    r = web.post(
        "/reauth",
        data={"csrf_token": csrf(page.text), "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/requests/{rid}", r.text[:500]
    view = requests.get_request(world.app, world.contoso_approver, rid).request
    assert [d.comment for d in view.approvals()] == ["ok"]
    records = audit.query(world.app, world.contoso_auditor, "contoso", limit=1000)[0]
    assert [
        r.details.get("authenticated_by") for r in records if r.operation == "request.approve"
    ] == ["password"]
    # Nothing is kept any more: a second re-authentication replays nothing.
    page = web.get("/reauth")
    r = web.post(
        "/reauth",
        data={"csrf_token": csrf(page.text), "password": PASSWORD},
        follow_redirects=False,
    )
    assert (
        len(requests.get_request(world.app, world.contoso_approver, rid).request.approvals()) == 1
    )


# -- step-up: the API's answer, and second factors -------------------------------------------


def test_step_up_refusal_is_a_401_with_an_rfc9470_challenge(world: World) -> None:
    """A client acting for a stale session learns what to do: sign in again, then repeat."""
    stale = replace(
        world.contoso_approver,
        credential="session:ses_x",
        auth_time=world.clock.now() - timedelta(minutes=6),
        auth_method="password",
    )
    api = create_app(world.app)

    def act() -> None:
        step_up.require_recent(stale, world.clock.now(), "approve or deny access")

    api.add_api_route("/v1/test-step-up", act, methods=["POST"])
    with TestClient(api) as client:
        r = client.post("/v1/test-step-up")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="A more recent authentication is required", max_age="300"'
    )
    body = r.json()
    assert body["type"] == "urn:lockbox:problem:step_up_required"
    assert body["status"] == 401 and body["max_age"] == 300
    assert body["detail"].startswith("to approve or deny access, confirm it's you")
    # An API token is never asked (documented), so the matrix of token calls has no such 401.
    assert problems.status_of(errors.StepUpRequired) == 401


def _stale(world: World, minutes: int = 6) -> Principal:
    return replace(
        world.contoso_approver,
        credential="session:ses_x",
        auth_time=world.clock.now() - timedelta(minutes=minutes),
        auth_method="password+totp",
    )


def test_removing_a_factor_or_renewing_recovery_codes_needs_a_fresh_step_up(
    world: World,
) -> None:
    app, me = world.app, world.contoso_approver
    secret = factors.new_totp_secret()
    enrolled = factors.enrol_totp(app, me, secret, pyotp.TOTP(secret).at(world.clock.now()))
    factor_id = enrolled.factor.id
    first_code = enrolled.recovery_codes[0]

    stale = _stale(world)
    with pytest.raises(errors.StepUpRequired) as refused:
        factors.remove_factor(app, stale, factor_id)
    assert refused.value.max_age == 300 and "remove a second factor" in refused.value.message
    with pytest.raises(errors.StepUpRequired):
        factors.new_recovery_codes(app, stale)
    # Nothing changed: the app and the old codes still work, nothing was audited.
    assert [f.id for f in factors.list_factors(app, me)] == [factor_id]
    assert factors.recovery_codes_left(app, me) == 10
    operations = [
        r.operation for r in audit.query(app, world.contoso_auditor, "contoso", limit=1000)[0]
    ]
    assert "factor.removed" not in operations
    assert "factor.recovery_codes_renewed" not in operations

    fresh = _stale(world, minutes=4)
    codes = factors.new_recovery_codes(app, fresh)
    assert len(codes) == 10 and first_code not in codes
    assert not factors.use_recovery_code(app, me.id, first_code)  # the old set is gone
    assert factors.remove_factor(app, fresh, factor_id).id == factor_id
    assert factors.list_factors(app, me) == []
    assert factors.recovery_codes_left(app, me) == 0  # no factor left: no codes either
    records = audit.query(app, world.contoso_auditor, "contoso", limit=1000)[0]
    removed = [r for r in records if r.operation == "factor.removed"][-1]
    assert removed.details["authenticated_by"] == "password + TOTP"


def _sign_in_with_totp(web: TestClient, totp: pyotp.TOTP, world: World) -> None:
    token = csrf(web.get("/signin").text)
    r = web.post(
        "/signin",
        data={"email": "paula@contoso.test", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/signin/second-factor")
    page = web.get("/signin/second-factor")
    r = web.post(
        "/signin/second-factor",
        data={"csrf_token": csrf(page.text), "code": totp.at(world.clock.now())},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:500]


def _reauth(web: TestClient, totp: pyotp.TOTP, world: World) -> Any:
    page = web.get("/reauth")
    assert "changes how you sign in" in page.text
    return web.post(
        "/reauth",
        data={
            "csrf_token": csrf(page.text),
            "password": PASSWORD,
            "code": totp.at(world.clock.now()),
        },
        follow_redirects=False,
    )


def test_factor_pages_ask_to_step_up_then_carry_out_the_change(
    world: World, web: TestClient
) -> None:
    app, me = world.app, world.contoso_approver
    secret = factors.new_totp_secret()
    totp = pyotp.TOTP(secret)
    factor_id = factors.enrol_totp(app, me, secret, totp.at(world.clock.now())).factor.id
    world.clock.advance(timedelta(minutes=1))
    _sign_in_with_totp(web, totp, world)

    # New recovery codes from an old sign-in: kept, asked again, then shown.
    world.clock.advance(timedelta(minutes=6))
    page = web.get("/account/security")
    r = web.post(
        "/account/security/recovery-codes",
        data={"csrf_token": csrf(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/reauth"
    assert factors.recovery_codes_left(app, me) == 10
    r = _reauth(web, totp, world)
    assert r.status_code == 200, r.text[:500]
    assert 'data-testid="recovery-codes"' in r.text
    assert "New recovery codes" in r.text

    # Removing the app from an old sign-in: the same, and the app no longer works after.
    world.clock.advance(timedelta(minutes=6))
    page = web.get("/account/security")
    r = web.post(
        f"/account/security/factors/{factor_id}/remove",
        data={"csrf_token": csrf(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/reauth"
    assert [f.id for f in factors.list_factors(app, me)] == [factor_id]
    r = _reauth(web, totp, world)
    assert r.status_code == 303 and r.headers["location"] == "/account/security", r.text[:500]
    assert factors.list_factors(app, me) == []
    assert "is removed" in web.get("/account/security").text
    records = audit.query(app, world.contoso_auditor, "contoso", limit=1000)[0]
    changed = [
        (r.operation, r.details.get("authenticated_by"))
        for r in records
        if r.operation in ("factor.recovery_codes_renewed", "factor.removed")
    ]
    assert changed == [
        ("factor.recovery_codes_renewed", "password + TOTP"),
        ("factor.removed", "password + TOTP"),
    ]
