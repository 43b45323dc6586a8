"""``Allow``: which methods a path has, for ``OPTIONS`` and for ``405 Method Not Allowed``.

Starlette answers a wrong method with the methods of the *first* route whose path
matched, so ``/v1/cases`` (one route for GET, one for POST) said ``Allow: POST``
although GET works too, and ``OPTIONS`` was a 405. Here the answer is computed from
every route of the application whose path matches, so it lists each method the path
has, exactly as the OpenAPI schema does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send


def routes(app: Any) -> Iterator[Any]:
    """Every route of ``app``, including those of included routers, flattened."""
    from fastapi import routing

    iterate = getattr(routing, "iter_route_contexts", None)  # FastAPI ≥ 0.160 nests them
    routes: Iterable[Any] = iterate(app.routes) if iterate is not None else app.routes
    yield from routes


def methods_for(app: Any, scope: Scope) -> tuple[set[str], bool]:
    """(the methods routes matching the path of ``scope`` have, whether one takes its method)."""
    methods: set[str] = set()
    handled = False
    probe = dict(scope)
    for route in routes(app):
        match, _child = route.matches(probe)
        if match is Match.NONE:
            continue
        route_methods = getattr(route, "methods", None) or set()
        methods |= set(route_methods)
        handled = handled or match is Match.FULL
    return methods, handled


def allow_header(app: Any, scope: Scope) -> str | None:
    """The ``Allow`` value for the path of ``scope``: every method it has, and OPTIONS."""
    methods, _handled = methods_for(app, scope)
    if not methods:
        return None
    return ", ".join(sorted(methods | {"OPTIONS"}))


class Options:
    """ASGI middleware: ``OPTIONS`` on a path the application has answers 204 with ``Allow``.

    A route that takes OPTIONS itself is left to answer it, and a path no route has stays
    a 404. No credential is needed: the answer says only what the public schema says.
    """

    def __init__(self, app: ASGIApp, application: FastAPI) -> None:
        self.app = app
        self.application = application

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "OPTIONS":
            await self.app(scope, receive, send)
            return
        methods, handled = methods_for(self.application, scope)
        if handled or not methods:
            await self.app(scope, receive, send)
            return
        allow = allow_header(self.application, scope) or "OPTIONS"
        await Response(status_code=204, headers={"Allow": allow})(scope, receive, send)
