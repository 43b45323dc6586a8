"""``GET /metrics`` for Prometheus, and the middleware that times every request.

The endpoint is for the operator's scraper, not for people or resource
services, so it has its own credential: ``Authorization: Bearer
<LOCKBOX_METRICS_TOKEN>``, compared in constant time. Without that setting it
answers 404 to every method, exactly like a path that does not exist, so a
stranger cannot even learn it is there. ``lockbox serve --metrics-port N``
serves the same exposition without a token on a loopback-only port instead
(:func:`metrics_collector` is shared by both).

Latency is timed by a plain ASGI middleware (no ``BaseHTTPMiddleware``: the
grant feed streams) from a request's arrival to its response headers, and
labelled with the matched route's *template*, never the raw path.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from fastapi import APIRouter, Request, Response
from starlette.datastructures import State
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lockbox import metrics
from lockbox.api.deps import LockboxDep
from lockbox.config import Settings, get_settings
from lockbox.domain.errors import AuthenticationFailed
from lockbox.service import metrics_queries
from lockbox.service.app import Lockbox
from lockbox.service.denials import DenialRecorder

router = APIRouter(tags=["health"], include_in_schema=False)

#: Every method answers the same 404 while the endpoint is switched off (a GET-only
#: route would answer 405 to a POST and so give itself away).
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def metrics_collector(
    lockbox: Lockbox, settings: Settings, *, before: Callable[[], None] | None = None
) -> metrics.LockboxCollector:
    """The exposition of this process (or of every worker) plus the database gauges.

    ``before`` runs at the start of every scrape (bringing per-process counts up to date).
    """
    idle = timedelta(minutes=settings.session_idle_minutes)
    return metrics.LockboxCollector(
        partial(metrics_queries.snapshot, lockbox, session_idle=idle), before=before
    )


def _token_matches(header: str | None, expected: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Digests of equal length: the comparison time says nothing about the token's length.
    return hmac.compare_digest(
        hashlib.sha256(given.strip().encode()).digest(),
        hashlib.sha256(expected.encode()).digest(),
    )


@router.api_route("/metrics", methods=_ALL_METHODS, include_in_schema=False)
def scrape(request: Request, lockbox: LockboxDep) -> Response:
    settings: Settings = getattr(request.app.state, "settings", None) or get_settings()
    if settings.metrics_token is None:
        raise StarletteHTTPException(status_code=404)
    if not _token_matches(
        request.headers.get("authorization"), settings.metrics_token.get_secret_value()
    ):
        raise AuthenticationFailed("send 'Authorization: Bearer <LOCKBOX_METRICS_TOKEN>'")
    if request.method not in ("GET", "HEAD"):
        raise StarletteHTTPException(status_code=405, headers={"Allow": "GET, HEAD"})
    collector = metrics_collector(
        lockbox, settings, before=partial(sync_denials, request.app.state)
    )
    body, content_type = metrics.render(collector, request.headers.get("accept"))
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})


_sync_lock = threading.Lock()


def sync_denials(state: State) -> None:
    """Bring the denied-check audit counters up to date with this application's recorder.

    Cheap (four integers), so it runs after every request. The bookkeeping of what was
    already counted lives with the application, next to the recorder it follows.
    """
    recorder = getattr(getattr(state, "lockbox", None), "denials", None)
    if not isinstance(recorder, DenialRecorder):
        return
    sync = getattr(state, "denial_metrics", None)
    if not isinstance(sync, metrics.DenialStatsSync):
        with _sync_lock:
            sync = getattr(state, "denial_metrics", None)
            if not isinstance(sync, metrics.DenialStatsSync):
                sync = metrics.DenialStatsSync()
                state.denial_metrics = sync
    sync.sync(recorder.stats)


class RequestMetrics:
    """ASGI middleware: one latency observation per HTTP request, by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        observed = False

        async def timed_send(message: Message) -> None:
            nonlocal observed
            if message["type"] == "http.response.start" and not observed:
                observed = True
                metrics.observe_request(
                    route_template(scope),
                    str(scope.get("method", "")),
                    int(message["status"]),
                    time.perf_counter() - started,
                )
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        except Exception:
            if not observed:  # the error handler outside answers 500
                metrics.observe_request(
                    route_template(scope),
                    str(scope.get("method", "")),
                    500,
                    time.perf_counter() - started,
                )
            raise
        finally:
            app = scope.get("app")
            if app is not None:
                sync_denials(app.state)


def route_template(scope: Scope) -> str:
    """The path template of the route the router chose; :data:`~lockbox.metrics.UNMATCHED`
    when none did (an unknown path, or a request refused before routing, such as a body
    over the size limit). Never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else metrics.UNMATCHED
