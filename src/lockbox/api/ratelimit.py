"""Rate limits: separate budgets per token and per client address, as an ASGI middleware.

Four budgets, so that one kind of traffic can never starve another:

* ``signin``: ``POST /signin``, ``POST /reset`` (the pages) and
  ``POST /v1/password-reset``: per client address only (callers have no
  credential yet). The per-account lock-out after failed passwords
  (``LOCKBOX_SIGNIN_*``) works on top of this.
* ``token_issue``: ``POST /v1/access/token``, ``POST /v1/tokens`` and
  ``POST /account/tokens``: minting credentials.
* ``decisions``: ``POST /v1/access/check``, ``POST /v1/access/events`` and
  ``GET /v1/access/feed`` (each connection counts once): a resource service's
  enforcement traffic.
* ``default``: every other API call and page.

Except for sign-in, each request is counted against its **credential** (the
SHA-256 of the bearer token or of the session cookie; the raw secret is never
kept) and against its **client address** (from the ASGI scope, so behind a
reverse proxy only with ``LOCKBOX_FORWARDED_ALLOW_IPS`` set), each with its own
limit: an engineer's burst of page loads uses up the ``default`` budget of that
engineer's session, never the ``decisions`` budget of the mail store's token,
and random made-up tokens cannot mint fresh budgets because the address
budget still counts them. A refused request consumes nothing.

Counting is a sliding window (``limits``' sliding-window counter: smooth, one
counter pair per key) in ``LOCKBOX_RATE_LIMIT_STORAGE``: ``memory://`` counts
per server process, ``redis://…`` shares the counts across processes and
hosts. If the storage fails (Redis down) requests are let through and the
failure is logged: a limiter must not take the service down.

Every counted answer carries the fields of
`draft-ietf-httpapi-ratelimit-headers-06 <https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/06/>`_
(the separate-field form): ``RateLimit-Limit``, ``RateLimit-Remaining``,
``RateLimit-Reset`` (seconds until the budget has room again) and
``RateLimit-Policy`` (``<quota>;w=<window seconds>``), describing whichever of
the request's limits is closest to running out. A refused request is
``429 Too Many Requests`` with ``Retry-After``; API paths answer problem+json
(``urn:lockbox:problem:rate_limited``), pages a short HTML page.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter
from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lockbox.api.problems import problem
from lockbox.config import Settings, get_settings
from lockbox.web.security import SECURE_SESSION_COOKIE, SESSION_COOKIE, is_page

log = logging.getLogger("lockbox.api")

BUDGETS = ("signin", "token_issue", "decisions", "default")
_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/signin"): "signin",
    ("POST", "/reset"): "signin",
    ("POST", "/v1/password-reset"): "signin",
    ("POST", "/v1/access/token"): "token_issue",
    ("POST", "/v1/tokens"): "token_issue",
    ("POST", "/account/tokens"): "token_issue",
    ("POST", "/v1/access/check"): "decisions",
    ("POST", "/v1/access/events"): "decisions",
    ("GET", "/v1/access/feed"): "decisions",
}
#: Not counted: probes (a load balancer must always reach them), the metrics scrape and
#: static files (a page load fetches several; the page itself is counted).
EXEMPT_PREFIXES = ("/healthz", "/readyz", "/metrics", "/static/")
_DESCRIBED = {
    "signin": "sign-in attempts",
    "token_issue": "token requests",
    "decisions": "access decisions",
    "default": "requests",
}

try:  # counted for Prometheus when the metrics module (and prometheus_client) is there
    from prometheus_client import Counter as _PromCounter

    from lockbox import metrics as _metrics

    _RATE_LIMITED: Any = getattr(_metrics, "RATE_LIMITED", None) or _PromCounter(
        "lockbox_rate_limited",
        "Requests refused with 429 by the rate limiter, by budget "
        "(signin, token_issue, decisions, default).",
        ["budget"],
    )
    for _budget in BUDGETS:
        _RATE_LIMITED.labels(_budget)  # present from the start, so rate() sees the zero
except ImportError:  # pragma: no cover - a build without the metrics module
    _RATE_LIMITED = None


def budget_for(method: str, path: str) -> str | None:
    """The budget a request draws from; None: not counted."""
    if path.startswith(EXEMPT_PREFIXES):
        return None
    return _ROUTES.get((method.upper(), path), "default")


def credential_key(scope: Scope) -> str | None:
    """SHA-256 (hex) of the request's bearer token, else of its session cookie; None: neither.

    Only the digest is kept as a counter key, so the limiter's storage (shared
    Redis included) never holds a usable credential.
    """
    authorization = None
    cookie = None
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            authorization = value
        elif name == b"cookie":
            cookie = value
    if authorization:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return "t" + hashlib.sha256(token.strip().encode("utf-8")).hexdigest()
    if cookie:
        jar = cookie_parser(cookie.decode("latin-1"))
        secret = jar.get(SECURE_SESSION_COOKIE) or jar.get(SESSION_COOKIE)
        if secret:
            return "s" + hashlib.sha256(secret.encode("utf-8")).hexdigest()
    return None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0])[:64] if client else "unknown"


@dataclass(frozen=True)
class Budget:
    """One budget's limits: per credential and per client address (``limits`` items)."""

    name: str
    per_credential: tuple[RateLimitItem, ...]
    per_address: tuple[RateLimitItem, ...]


