"""The provider admin's pages in a browser: tenants, staff, the outbox and signing keys.

Pat (the demo provider admin) does each job through the forms; the outcome is
checked through the service layer, and every page is looked at as a person and
an auditor would (both widths, axe-core, no console errors or CSP violations).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from lockbox.service import access, outbox, resource_services, tenants, users
from lockbox.store import outbox as outbox_store
from tests.browser import harness
from tests.browser.site import Site, signed_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Response

ADMIN_PAGES = ("/admin/tenants", "/admin/users", "/admin/outbox", "/admin/keys")
#: Chrome logs a page answered with an error status as a console error; these pages mean it.
_EXPECTED_STATUS = re.compile(r"Failed to load resource: .* status of (403|404|409|422) ")


@contextmanager
def admin(browser: Browser, site: Site, key: str = "PROVIDER_ADMIN") -> Iterator[harness.Person]:
    """A signed-in person whose browser clock shows the site's (manual) time."""
    with signed_in(browser, site, key) as who:
        who.page.clock.set_fixed_time(site.clock.now())
        # Signing in lands on the person's start page, another page group's work: only
        # what happens on the pages tested here counts.
        who.problems.console_errors.clear()
        who.problems.page_errors.clear()
        yield who


def unexpected_problems(who: harness.Person) -> list[str]:
    return [p for p in who.problems.all() if not _EXPECTED_STATUS.search(p)]


def looks_right(who: harness.Person, name: str) -> None:
    """Accessible, clean, photographed at both widths, and no sideways scrolling on a phone."""
    violations = harness.axe_violations(who.page)
    assert violations == [], harness.describe(violations)
    harness.shot(who.page, name)
    size = who.page.viewport_size
    who.page.set_viewport_size(harness.PHONE)
    assert harness.horizontal_overflow(who.page) == []
    if size is not None:
        who.page.set_viewport_size(size)
    assert unexpected_problems(who) == []


def submit(who: harness.Person, button: Locator) -> Response:
    with who.page.expect_navigation() as landed:
        button.click()
    response = landed.value
    assert response is not None
    return response


def flash(who: harness.Person) -> str:
    return who.page.locator(".flash").first.inner_text()


def field_error(who: harness.Person, name: str) -> str:
    said = " ".join(who.page.locator(f"#f-{name}-error").inner_text().split())
    return said.removeprefix("Error: ")


# -- tenants ------------------------------------------------------------------------------


def test_onboarding_a_tenant_and_setting_its_domains(browser: Browser, site: Site) -> None:
    pat = site.principal("PROVIDER_ADMIN")
    with admin(browser, site) as who:
        who.goto("/admin/tenants")
        contoso = who.page.locator("tr", has_text="Contoso")
        assert "contoso.example" in contoso.inner_text() and "On" in contoso.inner_text()
        looks_right(who, "admin-tenants")

        form = who.page.locator("#onboard")
        form.get_by_label("Short name").fill("North Wind")
        form.get_by_label("Name", exact=True).fill("Northwind Traders")
        form.get_by_label("E-mail domains").fill("northwind.example, not a domain")
        refused = submit(who, form.get_by_role("button", name="Onboard tenant"))
        assert refused.status == 422
        assert field_error(who, "slug").startswith("The short name must be 1-63 lower-case")
        assert len(tenants.list_tenants(site.app, pat)) == 2

        form.get_by_label("Short name").fill("northwind")
        refused = submit(who, form.get_by_role("button", name="Onboard tenant"))
        assert refused.status == 422
        assert "'not a domain' is not a domain name" in field_error(who, "domains")
        assert form.get_by_label("Name", exact=True).input_value() == "Northwind Traders"
        looks_right(who, "admin-tenants-errors")

        form.get_by_label("E-mail domains").fill("northwind.example\nnw-traders.example")
        form.get_by_label("Lockbox on").uncheck()
        done = submit(who, form.get_by_role("button", name="Onboard tenant"))
        assert done.ok and who.page.url.endswith("/admin/tenants/northwind")
        assert "Northwind Traders is onboarded with its lockbox off" in flash(who)
        made = tenants.get_tenant(site.app, pat, "northwind")
        assert made.email_domains == ("northwind.example", "nw-traders.example")
        assert not made.policy.enabled
        looks_right(who, "admin-tenant")

        box = who.page.get_by_role("textbox", name="E-mail domains")
        box.fill("northwind.example\ncontoso.example")
        refused = submit(who, who.page.get_by_role("button", name="Save domains"))
        assert refused.status == 422
        assert "contoso.example already belongs to another tenant" in field_error(who, "domains")
        looks_right(who, "admin-tenant-errors")

        box.fill("northwind.example, northwind.test.example")
        submit(who, who.page.get_by_role("button", name="Save domains"))
        assert "northwind.example, northwind.test.example" in flash(who)
        made = tenants.get_tenant(site.app, pat, "northwind")
        assert made.email_domains == ("northwind.example", "northwind.test.example")
        assert box.input_value() == "northwind.example\nnorthwind.test.example"


