"""Sign-in as organisations expect, in Chromium: single sign-on through a real OpenID
Connect provider (oidc-provider-mock on 127.0.0.1), groups → roles, just-in-time
accounts, second factors (TOTP on the test clock, passkeys through Chromium's virtual
authenticator) and step-up before approving, with the confirmed action carried out
afterwards. Every new page: axe clean, no console errors or CSP violations, no sideways
scrolling on a phone, screenshots at both widths (var/screenshots/signin-*.png).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyotp
import pytest

from lockbox.domain.roles import Principal
from lockbox.service import audit, requests, sessions, sso, users
from tests.browser import harness
from tests.browser.site import Site, sign_in, signed_in
from tests.browser.test_tenant_pages import check_page
from tests.idp import MockProvider, mock_provider

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture
def idp(site: Site) -> Iterator[MockProvider]:
    """The provider signs ID tokens with the wall clock: the site's clock follows it."""
    site.clock.set(datetime.now(UTC).replace(microsecond=0))
    sso.CACHE.clear()
    with mock_provider() as provider:
        yield provider
    sso.CACHE.clear()


def configure(site: Site, provider: MockProvider, **extra: Any) -> None:
    admin = replace(site.principal("CONTOSO_TENANT_ADMIN"), credential="local-cli")
    changes: dict[str, Any] = {
        "issuer": provider.issuer,
        "client_id": "lockbox-contoso",
        "client_secret": "not-a-real-secret",
        "enabled": True,
        "role_map": {"approvers": ["approver"], "admins": ["tenant_admin"]},
        **extra,
    }
    sso.set_config(site.app, admin, "contoso", changes)


def sso_sign_in(page: Page, site: Site, email: str, sub: str) -> None:
    page.goto(f"{site.base_url}/signin")
    page.get_by_label("Your work e-mail").fill(email)
    page.get_by_role("button", name="Continue with single sign-on").click()
    authorize_at_provider(page, sub)


def authorize_at_provider(page: Page, sub: str) -> None:
    page.wait_for_load_state()
    page.locator("input[name=sub]").fill(sub)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_load_state()


def drop_provider_noise(who: harness.Person, site: Site) -> None:
    """The provider's own pages (its missing favicon) are not Lockbox's problems."""
    who.problems.console_errors[:] = [
        m
        for m in who.problems.console_errors
        if "favicon.ico" not in m and "ERR_NAME_NOT_RESOLVED" not in m
    ]


def ops(site: Site) -> list[Any]:
    auditor = site.principal("CONTOSO_AUDITOR")
    return audit.query(site.app, auditor, "contoso", limit=1000)[0]


def test_sso_groups_roles_jit_and_refusals(browser: Browser, site: Site, idp: MockProvider) -> None:
    configure(site, idp)
    idp.set_user("paula", email="paula@contoso.example", email_verified=True, groups=["approvers"])
    with harness.person(browser, site.base_url, name="paula") as paula:
        paula.goto("/signin")
        check_page(paula, "signin-page")
        sso_sign_in(paula.page, site, "paula@contoso.example", "paula")
        assert paula.page.url.endswith("/approvals"), paula.page.url
        assert "Waiting for your approval" in paula.page.locator("h1").inner_text()
        last = [r for r in ops(site) if r.operation == "session.signed_in"][-1]
        assert last.details["method"] == "sso" and last.details["provider"] == idp.issuer

    # Removed from the approvers group: the role goes at the next sign-in, which is refused.
    idp.set_user("paula", email="paula@contoso.example", email_verified=True, groups=[])
    with harness.person(browser, site.base_url, name="paula") as paula:
        sso_sign_in(paula.page, site, "paula@contoso.example", "paula")
        assert "no role in Lockbox" in paula.page.get_by_test_id("refusal").inner_text()
        drop_provider_noise(paula, site)
        check_page(paula, "signin-refused", 403)
    assert users.get_user(site.app, Principal.operator(), "paula@contoso.example").roles == set()
    assert [r.details["reason"] for r in ops(site) if r.operation == "session.signin_refused"][
        -1
    ] == "no_role"

    # Unknown people: refused while provisioning is off, created with their groups' roles when on.
    idp.set_user("nina", email="nina@contoso.example", email_verified=True, groups=["approvers"])
    with harness.person(browser, site.base_url, name="nina") as nina:
        sso_sign_in(nina.page, site, "nina@contoso.example", "nina")
        assert "no Lockbox account" in nina.page.get_by_test_id("refusal").inner_text()
    configure(site, idp, jit=True)
    with harness.person(browser, site.base_url, name="nina") as nina:
        sso_sign_in(nina.page, site, "nina@contoso.example", "nina")
        assert nina.page.url.endswith("/approvals")
    created = users.get_user(site.app, Principal.operator(), "nina@contoso.example")
    assert {r.value for r in created.roles} == {"approver"}

    # An unverified address is refused, with its own page and audit record.
    idp.set_user("vic", email="ines@contoso.example", email_verified=False, groups=["admins"])
    with harness.person(browser, site.base_url, name="vic") as vic:
        sso_sign_in(vic.page, site, "ines@contoso.example", "vic")
        assert "verified" in vic.page.get_by_test_id("refusal").inner_text()


