"""Browser-test harness: Debian's Chromium driven by Playwright, against in-process servers.

Why these choices:

- ``playwright install`` cannot download browsers on our machines, so Chromium is
  Debian's package at ``/usr/bin/chromium``, launched by path. Where it (or the
  Playwright package) is missing the tests are skipped with a clear reason,
  unless ``LOCKBOX_TEST_BROWSER=required`` (CI), which turns that into a failure.
- The app runs in this process under uvicorn on a free ``127.0.0.1`` port, in a
  background thread, so tests can build an app around any state they like.
  Startup and shutdown are waited on with events, never with sleeps, and every
  server started is tracked so a test that forgets to stop one fails.
- One browser context per person (cookies, time zone, JavaScript on or off),
  as two people would use two browsers.
- Pages are checked the way a person and an auditor would: screenshots at
  laptop and phone widths, axe-core for accessibility, and no console errors
  or Content-Security-Policy violations.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest
import uvicorn

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Error,
        Page,
        Playwright,
        ViewportSize,
    )
    from uvicorn._types import ASGIApplication

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMIUM_ARGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)
#: ``LOCKBOX_TEST_BROWSER=required`` (set by .ci/run): a missing browser fails instead of skipping.
REQUIRED: Final = os.environ.get("LOCKBOX_TEST_BROWSER") == "required"
MISSING_CHROMIUM: Final = (
    "Chromium not found at /usr/bin/chromium: browser tests skipped; install Debian's chromium "
    "(apt-get install chromium)"
)
MISSING_PLAYWRIGHT: Final = (
    "Playwright for Python is not installed: browser tests skipped; pip install playwright"
)
MISSING_AXE: Final = (
    "axe-playwright-python is not installed: accessibility checks skipped; "
    "pip install axe-playwright-python"
)

ROOT: Final = Path(__file__).resolve().parents[2]
SCREENSHOTS: Final = ROOT / "var" / "screenshots"
DESKTOP: Final[ViewportSize] = {"width": 1280, "height": 800}
PHONE: Final[ViewportSize] = {"width": 390, "height": 844}


# --------------------------------------------------------------------------- availability


def unavailable_reason() -> str | None:
    """Why browser tests cannot run here, or ``None`` when they can."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return MISSING_CHROMIUM
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return MISSING_PLAYWRIGHT
    return None


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``, or fail when the browser is required (CI). Never returns."""
    if REQUIRED:
        pytest.fail(f"LOCKBOX_TEST_BROWSER=required, but: {reason}", pytrace=False)
    pytest.skip(reason)


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless, with nothing that phones home."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True
    )


# --------------------------------------------------------------------------- live servers


class _Server(uvicorn.Server):
    """A uvicorn server that tells a waiting thread when startup has finished (or failed)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


_running: set[LiveServer] = set()
_running_lock = threading.Lock()


@dataclass(eq=False)
class LiveServer:
    """An ASGI app served on ``base_url`` (``http://127.0.0.1:<port>``) until :meth:`stop`."""

    base_url: str
    _server: _Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 15.0) -> None:
        """Ask uvicorn to exit and wait for its thread; idempotent."""
        self._server.should_exit = True
        self._thread.join(timeout)
        with _running_lock:
            _running.discard(self)
        if self._thread.is_alive():
            raise RuntimeError(f"live server at {self.base_url} did not stop within {timeout} s")


