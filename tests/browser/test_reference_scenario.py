"""The reference scenario end to end, through the pages only, with the example mail store.

Erin (support engineer) asks for read access to Alice's mailbox on a case; Mark
(support manager) forwards it; Paula (Contoso's approver) approves it in the admin
center; Erin sees the access active, gets a token and reads the mailbox at the mail
store; Erin closes the request and the mail store refuses at once (it follows the
grant feed). Contoso's auditor then finds every step, and every read, in the log.
One browser context per person, as four people would use four browsers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
from examples.mailstore.app import Config, create_app

from lockbox.domain.roles import Principal
from lockbox.service import tokens
from tests.browser import harness
from tests.browser.site import Site, signed_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ALICE_PATH = "/mailboxes/contoso/alice@contoso.com"


@pytest.fixture
def mailstore(site: Site) -> Iterator[harness.LiveServer]:
    """The example mail store, deciding from Lockbox's grant feed, on the site's clock."""
    service = site.who("RESOURCE_SERVICE")
    secret = tokens.create_token(
        site.app, Principal.operator(), user=service.email, name="mailstore"
    ).secret
    app = create_app(
        Config(lockbox_url=site.base_url, service_token=secret, mode="feed", clock=site.clock.now)
    )
    server = harness.start_server(app)  # type: ignore[arg-type]
    try:
        assert app.state.feed.wait_ready(20), "the mail store did not catch up with the feed"
        yield server
    finally:
        server.stop()


def read_mailbox(store: harness.LiveServer, token: str) -> httpx.Response:
    return httpx.get(
        f"{store.base_url}{ALICE_PATH}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def wait_until_refused(store: harness.LiveServer, token: str, feed: object) -> httpx.Response:
    """The close arrives through the feed: wait for its event, not for a time."""
    seen = threading.Event()
    feed.on_event(lambda kind, _data: seen.set() if kind == "end" else None)  # type: ignore[attr-defined]
    answer = read_mailbox(store, token)
    if answer.status_code == 200:
        assert seen.wait(10), "the close never reached the mail store"
        answer = read_mailbox(store, token)
    return answer


def click(page: Page, name: str) -> None:
    page.get_by_role("button", name=name).first.click()
    page.wait_for_load_state()


def test_the_reference_scenario_through_the_pages(
    browser: Browser, site: Site, mailstore: harness.LiveServer
) -> None:
    case = site.open_case("Alice's mailbox does not sync")
    with signed_in(browser, site, "ENGINEER") as erin:
        erin.goto(f"/requests/new?case={case}")
        erin.page.get_by_label("Resources").fill("exchange/mailbox/alice@contoso.com")
        erin.page.get_by_label("Justification").fill("Inspect the sync state of Alice's mailbox")
        click(erin.page, "Send request")
        assert "/requests/req_" in erin.page.url
        request_id = erin.page.url.rsplit("/", 1)[1]
        harness.shot(erin.page, "scenario-1-submitted")

    with signed_in(browser, site, "MANAGER") as mark:
        mark.goto("/reviews")
        assert "Alice's mailbox does not sync" in mark.page.locator("main").inner_text()
        mark.goto(f"/requests/{request_id}")
        click(mark.page, "Forward to Contoso")
        harness.shot(mark.page, "scenario-2-forwarded")

    with signed_in(browser, site, "CONTOSO_APPROVER") as paula:
        paula.goto("/approvals")
        queue = paula.page.locator("main").inner_text()
        assert "Erin" in queue and "exchange/mailbox/alice@contoso.com" in queue
        paula.page.get_by_role("link", name="Approve").first.click()
        paula.page.wait_for_load_state()
        assert "until about" in paula.page.locator("main").inner_text()
        harness.shot(paula.page, "scenario-3-confirm")
        click(paula.page, "Confirm approval")
        assert "Access approved" in paula.page.locator(".flash").first.inner_text()

    with signed_in(browser, site, "ENGINEER") as erin:
        erin.goto("/access")
        active = erin.page.locator(f"tr[data-request='{request_id}']")
        assert "exchange/mailbox/alice@contoso.com" in active.inner_text()
        active.get_by_role("button", name="Get token").click()
        erin.page.wait_for_load_state()
        token = erin.page.get_by_test_id("access-token").inner_text().strip()
        harness.shot(erin.page, "scenario-4-token")
        answer = read_mailbox(mailstore, token)
        assert answer.status_code == 200, answer.text
        assert answer.json()["messages"][0]["subject"] == "Quarterly numbers"

        erin.goto(f"/requests/{request_id}/close")
        click(erin.page, "Close and end access")
        assert "Closed" in erin.page.get_by_test_id("status").inner_text()
        refused = wait_until_refused(mailstore, token, mailstore_feed(mailstore))
        assert refused.status_code == 403
        assert refused.json()["detail"]["reason"] == "closed"

    with signed_in(browser, site, "CONTOSO_AUDITOR") as audrey:
        audrey.goto(f"/audit?request_id={request_id}")
        log = audrey.page.locator("main").inner_text()
        for step in ("Access requested", "Request approved", "Verified"):
            assert step in log, step
        harness.shot(audrey.page, "scenario-5-audit")


def mailstore_feed(server: harness.LiveServer) -> object:
    app = server._server.config.app  # the FastAPI app the harness serves
    return app.state.feed
