"""Fixtures of the browser tests: one Chromium per test session (per xdist worker).

If Chromium or Playwright is missing, every test that needs the browser is
skipped with the reason, and the reason is printed once at the end of the run;
with ``LOCKBOX_TEST_BROWSER=required`` (CI) they fail instead, so a machine
without a browser cannot pass CI silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser import harness
from tests.browser.site import Site, make_site

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright
    from uvicorn._types import ASGIApplication


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    reason = harness.unavailable_reason()
    if reason is not None:
        harness.skip_or_fail(reason)
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()
    try:
        yield driver
    finally:
        driver.stop()


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Debian Chromium, shared by the tests of this session (contexts isolate them)."""
    chromium = harness.launch(playwright)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def live_server() -> Iterator[Callable[[ASGIApplication], harness.LiveServer]]:
    """``live_server(app)`` starts ``app`` on 127.0.0.1; every one is stopped after the test."""
    started: list[harness.LiveServer] = []

    def start(app: ASGIApplication) -> harness.LiveServer:
        server = harness.start_server(app)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture(autouse=True)
def _no_server_left_running() -> Iterator[None]:
    """A test must stop every server it starts: one left behind is stopped and fails the test."""
    before = set(harness.running_servers())
    yield
    leaked = [s for s in harness.running_servers() if s not in before]
    for server in leaked:
        server.stop()
    if leaked:
        pytest.fail(f"test left servers running: {[s.base_url for s in leaked]}", pytrace=False)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say once, plainly, that the browser tests did not run and how to make them run.

    Read from the skip reports rather than from state of this process, so it
    also works when xdist workers ran the tests.
    """
    known = (harness.MISSING_CHROMIUM, harness.MISSING_PLAYWRIGHT, harness.MISSING_AXE)
    reasons: set[str] = set()
    for report in terminalreporter.stats.get("skipped", []):
        text = str(getattr(report, "longrepr", ""))
        reasons.update(reason for reason in known if reason in text)
    if reasons:
        terminalreporter.write_sep("-", "browser tests skipped", yellow=True)
        for reason in sorted(reasons):
            terminalreporter.write_line(reason, yellow=True, bold=True)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A live Lockbox (real app, fresh SQLite, demo people, a manual clock) on 127.0.0.1."""
    yield from make_site(tmp_path)
