"""Auto-approval and four eyes in a browser: a tenant admin writes a rule, the rule approves
a request (the request page says so), and with a second tenant admin a new rule and a policy
change that widens access wait until the other admin decides.

Every page is checked like the other tenant pages (axe, no sideways scrolling on a phone,
no console or CSP problems) and photographed at laptop and phone widths
(var/screenshots/tenant-auto-approval-*.png).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lockbox.domain.auto_approval import RuleState
from lockbox.domain.changes import ChangeState
from lockbox.domain.lifecycle import State
from lockbox.domain.roles import Principal
from lockbox.service import auto_approval, cases, changes, requests, tenants, users
from tests.browser import harness
from tests.browser.site import MAILBOX, Site, sign_in, signed_in
from tests.browser.test_tenant_pages import check_page, field_error, flash, submit

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

IVAN = ("ivan@contoso.example", "a second admin's own passphrase")


def fill_rule(page: Page, name: str, *, zone: str = "Europe/Berlin") -> None:
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Resources").fill("exchange/mailbox/*")
    page.get_by_label("Incident (something is broken now)").check()
    page.get_by_label("Hours").fill("08:00-18:00")
    page.get_by_label("Time zone").fill(zone)
    page.get_by_label("Longest access").fill("1h")


def forwarded_incident(site: Site) -> str:
    """A request for Alice's mailbox, for an incident, that the manager forwarded."""
    engineer = site.principal("ENGINEER")
    case_id = cases.open_case(site.app, engineer, tenant="contoso", title="Mail is lost").id
    rid = requests.submit_request(
        site.app,
        engineer,
        tenant="contoso",
        case_id=case_id,
        resources=[MAILBOX],
        access_level="read",
        justification="Alice's mail disappears",
        category="incident",
    ).id
    requests.review_request(site.app, site.principal("MANAGER"), rid, approve=True)
    return rid


def test_a_tenant_admin_writes_a_rule_that_approves_a_request(browser: Browser, site: Site) -> None:
    admin = site.principal("CONTOSO_TENANT_ADMIN")
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as who:
        page = who.page
        who.goto("/policy")
        page.get_by_role("navigation", name="Main").get_by_role(
            "link", name="Auto-approval"
        ).click()
        page.wait_for_load_state()
        assert page.url.endswith("/auto-approval")
        assert "Nothing is waiting for a second admin" in page.locator("main").inner_text()
        assert "your changes apply at once" in page.locator("main").inner_text()
        check_page(who, "tenant-auto-approval-empty")

        # A time zone that does not exist: said next to the field, nothing saved.
        fill_rule(page, "Mailboxes during incidents", zone="Mars/Olympus")
        assert submit(page, "Save rule") == 422
        assert "is not a time zone name" in field_error(page, "time_zone")
        assert page.get_by_label("Name", exact=True).input_value() == "Mailboxes during incidents"
        check_page(who, "tenant-auto-approval-errors", 422)
        assert auto_approval.list_rules(site.app, admin, "contoso") == []

        page.get_by_label("Time zone").fill("Europe/Berlin")
        assert submit(page, "Save rule") == 303
        assert "approves matching requests from now on" in flash(page)
        row = page.get_by_test_id("rule")
        assert "Read access to exchange/mailbox/*" in row.inner_text()
        assert "Mon–Fri, 08:00–18:00 (Europe/Berlin time)" in row.inner_text()
        assert "Active" in row.inner_text()
        check_page(who, "tenant-auto-approval")

    rid = forwarded_incident(site)  # Monday 10:00 in Berlin
    assert requests.get_request(site.app, admin, rid).state is State.APPROVED
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as who:
        who.goto(f"/requests/{rid}")
        history = who.page.locator("main").inner_text()
        assert "approved by the rule “Mailboxes during incidents” of Contoso" in history
        assert "Incident: something is broken now" in history
        assert "Approved in advance by Contoso's auto-approval rule" in history
        assert "Approval by the customer's auto-approval rule" in history
        assert "Nobody at Contoso decided" not in history
        check_page(who, "request-auto-approved")

        # Switching it off applies at once: the next request waits for the approvers.
        who.goto("/auto-approval")
        who.page.get_by_role("button", name=re.compile("Switch off")).click()
        who.page.wait_for_load_state()
        assert "is switched off" in flash(who.page)
    waiting = forwarded_incident(site)
    assert requests.get_request(site.app, admin, waiting).state is State.PENDING_APPROVAL


