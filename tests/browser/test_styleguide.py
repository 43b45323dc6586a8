"""The style guide: every component of the web pages, rendered, checked and photographed.

A tiny FastAPI app serves ``/static/*`` and one page that extends ``base.html``
and shows every macro, under the production Content-Security-Policy. The
browser tests check it as a person would (screenshots at laptop and phone
widths, nothing sticking out sideways), as an auditor would (axe-core, no
console errors, no CSP violations), and that times read right with and
without JavaScript. The first tests need no browser: they pin the wording
that the server and ``lockbox.js`` must share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import DictLoader
from jinja2.exceptions import UndefinedError

from lockbox.domain.lifecycle import State
from lockbox.web import rendering
from lockbox.web.rendering import (
    STATE_STYLES,
    STATIC_DIR,
    STATIC_FILES,
    NavItem,
    base_context,
    localtime,
    make_environment,
    relative,
    resolve_zone,
    static_version,
)
from tests.browser import harness

if TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import Browser

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# A fixed past instant shown with ui.time: 20:00 UTC is 21:00 in Berlin, 15:00 in New York.
EVENT = datetime(2026, 1, 5, 20, 0, tzinfo=UTC)
EVENT_UTC = "5 Jan 2026, 20:00 UTC"
EVENT_BERLIN = "5 Jan 2026, 21:00 CET"
EVENT_NEW_YORK = "5 Jan 2026, 15:00 EST"

STYLEGUIDE = """
{% extends "base.html" %}
{% block content %}
<div class="page-header">
<h1><span class="caption">Lockbox design system</span>Style guide</h1>
<a class="button button-primary" href="#request-form">New request</a>
</div>
<p class="lede">Every building block of the Lockbox pages, as a person sees it.</p>

<h2>Request states</h2>
<ul class="badge-list">
{% for state in states %}<li>{{ ui.state_badge(state) }}</li>
{% endfor %}
</ul>

<h2>Buttons</h2>
<div class="button-row">
<button type="button" class="button button-primary">Approve access</button>
<button type="button" class="button button-secondary">Back to the queue</button>
<button type="button" class="button button-danger">Deny request</button>
<button type="button" class="button button-link">Show all 12 resources</button>
</div>

<h2>Waiting for your approval</h2>
<div class="table-wrap">
<table class="table">
<caption class="visually-hidden">Requests waiting for your approval</caption>
<thead><tr>
<th scope="col">Request</th><th scope="col">Engineer</th><th scope="col">Access</th>
<th scope="col">State</th><th scope="col">Decide by</th>
</tr></thead>
<tbody>
{% for r in requests %}
<tr>
<td data-label="Request"><a class="cell-title" href="#details">{{ r.title }}</a><span class="cell-sub"><span class="code">{{ r.id }}</span></span></td>
<td data-label="Engineer">{{ ui.person(r.requester) }}</td>
<td data-label="Access">{{ r.level }}<span class="cell-sub">{{ r.resources }}</span></td>
<td data-label="State">{{ ui.state_badge(r.state) }}</td>
<td data-label="Decide by" data-testid="deadline-{{ loop.index }}">{{ ui.deadline(r.deadline, now, tz) }}</td>
</tr>
{% endfor %}
</tbody>
</table>
</div>
{{ ui.pagination("/styleguide?after=req_01HZX3", "/styleguide") }}

<h2 id="details">Request details</h2>
<dl class="summary-list">
<div><dt>Request</dt><dd><span class="code">req_01HZX3Q4W8N2B7K5M9P0RSTUVW</span></dd></div>
<div><dt>Engineer</dt><dd>{{ ui.person(requests[0].requester) }}</dd></div>
<div><dt>Support case</dt><dd>CASE-4411 · Outgoing mail delayed for the finance team</dd></div>
<div><dt>Resources</dt><dd><ul><li><span class="code">mailbox:finance@contoso.example</span></li><li><span class="code">mailbox:payroll@contoso.example</span></li></ul></dd></div>
<div><dt>Access</dt><dd>Read only, for 4 hours after approval</dd></div>
<div><dt>Justification</dt><dd>Customer reports 40-minute delays; I need to read the message headers of the affected mails.</dd></div>
<div><dt>Submitted</dt><dd data-testid="event-time">{{ ui.time(event, tz) }}</dd></div>
<div><dt>Approve by</dt><dd>{{ ui.deadline(requests[0].deadline, now, tz) }}</dd></div>
<div><dt>Decided by</dt><dd>{{ ui.person(none) }}</dd></div>
<div><dt>Audit record</dt><dd><span class="code">sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08</span></dd></div>
</dl>

