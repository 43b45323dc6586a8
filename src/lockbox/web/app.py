"""Mount the admin center and the support portal on the API's application.

Pages live at ``/`` and the API stays at ``/v1``: one process, one service
layer, one permission matrix. Page modules (``pages_*.py``) each hold one
section's handlers, like ``api/routes_*.py``; their templates are under
``templates/<section>/``. Static files are served from the package itself, with
a year of caching when the URL carries the files' current hash.
"""

from __future__ import annotations

from importlib import import_module

from fastapi import APIRouter, FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from lockbox.domain import errors
from lockbox.web import security
from lockbox.web.page import error_page
from lockbox.web.rendering import STATIC_DIR, STATIC_FILES, static_version

#: Page modules, in the order their routes are matched.
PAGE_MODULES: list[str] = [
    "pages_auth",
    "pages_signin",
    "pages_security",
    "pages_requests",
    "pages_portal",
    "pages_tenant",
    "pages_auto_approval",
    "pages_audit",
    "pages_admin",
]
_MEDIA_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


class PageErrors:
    """Lets the API's HTTP-error handler answer page paths with an HTML page."""

    @staticmethod
    def handles(request: Request) -> bool:
        return security.is_page(request.url.path)

    @staticmethod
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_page(request, errors.NotFound("there is no such page"))
        if exc.status_code == 405:
            return error_page(request, errors.PermissionDenied("this page cannot do that"))
        return error_page(request, errors.ValidationError("request", str(exc.detail)))


def mount(app: FastAPI) -> None:
    app.state.page_errors = PageErrors()
    app.add_middleware(security.PageHeaders)
    app.add_api_route("/static/{name}", static_file, methods=["GET"], include_in_schema=False)
    for name in PAGE_MODULES:
        router = import_module(f"lockbox.web.{name}").router
        if not isinstance(router, APIRouter):
            raise TypeError(f"lockbox.web.{name}.router is not an APIRouter")
        app.include_router(router, include_in_schema=False)


def static_file(name: str, request: Request) -> Response:
    """A packaged CSS or JS file; immutable for a year when ``?v`` is the current hash."""
    if name not in STATIC_FILES:
        return error_page(request, errors.NotFound("there is no such file"))
    path = STATIC_DIR / name
    current = request.query_params.get("v") == static_version()
    cache = "public, max-age=31536000, immutable" if current else "no-cache"
    return Response(
        path.read_bytes(),
        media_type=_MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
        headers={"Cache-Control": cache},
    )
