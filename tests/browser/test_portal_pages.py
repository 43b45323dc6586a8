"""The support portal in a browser: cases, requesting access on one, the review queue.

Each test walks a person through the pages as they would use them (forms, not
the API), checks the outcome through the service layer, and looks at every page
the way a person and an auditor would: screenshots at laptop and phone widths,
nothing sticking out sideways, axe-core, no console errors or CSP violations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from lockbox.domain.lifecycle import State
from lockbox.service import cases, requests
from tests.browser import harness
from tests.browser.site import MAILBOX, Site, signed_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Response


@contextmanager
def browsing(browser: Browser, site: Site, key: str) -> Iterator[harness.Person]:
    """A signed-in person whose browser clock shows the site's (manual) time.

    ``lockbox.js`` re-renders deadlines with the browser's clock; without this a
    test site's January deadlines would read "expired" on any later real day.
    """
    with signed_in(browser, site, key) as who:
        sync_clock(who, site)
        # Signing in lands on the person's start page, another page group's work: only
        # what happens on the pages tested here counts.
        who.problems.console_errors.clear()
        who.problems.page_errors.clear()
        yield who


def sync_clock(who: harness.Person, site: Site) -> None:
    who.page.clock.set_fixed_time(site.clock.now())


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


#: Chrome logs a page answered with an error status as a console error; these pages mean it.
_EXPECTED_STATUS = re.compile(r"Failed to load resource: .* status of (403|404|409|422) ")


def unexpected_problems(who: harness.Person) -> list[str]:
    """Console errors, uncaught exceptions and CSP violations, except the page's own status."""
    return [p for p in who.problems.all() if not _EXPECTED_STATUS.search(p)]


def submit(who: harness.Person, button: Locator) -> Response:
    """Click a form's submit button and return the response of the page it lands on."""
    with who.page.expect_navigation() as landed:
        button.click()
    response = landed.value
    assert response is not None
    return response


def flash(who: harness.Person) -> str:
    return who.page.locator(".flash").first.inner_text()


def field_error(who: harness.Person, name: str) -> str:
    """The error shown at a field, as one line, without the "Error:" read to screen readers."""
    said = " ".join(who.page.locator(f"#f-{name}-error").inner_text().split())
    return said.removeprefix("Error: ")


# -- requesting access --------------------------------------------------------------------


def test_an_engineer_opens_a_case_and_requests_access_on_it(browser: Browser, site: Site) -> None:
    engineer = site.principal("ENGINEER")
    with browsing(browser, site, "ENGINEER") as erin:
        erin.goto("/requests/new")
        assert "You have no open support cases" in erin.page.locator("main").inner_text()
        looks_right(erin, "portal-new-request-no-cases")
        erin.page.get_by_role("link", name="Open a support case").click()
        assert erin.page.url.endswith("/cases#open-case")

        erin.page.get_by_label("Customer").select_option(label="Contoso")
        erin.page.get_by_label("Title").fill("Alice's mailbox does not sync")
        erin.page.get_by_label("Ticket reference").fill("INC-1042")
        done = submit(erin, erin.page.get_by_role("button", name="Open case"))
        assert done.ok and erin.page.url.endswith("/cases")
        assert "is open" in flash(erin)
        opened = cases.list_cases(site.app, engineer, status="open")
        assert [(c.title, c.reference, c.engineer_id) for c in opened] == [
            ("Alice's mailbox does not sync", "INC-1042", engineer.id)
        ]
        row = erin.page.locator("tr", has_text="Alice's mailbox does not sync")
        assert "Erin (support engineer)" in row.inner_text()
        assert "erin@provider.example" in row.inner_text()
        looks_right(erin, "portal-cases-engineer")

        row.get_by_role("link", name=re.compile("Request access")).click()
        erin.page.wait_for_load_state()
        assert erin.page.url.endswith(f"/requests/new?case={opened[0].id}")
        case_select = erin.page.get_by_label("Support case")
        assert case_select.input_value() == opened[0].id
        assert "Contoso · Alice's mailbox does not sync · INC-1042" in case_select.inner_text()
        assert erin.page.get_by_label("Read", exact=False).first.is_checked()
        looks_right(erin, "portal-new-request")

        # A resource with a space and no justification: field-level errors, nothing sent.
        erin.page.get_by_label("Resources").fill(f"{MAILBOX}\n\nexchange/mailbox/bob smith")
        refused = submit(erin, erin.page.get_by_role("button", name="Send request"))
        assert refused.status == 422
        assert field_error(erin, "resources") == (
            "Line 3: “exchange/mailbox/bob smith” has a space; resource names have none"
        )
        assert "the customer reads it" in field_error(erin, "justification")
        summary = erin.page.locator(".error-summary")
        assert summary.get_by_role("link", name=re.compile("Line 3")).get_attribute("href") == (
            "#f-resources"
        )
        assert requests.list_requests(site.app, engineer).items == []
        assert erin.page.get_by_label("Resources").input_value().endswith("bob smith")
        looks_right(erin, "portal-new-request-errors")

        erin.page.get_by_label("Resources").fill(f"{MAILBOX}\nexchange/archive/*")
        erin.page.get_by_label("Read and write").check()
        erin.page.get_by_label("Justification").fill("Alice's phone shows old mail; check sync")
        sent = submit(erin, erin.page.get_by_role("button", name="Send request"))
        match = re.search(r"/requests/(?P<id>[^/?#]+)$", erin.page.url)
        assert match, erin.page.url
        assert sent.request.redirected_from is not None
        created = requests.get_request(site.app, engineer, match["id"])
        assert created.state is State.PENDING_REVIEW
        assert created.request.resources == (MAILBOX, "exchange/archive/*")
        assert created.request.access_level.value == "read_write"
        assert created.request.case_id == opened[0].id