<h2>Confirmation</h2>
{% call ui.confirm_panel("Approve access for Jamie Rivera?", "/styleguide/confirm", csrf_token, "Approve access", "#details", id="confirm-approve") %}
<p>If you approve, Jamie Rivera of {{ provider_name }} can:</p>
<dl class="summary-list">
<div><dt>Read</dt><dd><span class="code">mailbox:finance@contoso.example</span></dd></div>
<div><dt>Until</dt><dd>{{ ui.time(requests[0].deadline, tz) }}, 4 hours from approval</dd></div>
</dl>
<p class="muted">You can revoke access at any time. Every use of it is recorded in your audit log.</p>
{% endcall %}
{% call ui.confirm_panel("Revoke access now?", "/styleguide/confirm", csrf_token, "Revoke access", "#details", danger=true, id="confirm-revoke") %}
<p>Jamie Rivera loses access to 2 mailboxes immediately. Work in progress may be lost.</p>
{% endcall %}

<h2>Form with errors</h2>
<form class="form" id="request-form" method="post" action="/styleguide/confirm" novalidate>
{{ ui.error_summary(errors) }}
{{ ui.csrf(csrf_token) }}
{{ ui.select("case", "Support case", cases, error=errors.get("case"), required=true) }}
{{ ui.field("resources", "Resources", value="mailbox:finance@", error=errors.get("resources"), hint="One resource per line, e.g. mailbox:finance@contoso.example", required=true) }}
{{ ui.textarea("justification", "Why do you need access?", error=errors.get("justification"), hint="The customer reads this before deciding.", required=true, rows=4) }}
{{ ui.field("reference", "Ticket reference", autocomplete="off") }}
<div class="button-row">
<button type="submit" class="button button-primary">Send request</button>
<a class="button button-secondary" href="#details">Cancel</a>
</div>
</form>

<h2>Filters</h2>
<form class="filters" method="get" action="/styleguide" role="search" aria-label="Filter the audit log">
{{ ui.field("actor", "Actor", type="search", mark_optional=false) }}
{{ ui.select("event", "Event", events, value="approve", mark_optional=false) }}
{{ ui.field("since", "From", type="date", mark_optional=false) }}
<div class="button-row"><button type="submit" class="button button-secondary">Apply filters</button></div>
</form>

