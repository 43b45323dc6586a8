"""The request pages in Chromium, as the people who use them click through them.

Each test signs people in through the form (one browser context each), sets
the scene through the service layer (``site.submit()`` …) and then does what
is tested only with the browser. Every page visited is checked the same way
(:func:`look`): axe-core finds no serious or critical problem, there is no
console error or CSP violation, nothing sticks out sideways on a phone, and
screenshots at laptop and phone widths land in ``var/screenshots/requests-*``.

The browser's clock is pinned to the site's manual clock, so the deadlines
``lockbox.js`` re-renders read the same as the server's ("in 12 h").
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

from lockbox.domain.lifecycle import State
from lockbox.service import requests, tenants
from tests.browser import harness
from tests.browser.site import MAILBOX, Site, signed_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog, Page

HOSTILE = "<script>alert(1)</script> <img src=x onerror=alert(1)> please"


def look(who: harness.Person, name: str, status: int | None = None) -> None:
    """Accessible, clean, fits a phone, photographed (``var/screenshots/requests-<name>-*.png``).

    ``status``: the page is an intended error answer (422, 404, 409); Chrome logs every
    such document as a failed resource, which is the only console error allowed then.
    """
    violations = harness.axe_violations(who.page)
    assert violations == [], harness.describe(violations)
    harness.shot(who.page, f"requests-{name}")
    who.page.set_viewport_size(harness.PHONE)
    try:
        assert harness.horizontal_overflow(who.page) == []
        violations = harness.axe_violations(who.page)
        assert violations == [], harness.describe(violations)
    finally:
        who.page.set_viewport_size(harness.DESKTOP)
    if status is not None:
        errors = who.problems.console_errors
        errors[:] = [m for m in errors if f"status of {status} " not in m]
    assert who.problems.all() == []


def pin_clock(who: harness.Person, site: Site) -> None:
    """The browser's ``Date.now()`` is the site's clock (timers keep running)."""
    who.context.clock.set_fixed_time(site.clock.now())


def state_of(site: Site, rid: str) -> State:
    return requests.get_request(site.app, site.principal("MANAGER"), rid).state


def badge(page: Page) -> str:
    return page.get_by_test_id("status").locator(".badge-text").inner_text()


def flash(page: Page) -> str:
    """The first message, without the break opportunities resource names carry in it."""
    return page.locator(".flash").first.inner_text().replace("\u200b", "")


def main_text(page: Page) -> str:
    return page.locator("main").inner_text()


# --------------------------------------------------------------------------- the approver


def test_the_queue_shows_what_to_decide_and_approval_is_confirmed(
    browser: Browser, site: Site
) -> None:
    rid = site.pending_approval()
    with signed_in(browser, site, "CONTOSO_APPROVER") as paula:
        pin_clock(paula, site)
        paula.goto("/approvals")
        row = paula.page.locator(f"tr[data-request='{rid}']")
        text = row.inner_text()
        for expected in ("Erin (support engineer)", "erin@provider.example", MAILBOX):
            assert expected in text
        assert "Alice's mailbox does not sync" in text
        assert "Inspect the sync state of Alice's mailbox" in text
        assert "Mark (support manager)" in text and "0 of 1" in text
        assert row.locator("[data-deadline]").inner_text() == "in 12 h"
        look(paula, "approvals-queue")

        row.get_by_role("link", name="Approve").click()
        paula.page.wait_for_url(f"**/requests/{rid}/approve")
        grant = paula.page.get_by_test_id("grant").inner_text()
        assert "If you approve, Erin (support engineer) (erin@provider.example) of Acme Cloud" in (
            grant
        )
        assert f"can read {MAILBOX} until about 5 Jan 2026, 13:00 UTC" in grant
        assert "4 hours after your approval" in grant
        assert state_of(site, rid) is State.PENDING_APPROVAL
        look(paula, "approve-confirm")

        paula.page.get_by_label("Comment").fill("today only")
        paula.page.get_by_role("button", name="Confirm approval").click()
        paula.page.wait_for_url(f"**/requests/{rid}")
        assert badge(paula.page) == "Approved"
        assert flash(paula.page) == (
            f"Access approved: Erin (support engineer) can read {MAILBOX} "
            "until 5 Jan 2026, 13:00 UTC."
        )
        history = paula.page.get_by_test_id("history").inner_text()
        assert "Erin (support engineer) submitted the request" in history
        assert "Mark (support manager) forwarded it to Contoso" in history
        assert "Paula approved: “today only”" in history
        assert state_of(site, rid) is State.APPROVED
        look(paula, "request-approved")


def test_an_empty_queue_says_what_will_appear(browser: Browser, site: Site) -> None:
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as ines:
        ines.goto("/approvals")
        text = main_text(ines.page)
        assert "Nothing is waiting for your approval." in text
        assert (
            "When Acme Cloud's support asks for access, it appears here and you get an e-mail."
            in (text)
        )
        look(ines, "approvals-empty")


def test_with_two_approvals_needed_the_first_says_so(browser: Browser, site: Site) -> None:
    tenants.change_policy(
        site.app, site.principal("CONTOSO_TENANT_ADMIN"), "contoso", {"required_approvals": 2}
    )
    rid = site.pending_approval()
    with signed_in(browser, site, "CONTOSO_APPROVER") as paula:
        pin_clock(paula, site)
        paula.goto(f"/requests/{rid}/approve")
        assert "This is approval 1 of 2; access starts when the last one arrives." in (
            paula.page.get_by_test_id("approval-count").inner_text()
        )
        look(paula, "approve-confirm-1-of-2")
        paula.page.get_by_role("button", name="Confirm approval").click()
        paula.page.wait_for_url(f"**/requests/{rid}")
        assert badge(paula.page) == "Pending approval"
        assert "Your approval is recorded (1 of 2)" in flash(paula.page)
        assert paula.page.get_by_role("link", name="Approve", exact=True).count() == 0
        paula.goto("/approvals")
        assert "You approved; waiting for another approver" in main_text(paula.page)


def test_deny_needs_a_reason_and_a_blank_one_changes_nothing(browser: Browser, site: Site) -> None:
    rid = site.pending_approval()
    with signed_in(browser, site, "CONTOSO_APPROVER") as paula:
        pin_clock(paula, site)
        paula.goto(f"/requests/{rid}")
        paula.page.get_by_role("link", name="Deny", exact=True).click()
        paula.page.wait_for_url(f"**/requests/{rid}/deny")
        look(paula, "deny-form")
        with paula.page.expect_response(f"**/requests/{rid}/deny") as answer:
            paula.page.get_by_role("button", name="Deny access").click()
        assert answer.value.status == 422
        assert paula.page.locator(".error-summary").is_visible()
        field_error = paula.page.locator("#f-comment-error").inner_text()
        assert "Say why you deny it; the engineer reads this" in field_error
        assert state_of(site, rid) is State.PENDING_APPROVAL
        look(paula, "deny-error", status=422)

        paula.page.get_by_label("Why do you deny it?").fill("Use the export we sent instead")
        paula.page.get_by_role("button", name="Deny access").click()
        paula.page.wait_for_url(f"**/requests/{rid}")
        assert badge(paula.page) == "Denied"
        assert "Paula denied it: “Use the export we sent instead”" in (
            paula.page.get_by_test_id("history").inner_text()
        )
        assert state_of(site, rid) is State.DENIED
        look(paula, "request-denied")


def test_revoke_ends_active_access(browser: Browser, site: Site) -> None:
    rid = site.approved()
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as ines:
        pin_clock(ines, site)
        ines.goto("/access")
        row = ines.page.locator(f"tr[data-request='{rid}']")
        assert "Erin (support engineer)" in row.inner_text() and MAILBOX in row.inner_text()
        assert row.locator("[data-deadline]").inner_text() == "in 4 h"
        look(ines, "access-customer")
        row.get_by_role("link", name="Revoke").click()
        ines.page.wait_for_url(f"**/requests/{rid}/revoke")
        assert "Erin (support engineer) loses access at once" in main_text(ines.page)
        look(ines, "revoke-confirm")
        ines.page.get_by_label("Comment").fill("done, thanks")
        ines.page.get_by_role("button", name="Revoke access now").click()
        ines.page.wait_for_url(f"**/requests/{rid}")
        assert badge(ines.page) == "Revoked"
        assert flash(ines.page).startswith("Access revoked: Erin (support engineer) can no longer")
        assert state_of(site, rid) is State.REVOKED
        ines.goto("/access")
        assert "Nobody at Acme Cloud can reach your content right now." in main_text(ines.page)
        look(ines, "access-empty")


# --------------------------------------------------------------------------- the provider


def test_the_manager_forwards_one_request_and_rejects_another(browser: Browser, site: Site) -> None:
    forward, reject = site.submit(), site.submit(case_title="Calendar sharing broken")
    with signed_in(browser, site, "MANAGER") as mark:
        pin_clock(mark, site)
        mark.goto("/requests")
        assert mark.page.locator(f"tr[data-request='{forward}']").is_visible()
        look(mark, "list-manager")
        mark.goto(f"/requests/{forward}")
        look(mark, "review-form")
        mark.page.get_by_label("Your review").fill("justified")
        mark.page.get_by_role("button", name="Forward to Contoso").click()
        mark.page.wait_for_url(f"**/requests/{forward}")
        assert badge(mark.page) == "Pending approval"
        assert flash(mark.page) == "Forwarded to Contoso for approval."
        assert "Mark (support manager) forwarded it to Contoso: “justified”" in (
            mark.page.get_by_test_id("history").inner_text()
        )

        mark.goto(f"/requests/{reject}")
        with mark.page.expect_response(f"**/requests/{reject}/review") as answer:
            mark.page.get_by_role("button", name="Reject").click()
        assert answer.value.status == 422
        assert "Say why you reject it" in mark.page.locator("#f-comment-error").inner_text()
        assert state_of(site, reject) is State.PENDING_REVIEW
        look(mark, "review-error", status=422)
        mark.page.get_by_label("Your review").fill("Ask the customer for an export first")
        mark.page.get_by_role("button", name="Reject").click()
        mark.page.wait_for_url(f"**/requests/{reject}")
        assert badge(mark.page) == "Rejected"
        assert state_of(site, reject) is State.REJECTED


def test_the_engineer_gets_a_token_shown_once(browser: Browser, site: Site) -> None:
    rid = site.approved()
    with signed_in(browser, site, "ENGINEER") as erin:
        pin_clock(erin, site)
        erin.goto("/requests")
        look(erin, "list-engineer")
        erin.goto("/access")
        look(erin, "access-engineer")
        erin.page.locator(f"tr[data-request='{rid}']").get_by_role(
            "button", name="Get token"
        ).click()
        erin.page.wait_for_load_state()
        token = erin.page.get_by_test_id("access-token").inner_text()
        assert re.fullmatch(r"ey[\w-]+\.[\w-]+\.[\w-]+", token)
        assert "Copy it now: it is shown this once." in main_text(erin.page)
        assert erin.page.get_by_test_id("token-expiry").locator("[data-deadline]").inner_text() == (
            "in 5 min"
        )
        assert 'curl -H "Authorization: Bearer $TOKEN"' in main_text(erin.page)
        look(erin, "token")
        erin.goto(f"/requests/{rid}/token")
        assert erin.page.url.endswith(f"/requests/{rid}")
        assert token not in erin.page.content()
        assert "shown only once" in flash(erin.page)
        assert "got an access token" in erin.page.get_by_test_id("history").inner_text()


def test_the_engineer_withdraws_and_closes(browser: Browser, site: Site) -> None:
    pending, active = site.submit(), site.approved(case_title="Calendar sharing broken")
    with signed_in(browser, site, "ENGINEER") as erin:
        pin_clock(erin, site)
        erin.goto(f"/requests/{pending}")
        look(erin, "request-pending-review-engineer")
        erin.page.get_by_role("link", name="Withdraw the request").click()
        look(erin, "cancel-confirm")
        erin.page.get_by_role("button", name="Withdraw the request").click()
        erin.page.wait_for_url(f"**/requests/{pending}")
        assert badge(erin.page) == "Canceled"
        erin.goto(f"/requests/{active}")
        erin.page.get_by_role("link", name="Close and end access").click()
        look(erin, "close-confirm")
        erin.page.get_by_role("button", name="Close and end access").click()
        erin.page.wait_for_url(f"**/requests/{active}")
        assert badge(erin.page) == "Closed"
        look(erin, "request-closed")
        assert state_of(site, active) is State.CLOSED


# --------------------------------------------------------------------------- who sees what


def test_a_fabrikam_approver_cannot_see_contosos_request(browser: Browser, site: Site) -> None:
    rid = site.pending_approval()
    with signed_in(browser, site, "FABRIKAM_APPROVER") as fred:
        fred.goto("/requests")
        assert rid not in fred.page.content()
        assert "There are no access requests yet." in main_text(fred.page)
        look(fred, "list-empty")
        fred.goto("/approvals")
        assert rid not in fred.page.content()
        foreign = fred.page.goto(f"{site.base_url}/requests/{rid}")
        assert foreign is not None and foreign.status == 404
        foreign_text = main_text(fred.page)
        look(fred, "not-found", status=404)
        made_up = fred.page.goto(f"{site.base_url}/requests/req_{'0' * 26}")
        assert made_up is not None and made_up.status == 404
        assert main_text(fred.page) == foreign_text
        approve = fred.page.goto(f"{site.base_url}/requests/{rid}/approve")
        assert approve is not None and approve.status == 404


def test_a_request_changed_meanwhile_gives_the_has_changed_page(
    browser: Browser, site: Site
) -> None:
    rid = site.pending_approval()
    with (
        signed_in(browser, site, "CONTOSO_APPROVER") as paula,
        signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as ines,
    ):
        paula.goto(f"/requests/{rid}/approve")
        ines.goto(f"/requests/{rid}/approve")
        ines.page.get_by_role("button", name="Confirm approval").click()
        ines.page.wait_for_url(f"**/requests/{rid}")
        assert badge(ines.page) == "Approved"
        with paula.page.expect_response(f"**/requests/{rid}/approve") as answer:
            paula.page.get_by_role("button", name="Confirm approval").click()
        assert answer.value.status == 409
        assert paula.page.get_by_role("heading", level=1).inner_text().endswith("This has changed")
        changed = paula.page.get_by_test_id("changed").inner_text()
        assert "Nothing was changed." in changed
        assert paula.page.get_by_test_id("changed").locator(".badge-text").inner_text() == (
            "Approved"
        )
        assert "Ines approved; access started." in changed
        look(paula, "has-changed", status=409)
        decided = requests.get_request(site.app, site.principal("MANAGER"), rid).request
        assert [d.actor_id for d in decided.decisions] == [
            site.principal("CONTOSO_TENANT_ADMIN").id
        ]


def test_approval_works_with_the_keyboard_alone(browser: Browser, site: Site) -> None:
    rid = site.pending_approval()
    with signed_in(browser, site, "CONTOSO_APPROVER") as paula:
        paula.goto(f"/requests/{rid}")
        tab_to(paula.page, "Approve")
        paula.page.keyboard.press("Enter")
        paula.page.wait_for_url(f"**/requests/{rid}/approve")
        tab_to(paula.page, "Confirm approval")
        paula.page.keyboard.press("Enter")
        paula.page.wait_for_url(f"**/requests/{rid}")
        assert badge(paula.page) == "Approved"
        assert state_of(site, rid) is State.APPROVED


def tab_to(page: Page, name: str, most: int = 60) -> None:
    """Press Tab until the focused element's text is ``name`` (only the keyboard moves focus)."""
    for _ in range(most):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement && document.activeElement.innerText")
        if isinstance(focused, str) and focused.strip() == name:
            return
    raise AssertionError(f"{name!r} cannot be reached with Tab")