@dataclass(frozen=True)
class Verdict:
    """The outcome for one request and the numbers its ``RateLimit-*`` fields report."""

    allowed: bool
    budget: str
    keyed_by: str  # "credential" or "address": whose limit is reported
    limit: int
    remaining: int
    reset: int  # seconds until the reported limit has room again
    window: int  # seconds: the reported limit's window
    policy: str

    def headers(self) -> dict[str, str]:
        fields = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
            "RateLimit-Policy": self.policy,
        }
        if not self.allowed:
            fields["Retry-After"] = str(max(1, self.reset))
        return fields


def _policy(items: Iterable[RateLimitItem]) -> str:
    return ", ".join(dict.fromkeys(f"{i.amount};w={i.get_expiry()}" for i in items))


@dataclass
class Limiter:
    """The budgets of one deployment and their counters (``LOCKBOX_RATE_LIMIT_*``)."""

    budgets: dict[str, Budget]
    storage: Storage
    #: 429s answered by this process, per budget (also ``lockbox_rate_limited_total``).
    refused: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.strategy = SlidingWindowCounterRateLimiter(self.storage)
        #: In-process storage is a dictionary: counting inline costs microseconds. Anything
        #: else is a network round trip, made off the event loop.
        self.inline = isinstance(self.storage, MemoryStorage)

    @classmethod
    def from_settings(cls, settings: Settings) -> Limiter:
        def items(value: str) -> tuple[RateLimitItem, ...]:
            return tuple(parse_many(value))

        budgets = {
            "signin": Budget("signin", (), items(settings.rate_limit_signin)),
            "token_issue": Budget(
                "token_issue",
                items(settings.rate_limit_token_issue),
                items(settings.rate_limit_token_issue_per_address),
            ),
            "decisions": Budget(
                "decisions",
                items(settings.rate_limit_decisions),
                items(settings.rate_limit_decisions_per_address),
            ),
            "default": Budget(
                "default",
                items(settings.rate_limit_default),
                items(settings.rate_limit_default_per_address),
            ),
        }
        storage = storage_from_string(settings.rate_limit_storage)
        if not isinstance(storage, Storage):  # an ``async+…`` URI: the middleware counts in sync
            raise ValueError(
                "LOCKBOX_RATE_LIMIT_STORAGE: use a synchronous storage URI "
                "(memory://, redis://…), not async+…"
            )
        return cls(budgets=budgets, storage=storage)

    def check(self, budget_name: str, credential: str | None, address: str) -> Verdict:
        """Count one request against every limit of its budget, or refuse it (counting nothing)."""
        budget = self.budgets[budget_name]
        limits: list[tuple[RateLimitItem, tuple[str, ...], str]] = []
        if credential is not None:
            limits += [(i, (budget.name, credential), "credential") for i in budget.per_credential]
        limits += [(i, (budget.name, "a", address), "address") for i in budget.per_address]
        blocked = [entry for entry in limits if not self.strategy.test(entry[0], *entry[1])]
        if not blocked:
            for entry in limits:
                if not self.strategy.hit(entry[0], *entry[1]):
                    blocked.append(entry)  # another request took the last unit meanwhile
        now = time.time()
        reported: tuple[int, int, RateLimitItem, str] | None = None
        for item, identifiers, keyed_by in blocked or limits:
            stats = self.strategy.get_window_stats(item, *identifiers)
            reset = max(0, math.ceil(stats.reset_time - now))
            candidate = (stats.remaining, -reset, item, keyed_by)
            if reported is None or candidate[:2] < reported[:2]:
                reported = candidate
        if reported is None:  # a budget without limits: nothing to say
            return Verdict(True, budget.name, "address", 0, 0, 0, 0, "")
        remaining, neg_reset, item, keyed_by = reported
        verdict = Verdict(
            allowed=not blocked,
            budget=budget.name,
            keyed_by=keyed_by,
            limit=item.amount,
            remaining=remaining,
            reset=-neg_reset,
            window=item.get_expiry(),
            policy=_policy([item, *(entry[0] for entry in limits)]),
        )
        if blocked:
            self.refused[budget.name] += 1
            if _RATE_LIMITED is not None:
                _RATE_LIMITED.labels(budget.name).inc()
        return verdict


