"""RFC 9457 problem details for every error the API returns.

Each domain error family maps to one status and a stable ``type`` URN
(``urn:lockbox:problem:<code>``): a URN rather than a URL, because these
strings identify problems, they are not pages to visit.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from lockbox.domain import errors

log = logging.getLogger("lockbox.api")

PROBLEM_JSON = "application/problem+json"


class PreconditionFailed(errors.Conflict):
    """The object changed since the version named in ``If-Match`` (HTTP 412)."""

    code = "precondition_failed"
    title = "Precondition failed"


STATUS: dict[type[errors.LockboxError], int] = {
    PreconditionFailed: 412,
    errors.ValidationError: 422,
    errors.NotFound: 404,
    errors.PermissionDenied: 403,
    errors.AuthenticationFailed: 401,
    errors.InvalidTransition: 409,
    errors.Conflict: 409,
    errors.AlreadyExists: 409,
    errors.RateLimited: 429,
}


def status_for(exc: errors.LockboxError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:lockbox:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def from_domain(exc: errors.LockboxError) -> JSONResponse:
    status = status_for(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, errors.RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    extra = dict(exc.extra)
    if isinstance(exc, errors.ValidationError):
        message = exc.message.removeprefix(f"{exc.field}: ")  # the field is named beside it
        extra = {"errors": [{"field": exc.field, "message": message}]}
    return problem(status, exc.code, exc.title, exc.message, headers=headers, **extra)


def http_problem(exc: StarletteHTTPException) -> JSONResponse:
    codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
    code = codes.get(exc.status_code, "http_error")
    return problem(
        exc.status_code,
        code,
        str(exc.detail) if exc.status_code != 404 else "Not found",
        str(exc.detail),
        headers=dict(exc.headers) if exc.headers else None,
    )


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path or ".".join(str(p) for p in loc)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into problem+json."""

    @app.exception_handler(errors.LockboxError)
    async def _domain(_request: Request, exc: errors.LockboxError) -> JSONResponse:
        return from_domain(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        items = []
        for err in exc.errors():
            loc = tuple(err.get("loc", ()))
            message = str(err.get("msg", "invalid"))
            if err.get("type") == "extra_forbidden":
                message = "unknown field"
            elif err.get("type") == "json_invalid":
                where = f" at character {loc[1]}" if len(loc) > 1 else ""
                items.append({"field": "body", "message": f"malformed JSON{where}"})
                continue
            items.append({"field": _field_path(loc), "message": message})
        detail = "; ".join(f"{i['field']}: {i['message']}" for i in items) or "invalid request"
        return problem(422, "validation_error", "Invalid input", detail, errors=items)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        pages = getattr(request.app.state, "page_errors", None)
        if pages is not None and pages.handles(request):
            response: Response = pages.http_error(request, exc)
            return response
        return http_problem(exc)

    @app.exception_handler(OperationalError)
    async def _busy(_request: Request, exc: OperationalError) -> JSONResponse:
        # SQLite waits busy_timeout for a writer's lock; when that runs out the database is
        # overloaded, not broken: answer 503 with Retry-After (nothing was written), not 500.
        if getattr(exc, "connection_invalidated", False):
            log.warning("database connection lost; the pool replaces it")
            return problem(
                503,
                "database_unavailable",
                "Service unavailable",
                "the database connection was lost; nothing was changed, try again",
                headers={"Retry-After": "1"},
            )
        if "database is locked" not in str(exc.orig) and "database is busy" not in str(exc.orig):
            return await _unexpected(_request, exc)
        log.warning("database busy: %s", type(exc.orig).__name__)
        return problem(
            503,
            "database_busy",
            "Service busy",
            "the database is busy with other writes; nothing was changed, try again",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "internal_error", "Internal error", "an unexpected error occurred")