def approve_through_pages(page: Page, site: Site, rid: str) -> None:
    page.goto(f"{site.base_url}/requests/{rid}/approve")
    page.get_by_role("button", name="Confirm approval").click()
    page.wait_for_load_state()


def test_sso_reference_scenario_configured_in_the_pages_then_an_approval(
    browser: Browser, site: Site, idp: MockProvider
) -> None:
    """The SSO reference scenario, every step through the pages: the tenant admin sets up
    single sign-on against a real OpenID Connect provider, a new approver signs in through
    it (their account created from their groups), approves, and the audit log says so."""
    rid = site.pending_approval()
    idp.set_user(
        "nina",
        email="nina@contoso.example",
        email_verified=True,
        name="Nina Nakamura",
        groups=["lockbox-approvers", "everyone"],
    )

    # 1. Ines, tenant admin, configures single sign-on on the tenant's Sign-in page.
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as ines:
        page = ines.page
        ines.goto("/sign-in")
        callback = page.get_by_test_id("callback").inner_text()
        assert callback == f"{site.base_url}/sso/callback"
        page.get_by_label("Let people sign in with your organisation").check()
        page.get_by_label("Issuer").fill(idp.issuer)
        page.get_by_label("Client ID").fill("lockbox-contoso")
        page.get_by_label("Client secret").fill("not-a-real-secret")
        page.get_by_label("Groups and roles").fill("lockbox-approvers = approver")
        page.get_by_label("Create an account at first sign-in").check()
        page.get_by_role("button", name="Save sign-in settings").click()
        page.wait_for_load_state()
        assert page.url.endswith("/sign-in")
        assert "Single sign-on is on" in page.locator(".flash").first.inner_text()
        assert "A secret is set. Leave this empty to keep it" in page.locator("main").inner_text()
        assert "not-a-real-secret" not in page.content()  # write-only
        check_page(ines, "sso-tenant-sign-in-settings")
    admin = replace(site.principal("CONTOSO_TENANT_ADMIN"), credential="local-cli")
    saved = sso.get_config(site.app, admin, "contoso")
    assert saved.sso_enabled and saved.jit and saved.issuer == idp.issuer
    assert saved.role_map == {"lockbox-approvers": ["approver"]}
    changed = [r for r in ops(site) if r.operation == "sign_in.settings_changed"][-1]
    assert changed.details["changes"]["client_secret"] == {"from": "(hidden)", "to": "changed"}

    # 2. Nina, new to Lockbox, signs in through her organisation and lands on her queue.
    with harness.person(browser, site.base_url, name="nina") as nina:
        page = nina.page
        nina.goto("/signin")
        assert page.get_by_role("button", name="Continue with single sign-on").is_visible()
        check_page(nina, "sso-signin-page")
        sso_sign_in(page, site, "nina@contoso.example", "nina")
        assert page.url.endswith("/approvals"), page.url
        assert "Nina Nakamura" in page.locator("header").inner_text()
        created = users.get_user(site.app, Principal.operator(), "nina@contoso.example")
        assert {r.value for r in created.roles} == {"approver"}
        signed = [r for r in ops(site) if r.operation == "session.signed_in"][-1]
        assert signed.actor_id == created.id
        assert signed.details["method"] == "sso" and signed.details["provider"] == idp.issuer
        assert any(
            r.operation == "user.provisioned" and r.details.get("user_id") == created.id
            for r in ops(site)
        )

        # 3. She approves the pending request: a fresh sign-in, so no step-up.
        approve_through_pages(page, site, rid)
        assert page.url.endswith(f"/requests/{rid}"), page.url
        assert "Access approved" in page.locator(".flash").first.inner_text()
        drop_provider_noise(nina, site)

    # 4. The audit log page shows the approval, made through single sign-on.
    decision = [r for r in ops(site) if r.operation == "request.approve"][-1]
    assert decision.actor_id == created.id
    assert decision.details["authenticated_by"] == f"single sign-on ({idp.issuer})"
    assert decision.details["credential"].startswith("session:")
    with signed_in(browser, site, "CONTOSO_AUDITOR") as audrey:
        audrey.goto(f"/audit?request={rid}")
        row = audrey.page.locator("tbody tr", has_text="request.approve")
        assert row.count() == 1
        text = row.inner_text()
        assert "Nina Nakamura" in text
        assert f"Authenticated by: single sign-on ({idp.issuer})" in text
        check_page(audrey, "sso-audit-approval")