def test_hostile_justification_is_inert_text(browser: Browser, site: Site) -> None:
    rid = site.pending_approval(justification=HOSTILE)
    with signed_in(browser, site, "CONTOSO_APPROVER") as paula:
        dialogs: list[str] = []

        def on_dialog(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        paula.page.on("dialog", on_dialog)
        for path in (f"/requests/{rid}", "/approvals", f"/requests/{rid}/approve"):
            paula.goto(path)
            assert HOSTILE in main_text(paula.page).replace("\n", " ")
            assert paula.page.locator("main script, main img").count() == 0
        paula.goto(f"/requests/{rid}")
        assert paula.page.get_by_test_id("justification").inner_text() == HOSTILE
        assert dialogs == []
        assert paula.problems.all() == []


def test_a_request_past_its_approval_window_reads_expired(browser: Browser, site: Site) -> None:
    rid = site.pending_approval()
    site.clock.advance(timedelta(hours=12, minutes=1))
    with signed_in(browser, site, "CONTOSO_APPROVER") as paula:
        pin_clock(paula, site)
        paula.goto(f"/requests/{rid}")
        assert badge(paula.page) == "Expired"
        assert paula.page.get_by_role("link", name="Approve", exact=True).count() == 0
        assert "What you can do" not in main_text(paula.page)
        history = paula.page.get_by_test_id("history").inner_text()
        assert "Nobody decided before the deadline; the request expired" in history
        look(paula, "request-expired")
        refused = paula.page.goto(f"{site.base_url}/requests/{rid}/approve")
        assert refused is not None and refused.status == 409
        paula.goto("/approvals")
        assert rid not in paula.page.content()


def test_customers_filter_their_requests_by_state(browser: Browser, site: Site) -> None:
    waiting, active = site.pending_approval(), site.approved(case_title="Calendar sharing broken")
    with signed_in(browser, site, "CONTOSO_AUDITOR") as audrey:
        pin_clock(audrey, site)
        audrey.goto("/requests")
        assert {waiting, active} <= set(
            audrey.page.locator("tr[data-request]").evaluate_all(
                "rows => rows.map(r => r.dataset.request)"
            )
        )
        look(audrey, "list-customer")
        audrey.page.get_by_label("Show").select_option("approved")
        audrey.page.get_by_role("button", name="Show").click()
        audrey.page.wait_for_url("**/requests?state=approved")
        rows = audrey.page.locator("tr[data-request]")
        assert rows.count() == 1 and rows.first.get_attribute("data-request") == active
        audrey.goto(f"/requests/{active}")
        assert "What you can do" not in main_text(audrey.page)
        look(audrey, "request-auditor")


def test_approval_works_without_javascript(browser: Browser, site: Site) -> None:
    rid = site.pending_approval()
    with signed_in(browser, site, "CONTOSO_APPROVER", java_script_enabled=False) as paula:
        paula.goto("/approvals")
        assert paula.page.locator(f"tr[data-request='{rid}'] [data-deadline]").inner_text() == (
            "in 12 h"
        )
        paula.page.get_by_role("link", name="Approve").click()
        paula.page.get_by_label("Comment").fill("no script needed")
        paula.page.get_by_role("button", name="Confirm approval").click()
        paula.page.wait_for_url(f"**/requests/{rid}")
        assert badge(paula.page) == "Approved"
        assert paula.problems.all() == []
