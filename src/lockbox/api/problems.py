"""RFC 9457 problem details for every error the API returns.

Each domain error family maps to one status and a stable ``type`` URN
(``urn:lockbox:problem:<code>``): a URN rather than a URL, because these
strings identify problems, they are not pages to visit. The same mapping
(:data:`STATUS`) decides what an operation's OpenAPI responses declare
(:mod:`lockbox.api.contract`), so the documented statuses and the answered ones
cannot drift apart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
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


class PayloadTooLarge(errors.LockboxError):
    """The request body is over the size limit; it was not read any further (HTTP 413)."""

    code = "payload_too_large"
    title = "Payload too large"


class DatabaseBusy(errors.LockboxError):
    """SQLite's writer lock was not free in time: nothing was written, try again (HTTP 503)."""

    code = "database_busy"
    title = "Service busy"


class MethodNotAllowed(errors.LockboxError):
    """The path exists but not with this method; ``Allow`` lists the ones it has (HTTP 405)."""

    code = "method_not_allowed"
    title = "Method not allowed"


#: Status of each error family; the most specific class in an error's MRO wins.
STATUS: dict[type[errors.LockboxError], int] = {
    PreconditionFailed: 412,
    PayloadTooLarge: 413,
    DatabaseBusy: 503,
    MethodNotAllowed: 405,
    errors.ValidationError: 422,
    errors.NotFound: 404,
    errors.PermissionDenied: 403,
    errors.AuthenticationFailed: 401,
    errors.StepUpRequired: 401,
    errors.InvalidTransition: 409,
    errors.Conflict: 409,
    errors.AlreadyExists: 409,
    errors.RateLimited: 429,
    # Not a refusal: the change was accepted and waits for a second admin. Routes that can
    # propose one answer 202 with the pending change themselves; this only keeps a caller
    # that does not from reading it as a success.
    errors.ChangePending: 202,
}


def status_of(kind: type[errors.LockboxError]) -> int:
    """The HTTP status of an error class (400 for a family nobody mapped yet)."""
    for base in kind.__mro__:
        if base in STATUS:
            return STATUS[base]
    return 400


def status_for(exc: errors.LockboxError) -> int:
    return status_of(type(exc))


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:lockbox:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(
        body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {})
    )


def _clean(field: str, message: str) -> str:
    """A message without what the field name beside it already says.

    Validators word their messages for a reader who sees no field name ("Value error,
    audience: must be …"); the problem names the field in ``field``, so the message
    starts after it, however many times it was repeated.
    """
    message = message.removeprefix("Value error, ")
    while field and message.startswith(f"{field}: "):
        message = message.removeprefix(f"{field}: ")
    return message


def invalid(items: Iterable[tuple[str, str]]) -> JSONResponse:
    """The one 422 every validation failure gets: ``errors`` names each field once."""
    listed = [{"field": field, "message": _clean(field, message)} for field, message in items]
    detail = "; ".join(f"{i['field']}: {i['message']}" for i in listed) or "invalid request"
    title = errors.ValidationError.title
    return problem(422, errors.ValidationError.code, title, detail, errors=listed)


def step_up_challenge(exc: errors.StepUpRequired) -> str:
    """The RFC 9470 (OAuth 2.0 step-up authentication) challenge of a step-up refusal.

    ``error="insufficient_user_authentication"`` tells a client that the credential is
    fine but the person's authentication is too old for this action: authenticate again
    (no older than ``max_age`` seconds), then repeat the request.
    """
    challenge = (
        'Bearer error="insufficient_user_authentication", '
        'error_description="A more recent authentication is required"'
    )
    if exc.max_age is not None:
        challenge += f', max_age="{int(exc.max_age)}"'
    return challenge


def from_domain(
    exc: errors.LockboxError, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    if isinstance(exc, errors.ValidationError):
        return invalid([(exc.field, exc.message)])
    status = status_for(exc)
    sent = dict(headers or {})
    if isinstance(exc, errors.StepUpRequired):
        sent["WWW-Authenticate"] = step_up_challenge(exc)
    elif status == 401:
        sent["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, errors.RateLimited):
        sent["Retry-After"] = str(exc.retry_after)
    return problem(status, exc.code, exc.title, exc.message, headers=sent, **exc.extra)


def http_problem(exc: StarletteHTTPException, allow: str | None = None) -> JSONResponse:
    """A framework error (unknown path, wrong method, body too large) as a problem."""
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        return from_domain(errors.NotFound("Not found"), headers=headers)
    if exc.status_code == 405:
        if allow is not None:
            headers["Allow"] = allow
        return from_domain(MethodNotAllowed("Method Not Allowed"), headers=headers)
    if exc.status_code == 413:
        return from_domain(PayloadTooLarge(str(exc.detail)), headers=headers)
    return problem(exc.status_code, "http_error", str(exc.detail), str(exc.detail), headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path or ".".join(str(p) for p in loc)


def _request_errors(exc: RequestValidationError) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        message = str(err.get("msg", "invalid"))
        if err.get("type") == "extra_forbidden":
            message = "unknown field"
        elif err.get("type") == "json_invalid":
            where = f" at character {loc[1]}" if len(loc) > 1 else ""
            items.append(("body", f"malformed JSON{where}"))
            continue
        elif err.get("type") == "string_pattern_mismatch" and loc[:1] == ("path",):
            message = f"is not {_PATH_SHAPES.get(str(loc[-1]), 'a valid value here')}"
        items.append((_field_path(loc), message))
    return items


#: How a malformed path parameter is described (its pattern would say it less clearly).
_PATH_SHAPES = {
    "request_id": "an access request id (req_ and 26 letters and digits)",
    "case_id": "a support case id (case_ and 26 letters and digits)",
    "token_id": "an API token id (tok_ and 26 letters and digits)",
    "webhook_id": "a webhook id (whk_ and 26 letters and digits)",
    "message_id": "an outbox message id (msg_ and 26 letters and digits)",
    "rule_id": "an auto-approval rule id (aar_ and 26 letters and digits)",
    "change_id": "a pending change id (pch_ and 26 letters and digits)",
    "tenant": "a tenant slug (lower-case letters, digits, '-') or id (ten_…)",
    "user": "a user id (usr_…) or e-mail address",
}


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into problem+json."""

    @app.exception_handler(errors.LockboxError)
    async def _domain(_request: Request, exc: errors.LockboxError) -> JSONResponse:
        return from_domain(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid(_request_errors(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        pages = getattr(request.app.state, "page_errors", None)
        if pages is not None and pages.handles(request):
            response: Response = pages.http_error(request, exc)
            return response
        allow = None
        if exc.status_code == 405:
            from lockbox.api.methods import allow_header  # the routes are known by now

            allow = allow_header(request.app, request.scope)
        return http_problem(exc, allow)

    @app.exception_handler(OperationalError)
    async def _busy(_request: Request, exc: OperationalError) -> JSONResponse:
        # SQLite waits busy_timeout for a writer's lock; when that runs out the database is
        # overloaded, not broken: answer 503 with Retry-After (nothing was written), not 500.
        if "database is locked" not in str(exc.orig) and "database is busy" not in str(exc.orig):
            return await _unexpected(_request, exc)
        log.warning("database busy: %s", type(exc.orig).__name__)
        busy = DatabaseBusy(
            "the database is busy with other writes; nothing was changed, try again"
        )
        return from_domain(busy, headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "internal_error", "Internal error", "an unexpected error occurred")