def test_step_up_through_sso_carries_out_the_approval(
    browser: Browser, site: Site, idp: MockProvider
) -> None:
    configure(site, idp)
    idp.set_user("paula", email="paula@contoso.example", email_verified=True, groups=["approvers"])
    rid = site.pending_approval()
    with harness.person(browser, site.base_url, name="paula") as paula:
        sso_sign_in(paula.page, site, "paula@contoso.example", "paula")
        site.clock.advance(timedelta(minutes=6))  # the sign-in is now too old to approve
        approve_through_pages(paula.page, site, rid)
        assert paula.page.url.endswith("/reauth")
        paula.page.wait_for_timeout(200)  # late console reports of the provider's page
        assert not requests.get_request(
            site.app, site.principal("ENGINEER"), rid
        ).request.approvals()
        paula.problems.console_errors.clear()  # the provider's own pages (a CDN, a favicon)
        check_page(paula, "signin-reauth-sso")
        paula.page.get_by_role("button", name="Confirm with your organisation").click()
        authorize_at_provider(paula.page, "paula")
        # Back from the provider: the approval was carried out without a second click.
        assert "Access approved" in paula.page.locator(".flash").first.inner_text()
    decision = [r for r in ops(site) if r.operation == "request.approve"][-1]
    assert decision.details["authenticated_by"] == f"single sign-on ({idp.issuer})"


def test_totp_second_factor_and_step_up(browser: Browser, site: Site) -> None:
    paula_user = site.who("CONTOSO_APPROVER")
    with signed_in(browser, site, "CONTOSO_APPROVER") as paula:
        paula.goto("/account/security")
        check_page(paula, "signin-security")
        paula.page.get_by_role("button", name="Set up an authenticator app").click()
        paula.page.wait_for_load_state()
        secret = paula.page.get_by_test_id("totp-secret").inner_text().strip()
        totp = pyotp.TOTP(secret)
        # The key as a QR code too: inline SVG, named for screen readers, nothing the CSP
        # blocks (check_page fails on any violation), as wide as a phone allows.
        qr = paula.page.get_by_role("img", name="QR code of the key")
        assert qr.evaluate("e => e.tagName.toLowerCase()") == "svg"
        box = qr.bounding_box()
        assert box is not None and 150 <= box["width"] <= 260 and box["width"] == box["height"]
        check_page(paula, "signin-totp-qr")
        paula.page.locator("#f-name").fill("phone")
        paula.page.get_by_label("Code from the app").fill(totp.at(site.clock.now()))
        paula.page.get_by_role("button", name="Add authenticator app").click()
        paula.page.wait_for_load_state()
        codes = paula.page.get_by_test_id("recovery-codes").inner_text().split()
        assert len(codes) == 10
        check_page(paula, "signin-recovery-codes")

    site.clock.advance(timedelta(minutes=1))
    with harness.person(browser, site.base_url, name="paula") as paula:
        page = paula.page
        page.goto(f"{site.base_url}/signin")
        page.get_by_label("E-mail address", exact=True).fill(paula_user.email)
        page.get_by_label("Password", exact=True).fill(paula_user.password)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_load_state()
        assert page.url.endswith("/signin/second-factor")
        check_page(paula, "signin-second-factor")
        page.get_by_label("Code from your authenticator app").fill("000000")
        page.get_by_role("button", name="Continue").click()
        page.wait_for_load_state()
        assert "wrong" in page.locator(".error-summary").inner_text()
        paula.problems.console_errors.clear()
        page.get_by_label("Code from your authenticator app").fill(totp.at(site.clock.now()))
        page.get_by_role("button", name="Continue").click()
        page.wait_for_load_state()
        assert page.url.endswith("/approvals"), page.url
        last = [r for r in ops(site) if r.operation == "session.signed_in"][-1]
        assert last.details["method"] == "password+totp"

        # Step-up: password and a new code, then the approval happens by itself.
        rid = site.pending_approval()
        site.clock.advance(timedelta(minutes=6))
        approve_through_pages(page, site, rid)
        assert page.url.endswith("/reauth")
        check_page(paula, "signin-reauth")
        page.get_by_label("Password", exact=True).fill(paula_user.password)
        page.get_by_label("Code from your authenticator app").fill(totp.at(site.clock.now()))
        page.get_by_role("button", name="Confirm", exact=True).click()
        page.wait_for_load_state()
        assert "Access approved" in page.locator(".flash").first.inner_text()
    decision = [r for r in ops(site) if r.operation == "request.approve"][-1]
    assert decision.details["authenticated_by"] == "password + TOTP"