# -- staff --------------------------------------------------------------------------------


def test_creating_a_staff_member_resetting_and_deactivating(browser: Browser, site: Site) -> None:
    pat = site.principal("PROVIDER_ADMIN")
    with admin(browser, site) as who:
        who.goto("/admin/users")
        staff_rows = who.page.locator("tbody tr")
        assert staff_rows.count() == 4  # the demo staff; customers' people are not listed
        assert "Paula" not in who.page.locator("main").inner_text()
        looks_right(who, "admin-staff")

        form = who.page.locator("#add-staff")
        form.get_by_label("E-mail address").fill("sam@provider")
        refused = submit(who, form.get_by_role("button", name="Add staff member"))
        assert refused.status == 422
        assert field_error(who, "roles") == "Choose at least one role"
        form.get_by_label("Support engineer").check()
        refused = submit(who, form.get_by_role("button", name="Add staff member"))
        assert refused.status == 422
        assert "is not a valid e-mail address" in field_error(who, "email")
        looks_right(who, "admin-staff-errors")

        form.get_by_label("E-mail address").fill("sam@provider.example")
        form.get_by_label("Name").fill("Sam Okafor")
        done = submit(who, form.get_by_role("button", name="Add staff member"))
        assert done.ok and "Sam Okafor (sam@provider.example) is added" in flash(who)
        sam = users.get_user(site.app, pat, "sam@provider.example")
        assert who.page.url.endswith(f"/admin/users/{sam.id}")
        assert {r.value for r in sam.roles} == {"engineer"} and sam.tenant_id is None
        looks_right(who, "admin-staff-member")

        submit(who, who.page.get_by_role("button", name="E-mail a reset code"))
        assert "one-time reset code is on its way to sam@provider.example" in flash(who)
        mails, _ = outbox.list_outbox(site.app, pat)
        assert [m.topic for m in mails if m.recipient == "sam@provider.example"] == [
            "password_reset"
        ]

        who.page.get_by_role("link", name="Deactivate…").click()
        who.page.wait_for_load_state()
        panel = who.page.locator("#confirm-deactivate")
        assert "cannot sign in" in panel.inner_text()
        assert users.get_user(site.app, pat, sam.id).active  # asking changes nothing
        looks_right(who, "admin-staff-deactivate")
        submit(who, panel.get_by_role("button", name="Deactivate"))
        assert "Sam Okafor is deactivated" in flash(who)
        assert not users.get_user(site.app, pat, sam.id).active

        who.page.get_by_role("link", name="Activate…").click()
        who.page.wait_for_load_state()
        submit(who, who.page.locator("#confirm-activate").get_by_role("button", name="Activate"))
        assert "active again" in flash(who)
        assert users.get_user(site.app, pat, sam.id).active


def test_registering_what_a_resource_service_serves(browser: Browser, site: Site) -> None:
    pat = site.principal("PROVIDER_ADMIN")
    service = site.principal("RESOURCE_SERVICE")
    with admin(browser, site) as who:
        who.goto("/admin/users")
        who.page.get_by_role("link", name="Mail store").click()
        who.page.wait_for_load_state()
        current = who.page.locator("#service")
        assert "Contoso, Fabrikam" in current.inner_text()
        assert "exchange/" in current.inner_text()
        assert current.get_by_label("fabrikam", exact=False).is_checked()
        looks_right(who, "admin-resource-service")

        current.get_by_label("Fabrikam", exact=False).uncheck()
        current.get_by_label("Resource prefixes").fill("exchange/\nsharepoint")
        refused = submit(who, current.get_by_role("button", name="Save registration"))
        assert refused.status == 422
        assert field_error(who, "prefixes").startswith("Line 2: must be '*' or a resource prefix")
        assert resource_services.get_registration(site.app, pat, service.id).tenant_slugs == (
            "contoso",
            "fabrikam",
        )
        looks_right(who, "admin-resource-service-errors")

        current.get_by_label("Resource prefixes").fill("exchange/\nsharepoint/")
        current.get_by_label("Audience").fill("mailstore-eu")
        submit(who, current.get_by_role("button", name="Save registration"))
        assert "now serves what is registered below" in flash(who)
        found = resource_services.get_registration(site.app, pat, service.id)
        assert found.tenant_slugs == ("contoso",)
        assert found.scope.prefixes == ("exchange/", "sharepoint/")
        assert found.scope.audience == "mailstore-eu"

        who.page.get_by_label("Every tenant", exact=False).check()
        submit(who, who.page.get_by_role("button", name="Save registration"))
        assert resource_services.get_registration(site.app, pat, service.id).scope.all_tenants


# -- outbox -------------------------------------------------------------------------------


def park_one(site: Site) -> str:
    """Give a queued message up as failed, the way the worker parks one after its last try."""
    with site.app.tx() as tx:
        claimed = outbox_store.claim(
            tx.conn,
            owner="test-worker",
            now=tx.now,
            lease_until=tx.now + timedelta(minutes=5),
            limit=1,
            skip_locked=False,
        )
        assert claimed, "nothing queued to park"
        outbox_store.mark_failed(
            tx.conn,
            claimed[0].id,
            "test-worker",
            error="SMTP 550: mailbox unavailable",
            next_due=None,
        )
        return claimed[0].id