def start_server(app: ASGIApplication, *, timeout: float = 15.0) -> LiveServer:
    """Serve ``app`` on a free loopback port in a background thread; returns once it accepts.

    The socket is bound here (port 0 → a free port chosen by the kernel) and
    handed to uvicorn, so there is no window in which another process could
    take the port. Listens on 127.0.0.1 only.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="auto",
        timeout_graceful_shutdown=5,
    )
    server = _Server(config)

    def run() -> None:
        # A fresh event loop in this thread; uvicorn installs no signal handlers off the main thread.
        asyncio.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=run, name=f"live-server-{port}", daemon=True)
    live = LiveServer(f"http://127.0.0.1:{port}", server, thread)
    thread.start()
    if not server.ready.wait(timeout) or not server.started:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
        raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port} (see log above)")
    with _running_lock:
        _running.add(live)
    return live


@contextmanager
def serve(app: ASGIApplication) -> Iterator[LiveServer]:
    """``with serve(app) as server:`` — the server is stopped however the block ends."""
    live = start_server(app)
    try:
        yield live
    finally:
        live.stop()


def running_servers() -> list[LiveServer]:
    """Servers started and not yet stopped (the conftest fails a test that leaves one behind)."""
    with _running_lock:
        return [s for s in _running if s.running]


# --------------------------------------------------------------------------- problems on a page

# Installed in every page before its own scripts: records CSP violations on the
# window, where Problems reads them (page.evaluate is not subject to the CSP).
_CSP_RECORDER: Final = """
(() => {
  if (window.__lockboxCsp) return;
  const seen = [];
  Object.defineProperty(window, "__lockboxCsp", { value: seen });
  document.addEventListener("securitypolicyviolation", (e) => {
    seen.push({
      directive: e.effectiveDirective || e.violatedDirective,
      blocked: e.blockedURI,
      source: e.sourceFile,
      line: e.lineNumber,
      sample: e.sample,
    });
  });
})();
"""


@dataclass
class Problems:
    """What went wrong in a page that a person would not see: console errors, uncaught
    exceptions, CSP violations. Assert ``problems.all() == []``.
    """

    page: Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type in {"error", "assert"}:
            location = message.location
            self.console_errors.append(
                f"{message.text} ({location.get('url', '')}:{location.get('lineNumber', '')})"
            )

    def _on_page_error(self, error: Error) -> None:
        self.page_errors.append(f"{error.name}: {error.message}")

    def csp_violations(self) -> list[str]:
        """Violations reported in the current document (events) and in the console (both
        with JavaScript off, when there are no events to read)."""
        found = [m for m in self.console_errors if "Content Security Policy" in m]
        try:
            events: list[dict[str, Any]] = self.page.evaluate("window.__lockboxCsp || []")
        except Exception:  # JavaScript disabled: the console still has Chrome's report
            events = []
        found.extend(
            f"{e['directive']} blocked {e['blocked'] or 'inline'} at {e['source']}:{e['line']} "
            f"{e['sample']!r}"
            for e in events
        )
        return found

    def all(self) -> list[str]:
        """Every problem found so far, as readable lines (empty when the page is clean)."""
        csp = self.csp_violations()
        console = [m for m in self.console_errors if m not in csp]
        return (
            [f"console: {m}" for m in console]
            + [f"uncaught: {m}" for m in self.page_errors]
            + [f"CSP: {m}" for m in csp]
        )


def watch(page: Page) -> Problems:
    """Start collecting console errors, uncaught exceptions and CSP violations of ``page``.

    Call before the first navigation so that nothing is missed.
    """
    problems = Problems(page)
    page.add_init_script(_CSP_RECORDER)
    page.on("console", problems._on_console)
    page.on("pageerror", problems._on_page_error)
    return problems


# --------------------------------------------------------------------------- people


@dataclass
class Person:
    """One person's browser: own context (cookies, zone), one page, and its problems."""

    name: str
    base_url: str
    context: BrowserContext
    page: Page
    problems: Problems

    def goto(self, path: str) -> None:
        """Open ``path`` (relative to the server) and fail on an HTTP error status."""
        response = self.page.goto(self.base_url + path)
        assert response is not None and response.ok, f"{self.name}: GET {path} → {response}"


@contextmanager
def person(
    browser: Browser,
    base_url: str,
    *,
    name: str = "person",
    timezone_id: str = "UTC",
    java_script_enabled: bool = True,
    viewport: ViewportSize = DESKTOP,
    **options: Any,
) -> Iterator[Person]:
    """A fresh browser context for one person (closed on exit), English, in ``timezone_id``.

    Extra keyword arguments go to ``Browser.new_context`` (e.g. ``is_mobile``).
    """
    context = browser.new_context(
        base_url=base_url,
        locale="en-GB",
        timezone_id=timezone_id,
        java_script_enabled=java_script_enabled,
        viewport=viewport,
        **options,
    )
    try:
        page = context.new_page()
        yield Person(name, base_url, context, page, watch(page))
    finally:
        context.close()


# --------------------------------------------------------------------------- looking at pages


def shot(page: Page, name: str) -> list[Path]:
    """Full-page PNGs at desktop (1280×800) and phone (390×844) widths, under var/screenshots/.

    Returns the paths written (``<name>-desktop.png``, ``<name>-phone.png``);
    the page's viewport is restored afterwards.
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "page"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    paths: list[Path] = []
    try:
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            path = SCREENSHOTS / f"{safe}-{label}.png"
            page.screenshot(path=str(path), full_page=True, animations="disabled")
            paths.append(path)
    finally:
        if original is not None:
            page.set_viewport_size(original)
    return paths


_OVERFLOW_JS: Final = """
() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  if (document.documentElement.scrollWidth > width) {
    found.push(`document is ${document.documentElement.scrollWidth}px wide in ${width}px`);
  }
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 0.5) {
      const id = el.id ? "#" + el.id : "";
      const cls = el.classList.length ? "." + [...el.classList].join(".") : "";
      found.push(`${el.tagName.toLowerCase()}${id}${cls} ends at ${Math.round(box.right)}px`);
    }
  }
  return found.slice(0, 20);
}
"""


def horizontal_overflow(page: Page) -> list[str]:
    """Elements sticking out to the right of the viewport (a phone would scroll sideways)."""
    result: list[str] = page.evaluate(_OVERFLOW_JS)
    return result


def axe_violations(
    page: Page,
    *,
    impacts: Sequence[str] = ("serious", "critical"),
    options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run axe-core (bundled in ``axe-playwright-python``, offline) in ``page``.

    Returns the violations of the given impacts; :func:`describe` makes them
    readable in an assertion message. Needs JavaScript enabled in the context.
    The script is injected through the DevTools protocol, so the page's CSP
    does not block it.
    """
    try:
        from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
    except ImportError:
        skip_or_fail(MISSING_AXE)
        raise  # unreachable: skip_or_fail raises
    results = Axe().run(page, options=options or {"resultTypes": ["violations"]})
    violations: list[dict[str, Any]] = results.response["violations"]
    return [v for v in violations if v.get("impact") in impacts]


def describe(violations: Sequence[dict[str, Any]]) -> str:
    """axe violations as lines: rule, impact, help text and the offending elements."""
    lines = []
    for v in violations:
        targets = "; ".join(", ".join(map(str, n.get("target", []))) for n in v.get("nodes", []))
        lines.append(f"{v['id']} ({v.get('impact')}): {v.get('help')} → {targets}")
    return "\n".join(lines)
