"""Granting less than asked, and asking for (and granting) more time, in Chromium.

Paula approves read access to one of two mailboxes for an hour where the engineer asked
read and write on both; Erin then asks for more time from the request page, and Ines
approves it. Every page is checked and photographed like the other request pages
(``var/screenshots/requests-narrow-*`` and ``requests-extend-*``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from lockbox.domain.lifecycle import State
from lockbox.domain.resources import AccessLevel
from lockbox.service import requests
from tests.browser.site import MAILBOX, Site, signed_in
from tests.browser.test_requests_pages import flash, look, pin_clock

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CALENDAR = "exchange/calendar/alice@contoso.example"


def test_an_approver_grants_less_than_asked(browser: Browser, site: Site) -> None:
    rid = site.pending_approval(resources=[MAILBOX, CALENDAR], level="read_write")
    with signed_in(browser, site, "CONTOSO_APPROVER") as paula:
        pin_clock(paula, site)
        paula.goto(f"/requests/{rid}/approve")
        page = paula.page
        page.get_by_text("Grant less than asked").click()
        look(paula, "narrow-form")
        # Nothing chosen is refused, naming the field, and nothing changes.
        page.get_by_label(MAILBOX).uncheck()
        page.get_by_label(CALENDAR).uncheck()
        page.get_by_role("button", name="Confirm approval").click()
        assert "Choose at least one resource" in page.locator(".error-summary").inner_text()
        look(paula, "narrow-refused", status=422)
        page.get_by_label(MAILBOX).check()
        page.get_by_label("Read only").check()
        page.get_by_label("For how long").select_option(label="1 hour")
        page.get_by_role("button", name="Confirm approval").click()
        page.wait_for_url(f"**/requests/{rid}")
        assert "Access approved (less than asked)" in flash(page)
        asked = page.get_by_test_id("asked").inner_text()
        assert CALENDAR in asked and "granted less" in asked
        assert "granting less than asked: read access" in page.locator("main").inner_text()
        look(paula, "narrow-approved")
    done = requests.get_request(site.app, site.principal("MANAGER"), rid).request
    assert done.resources == (MAILBOX,) and done.access_level is AccessLevel.READ
    assert done.access_deadline == done.approved_at + timedelta(hours=1)  # type: ignore[operator]


def test_the_engineer_asks_for_more_time_and_the_customer_grants_it(
    browser: Browser, site: Site
) -> None:
    rid = site.approved()
    before = requests.get_request(site.app, site.principal("MANAGER"), rid).request
    with signed_in(browser, site, "ENGINEER") as erin:
        pin_clock(erin, site)
        erin.goto(f"/requests/{rid}")
        page = erin.page
        page.get_by_test_id("ask-extension").locator("summary").click()
        page.get_by_role("button", name="Ask for more time").click()
        assert "Say why you need more time" in page.locator(".error-summary").inner_text()
        look(erin, "extend-refused", status=422)
        page.get_by_label("How much more").select_option(label="2 hours")
        page.get_by_label("Why").fill("The re-index takes two more hours")
        page.get_by_role("button", name="Ask for more time").click()
        page.wait_for_url(f"**/requests/{rid}")
        assert "More time asked" in flash(page)
        look(erin, "extend-asked")
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as ines:
        pin_clock(ines, site)
        ines.goto("/approvals")
        queue = ines.page.get_by_test_id("more-time")
        assert "asks for 2 hours more" in queue.inner_text()
        look(ines, "extend-queue")
        queue.get_by_role("link").first.click()
        ines.page.wait_for_url(f"**/requests/{rid}")
        panel = ines.page.get_by_test_id("extension")
        assert "More time asked: 2 hours" in panel.inner_text()
        assert "The re-index takes two more hours" in panel.inner_text()
        look(ines, "extend-decide")
        ines.page.get_by_role("button", name="Approve more time").click()
        ines.page.wait_for_url(f"**/requests/{rid}")
        assert "More time approved" in flash(ines.page)
        assert "approved 2 hours more" in ines.page.locator("main").inner_text()
        look(ines, "extend-approved")
    after = requests.get_request(site.app, site.principal("MANAGER"), rid)
    assert after.state is State.APPROVED and after.request.extensions == 1
    assert after.request.access_deadline == before.access_deadline + timedelta(hours=2)  # type: ignore[operator]


def test_the_engineer_schedules_the_start_of_access(browser: Browser, site: Site) -> None:
    case_id = site.open_case("Saturday night maintenance")
    start = site.clock.now() + timedelta(days=2, hours=13)  # Wednesday 22:00 UTC
    with signed_in(browser, site, "ENGINEER") as erin:
        pin_clock(erin, site)
        erin.goto(f"/requests/new?case={case_id}")
        page = erin.page
        page.get_by_label("Resources").fill(MAILBOX)
        page.get_by_label("Justification").fill("Planned index rebuild")
        page.get_by_label("Start access at").fill("2026-02-01T22:00")  # more than 7 days ahead
        page.get_by_role("button", name="Send request").click()
        assert "7 days ahead" in page.locator(".error-summary").inner_text()
        look(erin, "schedule-refused", status=422)
        page.get_by_label("Start access at").fill(start.strftime("%Y-%m-%dT%H:%M"))
        page.get_by_role("button", name="Send request").click()
        page.wait_for_url("**/requests/req_*")
        assert "Access starts" in page.get_by_test_id("starts").inner_text()
        look(erin, "schedule-sent")
    mine = requests.list_requests(site.app, site.principal("ENGINEER")).items
    assert [v.request.starts_at for v in mine] == [start]