def test_the_forms_work_without_javascript(browser: Browser, site: Site) -> None:
    engineer = site.principal("ENGINEER")
    with signed_in(browser, site, "ENGINEER", java_script_enabled=False) as erin:
        erin.goto("/cases")
        erin.page.get_by_label("Customer").select_option(label="Fabrikam")
        erin.page.get_by_label("Title").fill("Shared calendar is empty")
        submit(erin, erin.page.get_by_role("button", name="Open case"))
        erin.page.get_by_role("link", name=re.compile("Request access on")).click()
        erin.page.wait_for_load_state()
        erin.page.get_by_label("Resources").fill("exchange/calendar/*")
        erin.page.get_by_label("Justification").fill("The shared calendar shows no events")
        submit(erin, erin.page.get_by_role("button", name="Send request"))
        assert re.search(r"/requests/[^/]+$", erin.page.url)
        sent = requests.list_requests(site.app, engineer).items
        assert [(v.request.resources, v.request.access_level.value) for v in sent] == [
            (("exchange/calendar/*",), "read")
        ]


def test_the_request_form_offers_only_the_engineers_own_open_cases(
    browser: Browser, site: Site
) -> None:
    mine = site.open_case("Calendar sync fails")
    theirs = cases.open_case(
        site.app,
        site.principal("MANAGER"),
        tenant="fabrikam",
        title="Assigned to Erin by Mark",
        engineer=site.principal("ENGINEER").id,
    ).id
    closed = site.open_case("An old problem")
    cases.close_case(site.app, site.principal("ENGINEER"), closed)
    with browsing(browser, site, "ENGINEER") as erin:
        erin.goto(f"/requests/new?case={closed}")
        options = erin.page.get_by_label("Support case").locator("option")
        values = [options.nth(i).get_attribute("value") for i in range(options.count())]
        assert sorted(v for v in values if v) == sorted([mine, theirs])
        assert erin.page.get_by_label("Support case").input_value() == ""
        assert unexpected_problems(erin) == []


# -- the review queue ---------------------------------------------------------------------


def test_the_managers_queue_lists_requests_to_review_with_time_left(
    browser: Browser, site: Site
) -> None:
    with browsing(browser, site, "MANAGER") as mark:
        mark.goto("/reviews")
        assert "No requests are waiting for review" in mark.page.locator("main").inner_text()
        looks_right(mark, "portal-reviews-empty")

        rid = site.submit(justification="Alice's phone shows old mail; check the sync state")
        site.clock.advance(timedelta(minutes=20))
        sync_clock(mark, site)
        mark.goto("/reviews")
        row = mark.page.locator("tbody tr")
        assert row.count() == 1
        text = row.inner_text()
        assert "Erin (support engineer)" in text and "erin@provider.example" in text
        assert "Contoso" in text and "Alice's mailbox does not sync" in text
        assert MAILBOX in text and "Read" in text
        assert "Alice's phone shows old mail" in text
        assert row.locator("[data-deadline]").inner_text() == "in 11 h 40 min"
        link = row.get_by_role("link", name=re.compile("Review"))
        assert link.get_attribute("href") == f"/requests/{rid}"
        looks_right(mark, "portal-reviews")


