"""The audit log page in a browser, as an auditor uses it.

The auditor sees the chain verified, narrows the log by kind, person and a time
range typed in their own zone (Berlin here, so a filter read as UTC would show
the wrong records), pages through it with the cursor, and downloads the same
export the API serves. Another tenant's auditor sees only their own records; an
approver sees none; a changed record is named on the page. Every page state
passes axe, has no console errors or CSP violations, fits a phone, and is
photographed at both widths (var/screenshots/audit-*.png).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import update

from lockbox.domain.audit import AuditRecord
from lockbox.service import audit, tenants
from lockbox.store import tables as t
from tests.browser import harness
from tests.browser.site import Site, signed_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

BERLIN = "Europe/Berlin"


# --------------------------------------------------------------------------- helpers


def check_page(who: harness.Person, name: str, status: int = 200) -> None:
    """axe clean, nothing sticking out on a phone, no console/CSP problems; photographed.

    Chromium logs a 4xx document as a console error; that is expected when the page
    answers ``status`` on purpose. Problems are counted from the previous check on.
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


def seqs(page: Page) -> list[int]:
    """The sequence numbers of the records shown, top to bottom."""
    return [
        int(s)
        for s in page.locator("tbody tr[data-seq]").evaluate_all(
            "rows => rows.map(r => r.dataset.seq)"
        )
    ]


def apply_filters(page: Page) -> None:
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_load_state()


def all_records(site: Site, tenant: str = "contoso") -> list[AuditRecord]:
    """The whole log as the service answers it: what the page must show, in this order."""
    auditor = site.principal("CONTOSO_AUDITOR" if tenant == "contoso" else "FABRIKAM_AUDITOR")
    records, _next = audit.query(site.app, auditor, tenant, limit=audit.MAX_PAGE)
    return records


def two_days_of_work(site: Site) -> tuple[str, str]:
    """An approved request on 5 Jan (09:00 UTC) and another on 7 Jan (09:00 UTC)."""
    first = site.approved()
    site.clock.advance(timedelta(days=2))
    second = site.approved(justification="Check the sync state again")
    return first, second


# --------------------------------------------------------------------------- reading and filtering


def test_auditor_reads_filters_and_pages_the_log(browser: Browser, site: Site) -> None:
    first, second = two_days_of_work(site)
    with signed_in(browser, site, "CONTOSO_AUDITOR", timezone_id=BERLIN) as who:
        page = who.page
        who.goto("/audit")
        expected = all_records(site)
        report = audit.verify(site.app, site.principal("CONTOSO_AUDITOR"), "contoso")[0]
        status = page.get_by_test_id("chain-status").inner_text()
        assert (
            f"Verified: {report.records} records, head {report.head_seq}:{report.head_hash[:12]}"
            in status
        )
        assert "Oldest first" in page.get_by_test_id("order-note").inner_text()
        assert seqs(page) == [r.seq for r in expected]

        # Who, what and when in words; the request linked; details as "key: value".
        approve = page.locator("tbody tr").filter(has_text="request.approve").first
        text = approve.inner_text()
        assert "Request approved" in text
        assert "Paula" in text and "paula@contoso.example" in text
        assert "State: Pending approval → Approved" in text
        assert "CET" in text  # shown in the auditor's zone
        assert approve.locator(f'a[href="/requests/{first}"]').count() == 1
        submit_row = page.locator("tbody tr").filter(has_text="request.submit").first
        assert "erin@provider.example" in submit_row.inner_text()
        check_page(who, "audit-log")

        # By kind.
        page.get_by_label("Kind").select_option("request.")
        apply_filters(page)
        shown = seqs(page)
        assert shown == [r.seq for r in expected if r.operation.startswith("request.")]
        assert len(shown) >= 6
        check_page(who, "audit-log-filtered")

        # By person: Paula's records only.
        who.goto("/audit")
        page.get_by_label("Who").select_option(label="Paula <paula@contoso.example>")
        apply_filters(page)
        paula = site.principal("CONTOSO_APPROVER").id
        assert seqs(page) == [r.seq for r in expected if r.actor_id == paula]

        # A time range typed in Berlin time: 7 Jan 09:30 CET is 08:30 UTC, before the second
        # request (09:00 UTC); read as UTC it would wrongly leave the second request out.
        who.goto("/audit")
        page.get_by_label("From").fill("2026-01-07T09:30")
        apply_filters(page)
        since = datetime(2026, 1, 7, 8, 30, tzinfo=UTC)
        later = [r.seq for r in expected if r.at >= since]
        assert seqs(page) == later
        assert page.locator(f'a[href="/requests/{second}"]').count() >= 1
        assert page.locator(f'a[href="/requests/{first}"]').count() == 0
        # "To" includes the minute typed: 5 Jan 10:00 CET is 09:00 UTC, when day one happened.
        page.get_by_label("From").fill("")
        page.get_by_label("To (including)").fill("2026-01-05T10:00")
        apply_filters(page)
        earlier = [r.seq for r in expected if r.at < datetime(2026, 1, 5, 9, 1, tzinfo=UTC)]
        assert seqs(page) == earlier
        assert set(earlier).isdisjoint(later)
        assert len(earlier) + len(later) == len(expected)

        # A range that makes no sense, or a date nobody can read: field errors, no records.
        page.get_by_label("From").fill("2026-01-06T10:00")
        page.get_by_label("To (including)").fill("2026-01-05T10:00")
        with page.expect_response(lambda r: "/audit?" in r.url) as answer:
            apply_filters(page)
        assert answer.value.status == 422
        assert "must be after its start" in page.locator("#f-to-error").inner_text()
        assert seqs(page) == []
        check_page(who, "audit-log-filter-error", 422)
        answer_bad = page.goto(f"{site.base_url}/audit?from=yesterday")
        assert answer_bad is not None and answer_bad.status == 422
        assert "such as 2026-01-05 14:30" in page.locator("#f-from-error").inner_text()
        who.problems.console_errors.clear()

        # Cursor paging, five at a time: every record once, in order, then no "Next page".
        who.goto("/audit?limit=5")
        seen = seqs(page)
        assert len(seen) == 5
        assert page.get_by_role("link", name="First page").count() == 0
        pages = 1
        while page.get_by_role("link", name="Next page").count():
            page.get_by_role("link", name="Next page").click()
            page.wait_for_load_state()
            seen += seqs(page)
            pages += 1
            if pages == 2:
                assert page.get_by_role("link", name="First page").count() == 1
                check_page(who, "audit-log-page-2")
        assert seen == [r.seq for r in expected]
        # A full last page still offers "Next page" (the service cannot know it is the last).
        assert pages == len(expected) // 5 + 1


