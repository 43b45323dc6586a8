"""The customer's own administration in a browser: the policy, its people, its webhooks.

Each scenario is what a tenant admin does with the pages, checked the way a person
and an auditor would: the page says what happened (and what did not), the database
agrees, nothing secret is ever on a page, and every page passes axe, has no console
errors or CSP violations, does not scroll sideways on a phone, and is photographed at
laptop and phone widths (var/screenshots/tenant-*.png).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from lockbox.domain.roles import Role
from lockbox.sdk.webhooks import SECRET_PREFIX
from lockbox.service import tenants, tokens, users
from lockbox.store import tables as t
from tests.browser import harness
from tests.browser.site import Site, sign_in, signed_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


# --------------------------------------------------------------------------- helpers


def check_page(who: harness.Person, name: str, status: int = 200) -> None:
    """axe clean, nothing sticking out on a phone, no console/CSP problems; photographed.

    ``status`` is the page's expected HTTP status: Chromium logs a 4xx document as a
    console error, which is no problem when the page answers 422 on purpose. Problems
    are counted from the previous check on.
    """
    page = who.page
    violations = harness.axe_violations(page)
    assert violations == [], harness.describe(violations)
    page.set_viewport_size(harness.PHONE)
    overflow = harness.horizontal_overflow(page)
    page.set_viewport_size(harness.DESKTOP)
    assert overflow == [], overflow
    harness.shot(page, name)
    expected = f"the server responded with a status of {status} "
    problems = [p for p in who.problems.all() if status < 400 or expected not in p]
    who.problems.console_errors.clear()
    who.problems.page_errors.clear()
    assert problems == []


def submit(page: Page, button: str) -> int:
    """Click a form's submit button; the status of the POST's own answer (303, 422, …)."""
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_load_state()
    return answer.value.status


def field_error(page: Page, name: str) -> str:
    return page.locator(f"#f-{name}-error").inner_text().removeprefix("Error: ").strip()


def flash(page: Page) -> str:
    return page.locator(".flash").first.inner_text()


def policy_of(site: Site) -> Any:
    return tenants.get_policy(site.app, site.principal("CONTOSO_TENANT_ADMIN"), "contoso")


# --------------------------------------------------------------------------- policy


def test_tenant_admin_turns_the_lockbox_off_and_changes_windows(
    browser: Browser, site: Site
) -> None:
    before = policy_of(site)
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as who:
        page = who.page
        who.goto("/policy")
        assert page.get_by_label("Approval window", exact=True).input_value() == "12h"
        assert (
            "still reviewed by a support manager of Acme Cloud" in page.locator("main").inner_text()
        )
        check_page(who, "tenant-policy")

        # Bad values: each field says what is wrong, and nothing changes.
        page.get_by_label("Approval window", exact=True).fill("200h")
        page.get_by_label("Access window", exact=True).fill("soon")
        page.get_by_label("Extra notification addresses").fill(
            "security@contoso.example\nnot-an-address"
        )
        assert submit(page, "Save policy") == 422
        assert "must be between 15m and 168h" in field_error(page, "approval_window")
        assert "is not a duration like 12h, 90m or 1h30m" in field_error(page, "access_window")
        assert "line 2" in field_error(page, "notify_emails")
        summary = page.locator(".error-summary").inner_text()
        assert "Approval window must be between 15m and 168h, got 200h" in summary
        # What was typed stays, so it can be corrected.
        assert page.get_by_label("Access window", exact=True).input_value() == "soon"
        check_page(who, "tenant-policy-errors", 422)
        assert policy_of(site).version == before.version

        # Good values: saved, and the message lists exactly what changed.
        page.get_by_label("Lockbox", exact=True).select_option("off")
        page.get_by_label("Approval window", exact=True).fill("6h")
        page.get_by_label("Access window", exact=True).fill("1h30m")
        page.get_by_label("Extra notification addresses").fill("security@contoso.example")
        assert submit(page, "Save policy") == 303
        message = flash(page)
        assert "lockbox off (was on)" in message
        assert "approval window 6h (was 12h)" in message
        assert "access window 1h30m (was 4h)" in message
        assert "review window" not in message
        after = policy_of(site).policy
        assert after.enabled is False
        assert after.approval_window == timedelta(hours=6)
        assert after.access_window == timedelta(hours=1, minutes=30)
        assert after.notify_emails == ("security@contoso.example",)
        assert page.get_by_label("Access window", exact=True).input_value() == "1h30m"
        check_page(who, "tenant-policy-saved")


def test_a_change_by_someone_else_meanwhile_is_not_overwritten(
    browser: Browser, site: Site
) -> None:
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as who:
        page = who.page
        who.goto("/policy")
        # Meanwhile, another admin (here through the service) sets two approvals.
        tenants.change_policy(
            site.app, site.principal("CONTOSO_TENANT_ADMIN"), "contoso", {"required_approvals": 2}
        )
        # A typo first: the corrected form still knows which version it was read at.
        page.get_by_label("Approval window", exact=True).fill("2")
        assert submit(page, "Save policy") == 422
        who.problems.console_errors.clear()  # Chromium's log line for the intended 422
        page.get_by_label("Approval window", exact=True).fill("2h")
        assert submit(page, "Save policy") == 409
        assert "Someone else changed the policy" in page.locator(".error-summary").inner_text()
        assert page.get_by_label("Required approvals").input_value() == "2"
        current = policy_of(site).policy
        assert current.approval_window == timedelta(hours=12)  # nothing of this form was saved
        assert current.required_approvals == 2
        check_page(who, "tenant-policy-conflict", 409)


def test_an_approver_reads_the_policy_but_cannot_change_it(browser: Browser, site: Site) -> None:
    with signed_in(browser, site, "CONTOSO_APPROVER") as who:
        page = who.page
        who.goto("/policy")
        main = page.locator("main").inner_text()
        assert "tenant admins can change it" in main
        assert "12h" in main
        assert page.get_by_role("button", name="Save policy").count() == 0
        check_page(who, "tenant-policy-read-only")
        # A forged POST (with a valid CSRF token) is refused by the service: 403, nothing changes.
        token = page.locator("input[name=csrf_token]").first.get_attribute("value")
        answer = who.context.request.post(
            f"{site.base_url}/policy",
            form={
                "csrf_token": token or "",
                "version": "1",
                "enabled": "off",
                "approval_window": "1h",
                "access_window": "1h",
                "review_window": "1h",
                "required_approvals": "1",
                "notify_emails": "",
                "reminder": "25",
            },
            max_redirects=0,
        )
        assert answer.status == 403
        assert "tenant admins can change the policy" in answer.text()
        assert policy_of(site).policy.enabled is True

        # People and webhooks are the tenant admins' too: a plain "not permitted", not an
        # empty list that looks like nobody is there.
        paula = site.principal("CONTOSO_APPROVER").id
        for path, words in (
            ("/users", "manage its people"),
            (f"/users/{paula}", "manage its people"),
            ("/webhooks", "manage its webhooks"),
        ):
            refused = page.goto(f"{site.base_url}{path}")
            assert refused is not None and refused.status == 403, path
            assert words in page.locator("main").inner_text()
        check_page(who, "tenant-refused", 403)


# --------------------------------------------------------------------------- people


def test_tenant_admin_adds_an_approver_only_at_the_organisations_domain(
    browser: Browser, site: Site
) -> None:
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as who:
        page = who.page
        who.goto("/users")
        assert "paula@contoso.example" in page.locator("table").inner_text()
        check_page(who, "tenant-users")

        # Outside the domains, and an address that exists in Fabrikam: the very same answer.
        answers = []
        for address in ("nobody@fabrikam.example", site.who("FABRIKAM_APPROVER").email):
            page.get_by_label("E-mail address").fill(address)
            assert submit(page, "Add person") == 422
            answers.append(field_error(page, "email"))
        assert answers[0] == answers[1]
        assert "@contoso.example" in answers[0]
        check_page(who, "tenant-users-error", 422)

        page.get_by_label("E-mail address").fill("olivia@contoso.example")
        page.get_by_label("Name").fill("Olivia Ortega")
        page.get_by_label("Role").select_option("approver")
        assert submit(page, "Add person") == 303
        assert "Olivia Ortega (olivia@contoso.example) is added as Approver" in flash(page)
        assert "send them a reset code" in flash(page)
        created = users.get_user(
            site.app, site.principal("CONTOSO_TENANT_ADMIN"), "olivia@contoso.example"
        )
        assert created.roles == frozenset({Role.APPROVER})
        check_page(who, "tenant-user-added")
        who.goto("/users")
        assert "olivia@contoso.example" in page.locator("table").inner_text()


def test_deactivate_activate_and_change_roles_with_confirmation(
    browser: Browser, site: Site
) -> None:
    admin = site.principal("CONTOSO_TENANT_ADMIN")
    paula = users.get_user(site.app, admin, "paula@contoso.example")
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as who:
        page = who.page
        who.goto("/users")
        page.get_by_role("link", name="Manage Paula").click()
        page.wait_for_load_state()
        check_page(who, "tenant-user")

        page.get_by_role("link", name="Deactivate Paula").click()
        panel = page.locator("#confirm-deactivate")
        assert "can no longer sign in" in panel.inner_text()
        assert users.get_user(site.app, admin, paula.id).active  # asking is not doing
        check_page(who, "tenant-user-confirm-deactivate")
        assert submit(page, "Deactivate Paula") == 303
        assert "Paula is deactivated" in flash(page)
        assert "Deactivated" in page.locator(".summary-list").first.inner_text()
        assert not users.get_user(site.app, admin, paula.id).active

        page.get_by_role("link", name="Activate Paula again").click()
        assert submit(page, "Activate Paula") == 303
        assert users.get_user(site.app, admin, paula.id).active

        page.get_by_label("Auditor").check()
        assert submit(page, "Save roles") == 303
        assert "Approver, Auditor" in flash(page)
        assert users.get_user(site.app, admin, paula.id).roles == {Role.APPROVER, Role.AUDITOR}

        # No role at all is refused with a field error; nothing changes.
        page.get_by_label("Approver").uncheck()
        page.get_by_label("Auditor").uncheck()
        assert submit(page, "Save roles") == 422
        assert "deactivate them instead" in field_error(page, "roles")
        assert users.get_user(site.app, admin, paula.id).roles == {Role.APPROVER, Role.AUDITOR}
        check_page(who, "tenant-user-roles-error", 422)


def test_reset_code_goes_by_email_and_never_to_the_admin(browser: Browser, site: Site) -> None:
    admin = site.principal("CONTOSO_TENANT_ADMIN")
    paula = users.get_user(site.app, admin, "paula@contoso.example")
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as who:
        page = who.page
        who.goto(f"/users/{paula.id}")
        page.get_by_role("link", name="Send a password reset code to Paula").click()
        panel = page.locator("#confirm-reset").inner_text()
        assert "without a link" in panel
        assert "You never see the code or the password" in panel
        check_page(who, "tenant-user-confirm-reset")
        assert submit(page, "Send the reset code") == 303
        assert "A reset code is on its way to paula@contoso.example" in flash(page)

        with site.app.read() as tx:
            rows = (
                tx.conn.execute(select(t.outbox).where(t.outbox.c.topic == "password_reset"))
                .mappings()
                .all()
            )
        assert [r["recipient"] for r in rows] == ["paula@contoso.example"]
        code = rows[0]["payload"]["secret_code"]
        assert code and code not in page.content()
        check_page(who, "tenant-user-reset-sent")


def test_end_sessions_and_revoke_tokens_of_a_person(browser: Browser, site: Site) -> None:
    admin = site.principal("CONTOSO_TENANT_ADMIN")
    paula = users.get_user(site.app, admin, "paula@contoso.example")
    issued = tokens.create_token(site.app, site.principal("CONTOSO_APPROVER"), name="laptop CLI")
    with (
        signed_in(browser, site, "CONTOSO_APPROVER") as paula_browser,
        signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as who,
    ):
        page = who.page
        who.goto(f"/users/{paula.id}")
        tokens_table = page.locator("table").inner_text()
        assert "laptop CLI" in tokens_table
        assert issued.secret not in page.content()
        assert "lbx_" not in page.content()

        page.get_by_role("link", name="End all sessions of Paula").click()
        check_page(who, "tenant-user-confirm-sessions")
        assert submit(page, "End all sessions") == 303
        assert "1 session ended" in flash(page)
        # Paula's browser is signed out.
        paula_browser.page.goto(f"{site.base_url}/account")
        assert "/signin" in paula_browser.page.url

        revoke = page.get_by_role("button", name="Revoke the token laptop CLI")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            revoke.click()
        page.wait_for_load_state()
        assert answer.value.status == 303
        assert "“laptop CLI” is revoked" in flash(page)
        rows = tokens.list_tokens(site.app, admin, paula.id)
        assert next(r for r in rows if r.id == issued.row.id).revoked_at is not None
        check_page(who, "tenant-user-token-revoked")
        # Paula can sign in again: only her sessions ended.
        sign_in(
            paula_browser.page,
            site,
            site.who("CONTOSO_APPROVER").email,
            site.who("CONTOSO_APPROVER").password,
        )


# --------------------------------------------------------------------------- webhooks


def test_webhook_secret_is_shown_once_and_the_webhook_can_be_deleted(
    browser: Browser, site: Site
) -> None:
    url = "https://hooks.example.com/lockbox"
    admin = site.principal("CONTOSO_TENANT_ADMIN")
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as who:
        page = who.page
        who.goto("/webhooks")
        assert "No webhooks yet." in page.locator("main").inner_text()
        check_page(who, "tenant-webhooks-empty")

        # Plain http and "only these" with none ticked are refused at the fields.
        page.get_by_label("Endpoint address").fill("http://hooks.example.com/lockbox")
        page.get_by_label("Only the events ticked below").check()
        assert submit(page, "Add webhook") == 422
        assert "Choose at least one event" in field_error(page, "events")
        page.get_by_label("Request approved").check()
        assert submit(page, "Add webhook") == 422
        assert "https" in field_error(page, "url")
        check_page(who, "tenant-webhooks-error", 422)

        page.get_by_label("Endpoint address").fill(url)
        page.get_by_label("Request denied").check()
        assert submit(page, "Add webhook") == 201
        secret = page.get_by_test_id("webhook-secret").inner_text()
        assert secret.startswith(SECRET_PREFIX)
        assert "This is the only time it is shown" in page.locator("main").inner_text()
        row = page.locator("tbody tr").filter(has_text=url)
        assert "Request approved; Request denied" in row.inner_text()
        check_page(who, "tenant-webhooks-created")

        # Shown once: the list never shows it again.
        who.goto("/webhooks")
        assert secret not in page.content()
        assert SECRET_PREFIX not in page.content()

        page.get_by_role("link", name=f"Delete the webhook for {url}").click()
        assert url in page.locator("#confirm-delete").inner_text()
        check_page(who, "tenant-webhooks-confirm-delete")
        assert submit(page, "Delete webhook") == 303
        assert f"The webhook for {url} is deleted" in flash(page)
        assert "No webhooks yet." in page.locator("main").inner_text()
    from lockbox.service import webhooks

    assert webhooks.list_webhooks(site.app, admin, tenant="contoso") == []


def test_the_forms_work_without_javascript(browser: Browser, site: Site) -> None:
    """Plain HTML forms: saving, re-rendering with errors and confirming need no script."""
    admin = site.principal("CONTOSO_TENANT_ADMIN")
    paula = users.get_user(site.app, admin, "paula@contoso.example")
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN", java_script_enabled=False) as who:
        page = who.page
        who.goto("/policy")
        page.get_by_label("Review window", exact=True).fill("10m")
        assert submit(page, "Save policy") == 422
        assert "must be between 15m and 168h, got 10m" in field_error(page, "review_window")
        page.get_by_label("Review window", exact=True).fill("2d")
        assert submit(page, "Save policy") == 303
        assert "review window 48h (was 12h)" in flash(page)

        who.goto(f"/users/{paula.id}?confirm=deactivate")
        assert submit(page, "Deactivate Paula") == 303
        assert not users.get_user(site.app, admin, paula.id).active
