"""Delegating approvals from "Your account", in Chromium (``var/screenshots/requests-delegate-*``)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from lockbox.service import delegations
from tests.browser.site import Site, signed_in
from tests.browser.test_requests_pages import flash, look, pin_clock

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def test_an_approver_delegates_from_the_account_page(browser: Browser, site: Site) -> None:
    last_day = (site.clock.now() + timedelta(days=6)).date().isoformat()
    with signed_in(browser, site, "CONTOSO_APPROVER") as paula:
        pin_clock(paula, site)
        paula.goto("/account")
        page = paula.page
        page.get_by_label("Colleague's e-mail address").fill("paula@contoso.example")
        page.get_by_label("Until the end of").fill(last_day)
        page.get_by_role("button", name="Delegate my approvals").click()
        assert "someone else than yourself" in page.locator(".error-summary").inner_text()
        look(paula, "delegate-refused", status=422)
        page.get_by_label("Colleague's e-mail address").fill("ines@contoso.example")
        page.get_by_label("Until the end of").fill(last_day)
        page.get_by_label("Reason").fill("holiday")
        page.get_by_role("button", name="Delegate my approvals").click()
        page.wait_for_url("**/account*")
        assert "Your approvals are delegated until" in flash(page)
        assert "Ines holds your approvals" in page.get_by_test_id("delegations").inner_text()
        look(paula, "delegate-made")
    held = delegations.list_delegations(site.app, site.principal("CONTOSO_TENANT_ADMIN"))
    assert [d.reason for d in held] == ["holiday"]
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as ines:
        pin_clock(ines, site)
        ines.goto("/account")
        listed = ines.page.get_by_test_id("delegations")
        assert "You hold the approvals of Paula" in listed.inner_text()
        listed.get_by_role("button", name="End now").click()
        ines.page.wait_for_url("**/account")
        assert "The delegation is ended." in flash(ines.page)
        look(ines, "delegate-ended")
    assert delegations.list_delegations(site.app, site.principal("CONTOSO_TENANT_ADMIN")) == []