def too_many(scope: Scope, verdict: Verdict) -> Response:
    """The 429: problem+json for the API, a short page for people."""
    wait = max(1, verdict.reset)
    whose = "this token or session" if verdict.keyed_by == "credential" else "this client address"
    detail = (
        f"too many {_DESCRIBED[verdict.budget]} from {whose}: at most {verdict.limit} per "
        f"{_window_text(verdict.window)}; try again in {wait} second{'s' if wait != 1 else ''}"
    )
    headers = verdict.headers()
    if is_page(str(scope.get("path", ""))):
        page = (
            "<!doctype html><html lang=en><meta charset=utf-8>"
            "<title>Too many requests – Lockbox</title>"
            "<main><h1>Too many requests</h1>"
            f"<p>Lockbox received {detail}.</p></main></html>"
        )
        return HTMLResponse(page, status_code=429, headers=headers)
    return problem(
        429,
        "rate_limited",
        "Too many requests",
        detail,
        headers=headers,
        retry_after=wait,
        budget=verdict.budget,
    )


def _window_text(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds and seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return "window"


class RateLimit:
    """ASGI middleware applying :class:`Limiter` to every HTTP request (see the module doc).

    The limiter is built on first use from ``app.state.settings`` (or the
    process settings), so a test or an embedding application can configure it
    after :func:`lockbox.api.app.create_app`; it is then at
    ``app.state.rate_limiter``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._limiter: Limiter | None = None
        self._built_for: Settings | None = None

    def _limiter_for(self, scope: Scope) -> Limiter | None:
        owner = scope.get("app")
        state = getattr(owner, "state", None)
        settings: Settings = getattr(state, "settings", None) or get_settings()
        if not settings.rate_limit_enabled:
            return None
        if self._limiter is None or self._built_for is not settings:
            self._limiter = Limiter.from_settings(settings)
            self._built_for = settings
            if state is not None:
                state.rate_limiter = self._limiter
        return self._limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        budget = budget_for(str(scope.get("method", "GET")), str(scope.get("path", "")))
        limiter = self._limiter_for(scope) if budget is not None else None
        if limiter is None or budget is None:
            await self.app(scope, receive, send)
            return
        credential = None if budget == "signin" else credential_key(scope)
        address = client_address(scope)
        try:
            if limiter.inline:
                verdict = limiter.check(budget, credential, address)
            else:
                verdict = await run_in_threadpool(limiter.check, budget, credential, address)
        except Exception as exc:  # the storage failed: serve rather than refuse everyone
            log.warning("rate limit storage failed (%s): request let through", type(exc).__name__)
            await self.app(scope, receive, send)
            return
        if not verdict.allowed:
            await too_many(scope, verdict)(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in verdict.headers().items()]

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_fields)