def test_re_sending_a_parked_message(browser: Browser, site: Site) -> None:
    pat = site.principal("PROVIDER_ADMIN")
    with admin(browser, site) as who:
        who.goto("/admin/outbox")
        assert "No failed messages" in who.page.locator("main").inner_text()
        looks_right(who, "admin-outbox-empty")

        site.submit()
        parked = park_one(site)
        who.goto("/admin/outbox")
        row = who.page.locator("tbody tr")
        assert row.count() == 1
        text = row.inner_text()
        assert "SMTP 550: mailbox unavailable" in text and "mark@provider.example" in text
        assert (
            "Failed (parked): 1"
            in who.page.get_by_role("navigation", name="Messages by status").inner_text()
        )
        looks_right(who, "admin-outbox")

        done = submit(who, row.get_by_role("button", name=re.compile("Send again")))
        assert done.ok and "is queued again" in flash(who)
        assert outbox.get_message(site.app, pat, parked).status == "pending"
        assert who.page.locator("tbody tr").count() == 0

        who.page.get_by_role("link", name=re.compile("All:")).click()
        who.page.wait_for_load_state()
        assert who.page.locator("tbody tr").count() >= 1
        looks_right(who, "admin-outbox-all")


def test_the_outbox_pages_with_a_cursor(browser: Browser, site: Site) -> None:
    with site.app.tx() as tx:
        for n in range(53):
            message = outbox_store.OutboxMessage(
                channel="email",
                topic="review_needed",
                recipient=f"someone{n}@provider.example",
                payload={},
            )
            outbox_store.enqueue(tx.conn, message, tx.now + timedelta(seconds=n))
    site.clock.advance(timedelta(minutes=1))
    for _ in range(53):
        park_one(site)
    with admin(browser, site) as who:
        who.goto("/admin/outbox")
        assert who.page.locator("tbody tr").count() == 50
        assert "someone52@" in who.page.locator("tbody tr").first.inner_text()  # newest first
        who.page.get_by_role("link", name="Next page").click()
        who.page.wait_for_load_state()
        assert "status=failed" in who.page.url and "cursor=" in who.page.url
        rows = who.page.locator("tbody tr")
        assert rows.count() == 3
        assert "someone0@" in rows.last.inner_text()
        assert who.page.get_by_role("link", name="Next page").count() == 0
        looks_right(who, "admin-outbox-page-2")
        who.page.get_by_role("link", name="First page").click()
        who.page.wait_for_load_state()
        assert who.page.locator("tbody tr").count() == 50


# -- signing keys -------------------------------------------------------------------------


def test_rotating_and_retiring_signing_keys(browser: Browser, site: Site) -> None:
    pat = site.principal("PROVIDER_ADMIN")
    first = access.ensure_signing_key(site.app)
    with admin(browser, site) as who:
        who.goto("/admin/keys")
        assert "Active: signs" in who.page.locator("tr", has_text=first).inner_text()
        looks_right(who, "admin-keys")

        who.page.get_by_role("link", name="Rotate now…").click()
        who.page.wait_for_load_state()
        panel = who.page.locator("#confirm-rotate")
        assert "keeps verifying for one token lifetime (5 min)" in panel.inner_text()
        looks_right(who, "admin-keys-rotate")
        submit(who, panel.get_by_role("button", name="Rotate now"))
        assert "signs from now on" in flash(who)
        statuses = {k["kid"]: k["status"] for k in access.list_keys(site.app, pat)}
        assert statuses[first] == "published" and list(statuses.values()).count("active") == 1
        looks_right(who, "admin-keys-rotated")

        who.page.locator("tr", has_text=first).get_by_role(
            "link", name=re.compile("Retire")
        ).click()
        who.page.wait_for_load_state()
        panel = who.page.locator("#confirm-retire")
        assert "stops verifying at once" in panel.inner_text()
        looks_right(who, "admin-keys-retire")
        submit(who, panel.get_by_role("button", name="Retire the key"))
        assert "tokens it signed no longer verify" in flash(who)
        statuses = {k["kid"]: k["status"] for k in access.list_keys(site.app, pat)}
        assert statuses[first] == "retired"

        active = next(kid for kid, status in statuses.items() if status == "active")
        response = who.page.goto(f"{site.base_url}/admin/keys/{active}/retire")
        assert response is not None and response.status == 409
        assert unexpected_problems(who) == []


# -- who may come here --------------------------------------------------------------------


def test_an_engineer_cannot_open_the_admin_pages(browser: Browser, site: Site) -> None:
    with admin(browser, site, "ENGINEER") as erin:
        for path in ADMIN_PAGES:
            response = erin.page.goto(f"{site.base_url}{path}")
            assert response is not None and response.status == 403, path
            assert "Not permitted" in erin.page.locator("h1").inner_text()
        looks_right(erin, "admin-refused")