def test_the_request_form_asks_what_the_access_is_for(browser: Browser, site: Site) -> None:
    case_id = site.open_case("Mail is lost")
    with signed_in(browser, site, "ENGINEER") as erin:
        erin.goto(f"/requests/new?case={case_id}")
        select = erin.page.get_by_label("What it is for")
        assert select.input_value() == "other"
        select.select_option(label="Incident: something is broken now")
        erin.page.get_by_label("Resources").fill(MAILBOX)
        erin.page.get_by_label("Justification").fill("Alice's mail disappears")
        with erin.page.expect_navigation():
            erin.page.get_by_role("button", name="Send request").click()
        assert erin.page.get_by_test_id("category").inner_text() == (
            "Incident: something is broken now"
        )
        check_page(erin, "portal-request-category")
    sent = requests.list_requests(site.app, site.principal("ENGINEER")).items
    assert [v.request.category for v in sent] == ["incident"]


def test_four_eyes_in_the_admin_center(browser: Browser, site: Site) -> None:
    users.create_user(
        site.app,
        Principal.operator(),
        email=IVAN[0],
        roles=["tenant_admin"],
        tenant="contoso",
        display_name="Ivan",
        password=IVAN[1],
    )
    admin = site.principal("CONTOSO_TENANT_ADMIN")
    with signed_in(browser, site, "CONTOSO_TENANT_ADMIN") as ines:
        page = ines.page
        # Turning the lockbox off widens access: it waits, and the policy page says so.
        ines.goto("/policy")
        page.get_by_label("Lockbox", exact=True).select_option("off")
        assert submit(page, "Save policy") == 303
        assert "Not saved yet: this change turns the lockbox off" in flash(page)
        waiting = page.get_by_test_id("policy-waiting")
        assert "Waiting for a second admin" in waiting.inner_text()
        assert "lockbox off (was on)" in waiting.inner_text()
        assert page.get_by_label("Lockbox", exact=True).input_value() == "on"
        check_page(ines, "tenant-policy-waiting")
        assert tenants.get_policy(site.app, admin, "contoso").policy.enabled is True

        # A new rule waits too; its author can only withdraw it.
        ines.goto("/auto-approval")
        fill_rule(page, "Mailboxes during incidents")
        assert submit(page, "Save rule") == 303
        assert "another tenant admin must approve it" in flash(page)
        proposals = page.get_by_test_id("pending-change")
        assert proposals.count() == 2
        assert page.get_by_role("button", name=re.compile("^Approve")).count() == 0
        assert page.get_by_role("button", name=re.compile("^Withdraw")).count() == 2
        check_page(ines, "tenant-auto-approval-waiting")
    assert auto_approval.list_rules(site.app, admin, "contoso")[0].state is RuleState.PENDING

    with harness.person(browser, site.base_url, name="ivan") as ivan:
        sign_in(ivan.page, site, *IVAN)
        ivan.goto("/auto-approval")
        page = ivan.page
        rule_change = page.get_by_test_id("pending-change").filter(has_text="New rule")
        assert "Read access to exchange/mailbox/*" in rule_change.inner_text()
        assert "writes a new auto-approval rule" in rule_change.inner_text()
        policy_change = page.get_by_test_id("pending-change").filter(has_text="lockbox policy")
        assert "turns the lockbox off" in policy_change.inner_text()
        check_page(ivan, "tenant-auto-approval-second-admin")

        with page.expect_navigation():
            policy_change.get_by_role("button", name=re.compile("^Approve")).click()
        assert "Approved: the change applies from now on" in flash(page)
        with page.expect_navigation():
            page.get_by_test_id("pending-change").get_by_role(
                "button", name=re.compile("^Reject")
            ).click()
        assert "Rejected: nothing changed" in flash(page)
        assert "Nothing is waiting for a second admin" in page.locator("main").inner_text()
        decided = page.get_by_test_id("decided-change")
        assert decided.count() == 2
        assert "Approved and applied" in decided.filter(has_text="lockbox policy").inner_text()
        check_page(ivan, "tenant-auto-approval-decided")

    assert tenants.get_policy(site.app, admin, "contoso").policy.enabled is False
    found = changes.list_changes(site.app, admin, "contoso")
    assert sorted(c.state for c in found) == [ChangeState.APPLIED, ChangeState.REJECTED]
    ended = auto_approval.list_rules(site.app, admin, "contoso", include_ended=True)
    assert [r.state for r in ended] == [RuleState.REJECTED]