def test_the_queue_is_for_managers(browser: Browser, site: Site) -> None:
    with browsing(browser, site, "ENGINEER") as erin:
        response = erin.page.goto(f"{site.base_url}/reviews")
        assert response is not None and response.status == 403
        assert unexpected_problems(erin) == []


# -- cases --------------------------------------------------------------------------------


def test_closing_a_case_asks_first_and_ends_its_open_requests(browser: Browser, site: Site) -> None:
    first = site.submit()
    case_id = requests.get_request(site.app, site.principal("ENGINEER"), first).request.case_id
    second = requests.submit_request(
        site.app,
        site.principal("ENGINEER"),
        tenant="contoso",
        case_id=case_id,
        resources=["exchange/mailbox/bob@contoso.com"],
        access_level="read",
        justification="Bob's mailbox too",
    ).id
    requests.review_request(site.app, site.principal("MANAGER"), second, approve=True)
    requests.decide_request(site.app, site.principal("CONTOSO_APPROVER"), second, approve=True)
    with browsing(browser, site, "ENGINEER") as erin:
        erin.goto("/cases")
        row = erin.page.locator("tr", has_text="Alice's mailbox does not sync")
        row.get_by_role("link", name=re.compile("Close")).click()
        erin.page.wait_for_load_state()
        assert erin.page.url.endswith(f"/cases/{case_id}/close")
        panel = erin.page.locator("#confirm-close")
        assert "Every open request on this case ends now: 2 requests" in panel.inner_text()
        assert panel.locator(f'a[href="/requests/{first}"]').count() == 1
        looks_right(erin, "portal-close-case")

        done = submit(erin, panel.get_by_role("button", name="Close the case"))
        assert done.ok and erin.page.url.endswith("/cases")
        assert "2 open requests on it ended" in flash(erin)
        # Pending requests end as canceled, granted access as closed.
        ended = {
            rid: requests.get_request(site.app, site.principal("ENGINEER"), rid).state
            for rid in (first, second)
        }
        assert ended == {first: State.CANCELED, second: State.CLOSED}
        closed = erin.page.locator("section", has_text="Closed cases").locator("tbody tr")
        assert "Alice's mailbox does not sync" in closed.inner_text()
        assert not erin.page.locator("#open-title + .table-wrap").count()
        looks_right(erin, "portal-cases-after-close")


def test_a_manager_sees_every_case_and_assigns_new_ones(browser: Browser, site: Site) -> None:
    site.open_case("Erin's own case")
    with browsing(browser, site, "MANAGER") as mark:
        mark.goto("/cases")
        assert "Erin's own case" in mark.page.locator("main").inner_text()
        mark.page.get_by_label("Customer").select_option(label="Fabrikam")
        mark.page.get_by_label("Title").fill("Shared calendar is empty")
        refused = submit(mark, mark.page.get_by_role("button", name="Open case"))
        assert refused.status == 422
        assert "Choose the engineer" in field_error(mark, "engineer")
        assert len(cases.list_cases(site.app, site.principal("MANAGER"))) == 1
        mark.page.get_by_label("Engineer").select_option(
            label="Erin (support engineer) (erin@provider.example)"
        )
        submit(mark, mark.page.get_by_role("button", name="Open case"))
        assert "assigned to Erin (support engineer) <erin@provider.example>" in flash(mark)
        made = [
            c
            for c in cases.list_cases(site.app, site.principal("MANAGER"))
            if c.title == ("Shared calendar is empty")
        ]
        assert [c.engineer_id for c in made] == [site.principal("ENGINEER").id]
        looks_right(mark, "portal-cases-manager")


def test_customers_cannot_open_the_support_portal(browser: Browser, site: Site) -> None:
    site.open_case()
    with browsing(browser, site, "CONTOSO_APPROVER") as paula:
        for path in ("/cases", "/requests/new", "/reviews"):
            response = paula.page.goto(f"{site.base_url}{path}")
            assert response is not None and response.status in (403, 404), path
            assert "Alice's mailbox" not in paula.page.locator("main").inner_text()
        looks_right(paula, "portal-customer-refused")