def virtual_authenticator(page: Page) -> Any:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return cdp


def test_passkeys_enrol_sign_in_step_up_and_removal(browser: Browser, site: Site) -> None:
    # WebAuthn refuses IP addresses as relying-party ids: this test uses localhost.
    local = site.base_url.replace("127.0.0.1", "localhost")
    local_site = replace(site, base_url=local)
    with harness.person(browser, local, name="paula") as paula:
        virtual_authenticator(paula.page)
        sign_in(
            paula.page,
            local_site,
            site.who("CONTOSO_APPROVER").email,
            site.who("CONTOSO_APPROVER").password,
        )
        paula.goto("/account/security")
        paula.page.get_by_label("Passkey name").fill("laptop")
        paula.page.get_by_role("button", name="Add a passkey").click()
        paula.page.wait_for_url(f"{local}/account/security")
        paula.page.wait_for_load_state()
        assert "laptop" in paula.page.locator("table").inner_text()
        check_page(paula, "signin-security-passkey")
        paula.page.get_by_role("button", name="Sign out").click()
        paula.page.wait_for_load_state()

        # Sign in with the passkey alone.
        paula.goto("/signin")
        paula.page.get_by_role("button", name="Use a passkey").click()
        paula.page.wait_for_url(f"{local}/approvals")
        last = [r for r in ops(site) if r.operation == "session.signed_in"][-1]
        assert last.details["method"] == "passkey"

        # Step-up with the passkey: the approval happens after it, without a second click.
        rid = site.pending_approval()
        site.clock.advance(timedelta(minutes=6))
        approve_through_pages(paula.page, local_site, rid)
        assert paula.page.url.endswith("/reauth")
        check_page(paula, "signin-reauth-passkey")
        paula.page.get_by_role("button", name="Confirm with my passkey").click()
        paula.page.wait_for_url(f"{local}/requests/{rid}")
        assert "Access approved" in paula.page.locator(".flash").first.inner_text()
        decision = [r for r in ops(site) if r.operation == "request.approve"][-1]
        assert decision.details["authenticated_by"] == "passkey"

        # Removed: the same passkey no longer signs in.
        paula.goto("/account/security")
        paula.page.get_by_role("button", name="Remove laptop").click()
        paula.page.wait_for_load_state()
        paula.page.get_by_role("button", name="Sign out").click()
        paula.page.wait_for_load_state()
        paula.goto("/signin")
        paula.page.get_by_role("button", name="Use a passkey").click()
        status = paula.page.locator("[data-passkey-status]").first
        status.filter(has_text="not registered").wait_for()
        assert paula.page.url.endswith("/signin")
        paula.problems.console_errors.clear()


def test_tenant_requires_a_second_factor_and_sees_every_session(
    browser: Browser, site: Site
) -> None:
    admin = replace(site.principal("CONTOSO_TENANT_ADMIN"), credential="local-cli")
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as ines:
        ines.goto("/sign-in")
        check_page(ines, "signin-tenant-settings")
        ines.page.get_by_label("Approvers and tenant admins must sign in").check()
        ines.page.get_by_role("button", name="Save sign-in settings").click()
        ines.page.wait_for_load_state()
        assert "Sign-in settings saved" in ines.page.locator(".flash").first.inner_text()
    assert sso.get_config(site.app, admin, "contoso").require_second_factor

    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as ines:
        # Not signed in with a second factor: sent to enrol, and nothing else opens.
        assert ines.page.url.endswith("/account/security?enrol=1")
        ines.goto("/approvals")
        assert "/account/security" in ines.page.url
        check_page(ines, "signin-must-enrol")
    # Sessions and tokens of everyone in the tenant, for its admins (password still fine for this).
    sso.set_config(site.app, admin, "contoso", {"require_second_factor": False})
    with (
        signed_in(browser, site, "CONTOSO_APPROVER") as paula,
        signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as ines,
    ):
        ines.goto("/sessions")
        table = ines.page.locator("table").first.inner_text()
        assert "paula@contoso.example" in table
        check_page(ines, "signin-tenant-sessions")
        row = ines.page.locator("tr", has_text="paula@contoso.example").first
        row.get_by_role("button", name="End").first.click()
        ines.page.wait_for_load_state()
        assert "session is ended" in ines.page.locator(".flash").first.inner_text()
        paula.page.reload()
        assert "/signin" in paula.page.url
    assert sessions is not None
