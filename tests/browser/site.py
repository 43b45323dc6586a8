"""A live Lockbox site for browser tests: the real app, a fresh SQLite database, demo people.

The app runs in this process (``harness.start_server``), so its clock is a
:class:`~lockbox.clock.ManualClock` the test holds: "the approval window ran
out" is ``site.clock.advance(...)``, never a sleep. People are the demo users
(:data:`lockbox.service.seed.DEMO_USERS`) with their demo passwords.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockbox.api.app import create_app
from lockbox.clock import ManualClock
from lockbox.config import Settings
from lockbox.domain.roles import Principal
from lockbox.service import cases, requests, users
from lockbox.service.app import Lockbox
from lockbox.service.seed import DEMO_USERS, DemoUser, seed_demo
from lockbox.store.db import Database, upgrade
from tests.browser import harness

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

MAILBOX = "exchange/mailbox/alice@contoso.com"
#: Settings of every test site: the provider's name shows on the pages.
SITE_SETTINGS = {"provider_name": "Acme Cloud", "cookie_secure": "false"}


@dataclass
class Site:
    """A running Lockbox with demo tenants (Contoso, Fabrikam) and one person per role."""

    base_url: str
    app: Lockbox
    clock: ManualClock
    server: harness.LiveServer
    people: dict[str, DemoUser] = field(default_factory=dict)

    def who(self, key: str) -> DemoUser:
        """A demo person by role key: ENGINEER, MANAGER, CONTOSO_APPROVER, FABRIKAM_APPROVER…"""
        return self.people[key]

    def principal(self, key: str) -> Principal:
        return users.principal_for(self.app, self.people[key].email)

    # -- shortcuts through the service layer (for setting a scene, not for what is tested) --

    def open_case(
        self, title: str = "Alice's mailbox does not sync", tenant: str = "contoso"
    ) -> str:
        return cases.open_case(self.app, self.principal("ENGINEER"), tenant=tenant, title=title).id

    def submit(
        self,
        *,
        tenant: str = "contoso",
        resources: list[str] | None = None,
        level: str = "read",
        justification: str = "Inspect the sync state of Alice's mailbox",
        case_title: str = "Alice's mailbox does not sync",
    ) -> str:
        case_id = self.open_case(case_title, tenant)
        return requests.submit_request(
            self.app,
            self.principal("ENGINEER"),
            tenant=tenant,
            case_id=case_id,
            resources=resources or [MAILBOX],
            access_level=level,
            justification=justification,
        ).id

    def pending_approval(self, **kw: Any) -> str:
        rid = self.submit(**kw)
        requests.review_request(self.app, self.principal("MANAGER"), rid, approve=True)
        return rid

    def approved(self, **kw: Any) -> str:
        rid = self.pending_approval(**kw)
        approver = (
            "CONTOSO_APPROVER" if kw.get("tenant", "contoso") == "contoso" else "FABRIKAM_APPROVER"
        )
        requests.decide_request(self.app, self.principal(approver), rid, approve=True)
        return rid


def make_site(tmp_path: Path, **settings: Any) -> Iterator[Site]:
    """Generator for a fixture: a migrated, seeded database and the app serving it."""
    db = Database(f"sqlite:///{tmp_path / 'site.db'}")
    upgrade(db)
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    app = Lockbox(db, clock)
    seed_demo(app)
    api = create_app(app)
    api.state.settings = Settings(**{**SITE_SETTINGS, **settings})
    server = harness.start_server(api)  # type: ignore[arg-type]  # FastAPI is an ASGI app
    try:
        yield Site(
            base_url=server.base_url,
            app=app,
            clock=clock,
            server=server,
            people={u.key: u for u in DEMO_USERS},
        )
    finally:
        server.stop()
        db.dispose()


@contextmanager
def signed_in(
    browser: Browser, site: Site, key: str, **context_options: Any
) -> Iterator[harness.Person]:
    """A browser context of its own for the demo person ``key``, signed in through the form."""
    person = site.who(key)
    with harness.person(browser, site.base_url, name=key.lower(), **context_options) as who:
        sign_in(who.page, site, person.email, person.password)
        yield who


def sign_in(page: Page, site: Site, email: str, password: str) -> None:
    page.goto(f"{site.base_url}/signin")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    if re.search(r"/signin", page.url):
        raise AssertionError(f"sign-in as {email} failed: {page.locator('main').inner_text()}")