def test_auditor_downloads_json_lines_and_csv(browser: Browser, site: Site) -> None:
    site.approved()
    auditor = site.principal("CONTOSO_AUDITOR")
    contoso = tenants.get_tenant(site.app, auditor, "contoso").id
    with signed_in(browser, site, "CONTOSO_AUDITOR") as who:
        page = who.page
        who.goto("/audit")
        total = audit.verify(site.app, auditor, "contoso")[0].records

        with page.expect_download() as jsonl:
            page.get_by_role("link", name="Download JSON Lines").click()
        assert jsonl.value.suggested_filename == "audit-contoso-2026-01-05.jsonl"
        lines = Path(jsonl.value.path()).read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines]
        assert [r["seq"] for r in records] == list(range(1, total + 1))
        assert {r["tenant_id"] for r in records} == {contoso}
        api_export = "".join(audit.export(site.app, auditor, "contoso", "jsonl"))
        assert "\n".join(lines) + "\n" == api_export

        with page.expect_download() as csv_download:
            page.get_by_role("link", name="Download CSV").click()
        assert csv_download.value.suggested_filename == "audit-contoso-2026-01-05.csv"
        text = Path(csv_download.value.path()).read_text(encoding="utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert text.startswith("seq,id,at,actor_id,actor_kind,operation,request_id,details")
        assert [int(r["seq"]) for r in rows] == list(range(1, total + 1))
        assert any(r["operation"] == "request.approve" for r in rows)

        answer = who.context.request.get(f"{site.base_url}/audit/export.csv")
        assert answer.status == 200
        assert answer.headers["content-type"].startswith("text/csv")
        assert answer.headers["content-disposition"].startswith("attachment;")
        assert who.problems.all() == []


# --------------------------------------------------------------------------- who sees what


def test_a_fabrikam_auditor_sees_only_fabrikams_records(browser: Browser, site: Site) -> None:
    contoso_request = site.approved()
    fabrikam_request = site.approved(tenant="fabrikam")
    finn = site.principal("FABRIKAM_AUDITOR")
    fabrikam = tenants.get_tenant(site.app, finn, "fabrikam").id
    with signed_in(browser, site, "FABRIKAM_AUDITOR") as who:
        page = who.page
        who.goto("/audit")
        main = page.locator("main").inner_text()
        assert "Fabrikam" in main
        assert "contoso.example" not in main
        assert page.locator(f'a[href="/requests/{fabrikam_request}"]').count() >= 1
        assert page.locator(f'a[href="/requests/{contoso_request}"]').count() == 0
        assert seqs(page) == [r.seq for r in all_records(site, "fabrikam")]
        assert "Verified:" in page.get_by_test_id("chain-status").inner_text()
        check_page(who, "audit-log-fabrikam")

        answer = who.context.request.get(f"{site.base_url}/audit/export.jsonl")
        exported = [json.loads(line) for line in answer.text().splitlines()]
        assert {r["tenant_id"] for r in exported} == {fabrikam}


def test_an_approver_cannot_read_the_audit_log(browser: Browser, site: Site) -> None:
    with signed_in(browser, site, "CONTOSO_APPROVER") as who:
        answer = who.page.goto(f"{site.base_url}/audit")
        assert answer is not None and answer.status == 403
        assert "Not permitted" in who.page.locator("h1").inner_text()
        download = who.context.request.get(f"{site.base_url}/audit/export.csv")
        assert download.status == 403
        assert "seq,id" not in download.text()
        check_page(who, "audit-log-refused", 403)


def test_a_changed_record_is_named_at_the_top(browser: Browser, site: Site) -> None:
    site.approved()
    contoso = tenants.get_tenant(site.app, site.principal("CONTOSO_AUDITOR"), "contoso").id
    with site.app.db.write() as conn:  # someone with database access edits record 3
        conn.execute(
            update(t.audit_events)
            .where(t.audit_events.c.tenant_id == contoso, t.audit_events.c.seq == 3)
            .values(details=json.dumps({"edited": True}))
        )
    with signed_in(browser, site, "CONTOSO_AUDITOR") as who:
        page = who.page
        who.goto("/audit")
        status = page.get_by_test_id("chain-status")
        assert status.get_attribute("role") == "alert"
        text = status.inner_text()
        assert "The audit chain is broken at record 3" in text
        assert "content does not match its hash" in text
        page.get_by_role("link", name="Show record 3").click()
        page.wait_for_load_state()
        assert seqs(page)[0] == 3
        check_page(who, "audit-log-broken")