<h2>Empty state</h2>
{{ ui.empty("Nothing waiting for you.", "New requests appear here and you get an e-mail.") }}
{% endblock %}
"""


@dataclass(frozen=True)
class Someone:
    display_name: str
    email: str
    role_label: str = ""
    tenant_name: str = ""


@dataclass(frozen=True)
class Row:
    id: str
    title: str
    requester: Someone
    level: str
    resources: str
    state: str
    deadline: datetime


def styleguide_app(*, submissions: list[bytes] | None = None) -> FastAPI:
    """Static files with the production caching rule, and the style guide under the CSP.

    POSTs are recorded in ``submissions`` and answered ``204 No Content``, so the
    page stays (with its script state) after a form is submitted.
    """
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    env = make_environment(loader=DictLoader({"styleguide.html": STYLEGUIDE}))
    page = env.get_template("styleguide.html")
    version = static_version()

    @app.get("/static/{name}")
    def static(name: str, v: str | None = None) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(status_code=404)
        cache = "public, max-age=31536000, immutable" if v == version else "no-cache"
        media = "text/css" if name.endswith(".css") else "text/javascript"
        return Response(
            (STATIC_DIR / name).read_bytes(),
            media_type=f"{media}; charset=utf-8",
            headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"},
        )

    @app.get("/styleguide")
    def styleguide(tz: str | None = None, source: str = "default") -> HTMLResponse:
        now = datetime.now(UTC)
        jamie = Someone("Jamie Rivera", "jamie.rivera@fabrikam.example")
        sam = Someone("Sam Okafor-Lindqvist", "sam.okafor-lindqvist@support.fabrikam.example")
        context: dict[str, Any] = base_context(
            page_title="Style guide",
            provider_name="Fabrikam Cloud Support",
            user=Someone("Ada Lovelace", "ada.lovelace@contoso.example", "Tenant admin", "Contoso"),
            csrf_token="csrf-token-for-tests",
            nav=[
                NavItem("Approvals", "/styleguide", active=True),
                NavItem("Active access", "/styleguide#details"),
                NavItem("History", "/styleguide#history"),
                NavItem("Policy", "/styleguide#policy"),
                NavItem("Users", "/styleguide#users"),
                NavItem("Audit log", "/styleguide#audit"),
            ],
            flashes=[
                ("success", "Access approved. Jamie Rivera can read 1 mailbox until 21:00."),
                ("info", "2 requests are waiting for another approver."),
                ("warning", "Access for Sam Okafor-Lindqvist ends in 45 min."),
                ("error", "That request was already decided by Grace Hopper."),
            ],
            tz=tz,
            tz_source="chosen" if source == "chosen" else "default",
        )
        context.update(
            now=now,
            event=EVENT,
            states=[s.value for s in State],
            requests=[
                Row(
                    "req_01HZX3Q4W8N2",
                    "Mail delivery delays",
                    jamie,
                    "Read",
                    "2 mailboxes",
                    "pending_approval",
                    now + timedelta(hours=3, minutes=12, seconds=30),
                ),
                Row(
                    "req_01HZX7M2K9D4",
                    "Calendar sync fails for a shared room mailbox",
                    sam,
                    "Read and write",
                    "1 mailbox",
                    "approved",
                    now + timedelta(minutes=45, seconds=30),
                ),
                Row(
                    "req_01HZWZC1P0A8",
                    "Archive export stuck",
                    jamie,
                    "Read",
                    "1 archive",
                    "expired",
                    now - timedelta(minutes=5, seconds=30),
                ),
            ],
            errors={
                "case": "Choose the support case this access is for",
                "resources": "Enter a full resource name, like mailbox:finance@contoso.example",
                "justification": "Say why you need access; the customer reads this",
            },
            cases=[("", "Choose a case"), ("4411", "CASE-4411 · Outgoing mail delayed")],
            events=[("", "Any event"), ("approve", "Approved"), ("deny", "Denied")],
        )
        return HTMLResponse(page.render(context), headers={"Content-Security-Policy": CSP})

    @app.post("/styleguide/confirm")
    async def confirm(request: Request) -> Response:
        body = await request.body()
        if submissions is not None:
            submissions.append(body)
        return Response(status_code=204)

    return app


# --------------------------------------------------------------------------- no browser needed


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(hours=3, minutes=12, seconds=59), "in 3 h 12 min"),
        (timedelta(minutes=45), "in 45 min"),
        (timedelta(minutes=59, seconds=59), "in 59 min"),
        (timedelta(hours=2), "in 2 h"),
        (timedelta(days=2, hours=3, minutes=40), "in 2 d 3 h"),
        (timedelta(days=3), "in 3 d"),
        (timedelta(seconds=30), "in under 1 min"),
        (timedelta(0), "just now"),
        (-timedelta(seconds=59), "just now"),
        (-timedelta(minutes=5, seconds=10), "5 min ago"),
        (-timedelta(hours=26), "1 d 2 h ago"),
    ],
)
def test_relative_wording(delta: timedelta, expected: str) -> None:
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert relative(now + delta, now) == expected


def test_localtime_and_zone_fallbacks() -> None:
    assert localtime(EVENT, "Europe/Berlin") == EVENT_BERLIN
    assert localtime(EVENT, "America/New_York") == EVENT_NEW_YORK
    assert localtime(EVENT.replace(tzinfo=None), None) == EVENT_UTC  # naive is UTC
    assert localtime(EVENT, "Asia/Dubai") == "6 Jan 2026, 00:00 UTC+04"
    for hostile in ("../../etc/passwd", "/etc/localtime", "Europe/Nowhere", "", "a" * 300):
        assert resolve_zone(hostile) is UTC
    assert rendering.zone_label("Europe/Berlin") == "Europe/Berlin"
    assert rendering.iso_utc(EVENT.astimezone(resolve_zone("Europe/Berlin"))) == (
        "2026-01-05T20:00:00Z"
    )


def test_every_state_has_words_colour_and_icon() -> None:
    assert {s.value for s in State} == set(STATE_STYLES)
    for style in STATE_STYLES.values():
        assert style.label and style.tone and style.icon


def test_templates_escape_and_refuse_undefined() -> None:
    env = make_environment(
        loader=DictLoader(
            {
                "x.html": '{% import "_macros.html" as ui %}{{ ui.person(p) }}',
                "y.html": "{{ missing }}",
            }
        )
    )
    html = env.get_template("x.html").render(p=Someone("<script>x</script>", "a@b.example"))
    assert "<script>" not in html and "&lt;script&gt;" in html
    with pytest.raises(UndefinedError):
        env.get_template("y.html").render()


def test_templates_have_nothing_the_csp_forbids(
    live_server: Callable[[Any], harness.LiveServer],
) -> None:
    """No inline styles, inline scripts or event-handler attributes: the CSP would block them."""
    response = httpx.get(live_server(styleguide_app()).base_url + "/styleguide")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CSP
    sources = [p.read_text() for p in rendering.TEMPLATES_DIR.glob("*.html")] + [response.text]
    for text in sources:
        assert not re.search(r"\sstyle\s*=", text, re.IGNORECASE)
        assert not re.search(r"<style", text, re.IGNORECASE)
        assert not re.search(r"\son[a-z]+\s*=", text, re.IGNORECASE)
        assert not re.search(r"<script(?![^>]*\ssrc=)", text, re.IGNORECASE)
        assert "javascript:" not in text.lower()


# --------------------------------------------------------------------------- in Chromium


@pytest.fixture
def base_url(live_server: Callable[[Any], harness.LiveServer]) -> str:
    return live_server(styleguide_app()).base_url


def test_static_files_are_cached_only_for_the_current_version(base_url: str) -> None:
    version = static_version()
    fresh = httpx.get(f"{base_url}/static/lockbox.css?v={version}")
    stale = httpx.get(f"{base_url}/static/lockbox.css?v=old")
    assert fresh.status_code == 200
    assert fresh.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert stale.headers["cache-control"] == "no-cache"
    assert httpx.get(f"{base_url}/static/../rendering.py").status_code == 404


def test_styleguide_is_clean_and_fits_a_phone(browser: Browser, base_url: str) -> None:
    with harness.person(browser, base_url) as ada:
        ada.goto("/styleguide")
        ada.page.wait_for_function("document.querySelector('[data-deadline]').textContent")
        assert ada.problems.all() == []
        paths = harness.shot(ada.page, "styleguide")
        assert all(p.stat().st_size > 10_000 for p in paths)
        ada.page.set_viewport_size(harness.PHONE)
        assert harness.horizontal_overflow(ada.page) == []
        assert ada.problems.all() == []


@pytest.mark.parametrize("viewport", [harness.DESKTOP, harness.PHONE], ids=["desktop", "phone"])
def test_styleguide_has_no_serious_accessibility_violations(
    browser: Browser, base_url: str, viewport: Any
) -> None:
    with harness.person(browser, base_url, viewport=viewport) as ada:
        ada.goto("/styleguide")
        violations = harness.axe_violations(ada.page)
        assert violations == [], harness.describe(violations)
        assert ada.problems.all() == []


def test_times_follow_the_browser_zone_with_javascript(browser: Browser, base_url: str) -> None:
    with harness.person(browser, base_url, timezone_id="Europe/Berlin") as ada:
        ada.goto("/styleguide")
        event = ada.page.get_by_test_id("event-time").locator("time")
        assert event.inner_text() == EVENT_BERLIN
        assert event.get_attribute("title") == EVENT_UTC
        assert event.get_attribute("datetime") == "2026-01-05T20:00:00Z"
        assert ada.page.locator("[data-tz-label]").inner_text() == "Europe/Berlin"
        cookies = {c["name"]: c for c in ada.context.cookies()}
        assert cookies["lockbox_tz"]["value"] == "Europe/Berlin"
        assert cookies["lockbox_tz"]["sameSite"] == "Lax"
        assert ada.problems.all() == []


def test_times_stay_as_rendered_without_javascript(browser: Browser, base_url: str) -> None:
    with harness.person(
        browser, base_url, timezone_id="Europe/Berlin", java_script_enabled=False
    ) as ada:
        ada.goto("/styleguide")
        event = ada.page.get_by_test_id("event-time").locator("time")
        assert event.inner_text() == EVENT_UTC
        assert ada.page.locator("[data-tz-label]").inner_text() == "UTC"
        assert ada.page.get_by_test_id("deadline-1").locator("[data-deadline]").inner_text() == (
            "in 3 h 12 min"
        )
        assert "lockbox_tz" not in {c["name"] for c in ada.context.cookies()}
        assert ada.problems.all() == []


def test_a_chosen_zone_is_not_replaced_by_the_browsers(browser: Browser, base_url: str) -> None:
    with harness.person(browser, base_url, timezone_id="Europe/Berlin") as ada:
        ada.goto("/styleguide?tz=America/New_York&source=chosen")
        assert ada.page.get_by_test_id("event-time").inner_text() == EVENT_NEW_YORK
        assert "lockbox_tz" not in {c["name"] for c in ada.context.cookies()}


def test_deadlines_read_like_the_server_and_keep_counting(browser: Browser, base_url: str) -> None:
    with harness.person(browser, base_url) as ada:
        ada.page.clock.install(time=datetime.now(UTC))
        ada.goto("/styleguide")
        deadlines = [
            ada.page.get_by_test_id(f"deadline-{i}").locator("[data-deadline]") for i in (1, 2, 3)
        ]
        assert [d.inner_text() for d in deadlines] == [
            "in 3 h 12 min",
            "in 45 min",
            "expired 5 min ago",
        ]
        assert [d.get_attribute("class") for d in deadlines] == [
            "deadline-rel",
            "deadline-rel urgent",
            "deadline-rel past",
        ]
        ada.page.clock.run_for("46:00")  # the 30-second timer fires on the fake clock
        assert [d.inner_text() for d in deadlines] == [
            "in 2 h 26 min",
            "expired just now",
            "expired 51 min ago",
        ]
        assert "urgent" not in (deadlines[1].get_attribute("class") or "")
        assert ada.problems.all() == []


def test_confirm_forms_submit_only_once(
    browser: Browser, live_server: Callable[[Any], harness.LiveServer]
) -> None:
    submissions: list[bytes] = []
    server = live_server(styleguide_app(submissions=submissions))
    with harness.person(browser, server.base_url) as ada:
        ada.goto("/styleguide")
        button = ada.page.locator("#confirm-approve button[type=submit]")
        with ada.page.expect_request("**/styleguide/confirm"):
            button.click(no_wait_after=True)
        # The server answers 204, so the page stays: its button is now disabled …
        disabled = ada.page.evaluate(
            """() => new Promise((resolve) => {
                const button = document.querySelector("#confirm-approve button[type=submit]");
                if (button.disabled) return resolve(true);
                new MutationObserver((_, observer) => {
                    if (button.disabled) { observer.disconnect(); resolve(true); }
                }).observe(button, { attributes: true, attributeFilter: ["disabled"] });
            })"""
        )
        assert disabled is True
        # … and a second submit (a double click, Enter in a field) is cancelled.
        prevented = ada.page.evaluate(
            """() => {
                let prevented = null;
                window.addEventListener("submit", (e) => { prevented = e.defaultPrevented; },
                                        { once: true });
                document.querySelector("#confirm-approve form").requestSubmit();
                return prevented;
            }"""
        )
        assert prevented is True
        assert submissions == [b"csrf_token=csrf-token-for-tests"]
        assert ada.problems.all() == []
