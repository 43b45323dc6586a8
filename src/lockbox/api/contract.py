"""The API contract: every operation's error responses, derived from the code.

What an operation can answer besides success follows from what it is made of,
so it is computed, not written by hand per route (where it would drift):

* an authenticated route (it depends on :func:`~lockbox.api.deps.get_principal` or
  :func:`~lockbox.api.deps.get_bearer`) can
  answer 401, and, as the permission matrix decides, 404 (not visible to the caller,
  exactly like missing) and 403 (visible, but not the caller's to do);
* a route with a path parameter, 404;
* a route that takes any input, 422; with a body, also 413;
* a route with ``If-Match``, 412;
* an action (a method other than GET) that writes can lose a race, 409;
* a route the rate limiter counts (:func:`lockbox.api.ratelimit.budget_for`), 429;
* a route that uses the database, 503 (SQLite's writer lock was busy);
* whatever else a handler's use case can refuse is declared beside the handler with
  :func:`raises` (the domain error classes, mapped to statuses by
  :data:`lockbox.api.problems.STATUS`).

Every error response has the media type ``application/problem+json`` and one shared
schema, :class:`Problem`. Routers are :class:`ContractRouter`\\ s, which add these
responses when a route is declared; :func:`install` puts the shared schemas into
the application's OpenAPI document and answers ``OPTIONS``. ``tests/api/test_contract.py``
keeps all of it true (every operation has an ``operation_id``, a tag, the derived
responses; the matrix of roles never answers an undocumented status).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant, get_parameterless_sub_dependant
from pydantic import BaseModel, ConfigDict, Field

from lockbox.api import deps, methods, problems, ratelimit
from lockbox.domain import errors

PROBLEM_REF = "#/components/schemas/Problem"
_MARK = "__lockbox_contract__"
F = TypeVar("F", bound=Callable[..., Any])


class FieldError(BaseModel):
    """One invalid input of a 422: which field, and what is wrong with it."""

    field: str = Field(
        description="Where: a body field path (`resources[0]`, `events[2].resource`), a "
        "query or path parameter, a header (`If-Match`), or `body` for the whole body.",
        examples=["resources[0]"],
    )
    message: str = Field(examples=["must be 1 to 512 characters"])


class Problem(BaseModel):
    """RFC 9457 problem details: the body of every error answer (``application/problem+json``).

    ``type`` is stable (``urn:lockbox:problem:<code>``) and is what a client should switch
    on; ``title`` names the kind of problem and ``detail`` says what happened this time.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:lockbox:problem:invalid_state",
                    "title": "Not allowed in the current state",
                    "status": 409,
                    "detail": "cannot revoke a request that is closed",
                    "state": "closed",
                }
            ]
        },
    )

    type: str = Field(
        pattern=r"^urn:lockbox:problem:[a-z_]+$",
        description="`urn:lockbox:problem:<code>`, e.g. `not_found`, `invalid_state`.",
    )
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    errors: list[FieldError] | None = Field(None, description="422: one entry per invalid input.")
    field: str | None = Field(None, description="409 `already_exists`: the taken field.")
    state: str | None = Field(
        None, description="409 and 412 on a request: its current (effective) state."
    )
    version: int | None = Field(None, description="412: the object's current version.")
    retry_after: int | None = Field(
        None, description="429: seconds until another attempt may succeed (also `Retry-After`)."
    )
    reason: str | None = Field(None, description="A stable code for why, where one applies.")
    budget: str | None = Field(None, description="429: the rate-limit budget that ran out.")
    max_age: int | None = Field(
        None,
        description=(
            "401 `step_up_required`: authenticate again, no longer than this many seconds "
            "ago, then repeat the request (also in `WWW-Authenticate`, RFC 9470)."
        ),
    )


@dataclass(frozen=True)
class Declared:
    """What a handler declares about itself: the refusals its use case adds, and whether it
    writes (an action that is a read, such as a POSTed check, never loses a race)."""

    refusals: tuple[type[errors.LockboxError], ...]
    writes: bool | None


def raises(*kinds: type[errors.LockboxError], writes: bool | None = None) -> Callable[[F], F]:
    """Declare the refusals of a handler's use case beyond those its shape implies.

    ``writes=False`` marks a POST that only reads (no 409 from a lost race).
    """
    for kind in kinds:
        if problems.status_of(kind) == 400:
            raise TypeError(f"{kind.__name__} has no HTTP status in lockbox.api.problems.STATUS")

    def mark(handler: F) -> F:
        setattr(handler, _MARK, Declared(tuple(kinds), writes))
        return handler

    return mark


def declared(handler: Callable[..., Any]) -> Declared:
    found = getattr(handler, _MARK, None)
    return found if isinstance(found, Declared) else Declared((), None)


def _tree(dependant: Dependant) -> Iterator[Dependant]:
    """A dependant and everything it depends on, depth first."""
    yield dependant
    for sub in dependant.dependencies:
        yield from _tree(sub)


def dependant_of(
    path: str, handler: Callable[..., Any], dependencies: Sequence[params.Depends] = ()
) -> Dependant:
    """What FastAPI will make of a route: its parameters and (sub-)dependencies."""
    dependant = get_dependant(path=path, call=handler)
    for depends in dependencies:
        dependant.dependencies.append(get_parameterless_sub_dependant(depends=depends, path=path))
    return dependant


def refusals(
    path: str, handler: Callable[..., Any], methods: Iterable[str], dependant: Dependant
) -> list[type[errors.LockboxError]]:
    """Every refusal a route can answer, in a stable order: derived, then declared."""
    methods = [m.upper() for m in methods]
    tree = list(_tree(dependant))
    calls = {d.call for d in tree}
    path_params = [p for d in tree for p in d.path_params]
    headers = [p for d in tree for p in d.header_params]
    body = [p for d in tree for p in d.body_params]
    other = [p for d in tree for p in (*d.query_params, *d.cookie_params)]
    marks = declared(handler)
    authenticated = deps.get_principal in calls or deps.get_bearer in calls
    uses_db = deps.get_lockbox in calls
    writes = marks.writes if marks.writes is not None else bool(set(methods) - {"GET", "HEAD"})
    found: list[type[errors.LockboxError]] = []
    if authenticated:
        # Every authenticated use case asks the permission matrix: what the caller may not
        # see is not found, what they see but may not do is forbidden.
        found += [errors.AuthenticationFailed, errors.PermissionDenied, errors.NotFound]
    elif path_params:
        found.append(errors.NotFound)
    if path_params or headers or body or other:
        found.append(errors.ValidationError)
    if body:
        found.append(problems.PayloadTooLarge)
    if any(p.alias == "If-Match" for p in headers):
        found.append(problems.PreconditionFailed)
    if writes and uses_db:
        found.append(errors.Conflict)
    if any(ratelimit.budget_for(method, path) is not None for method in methods):
        found.append(errors.RateLimited)
    if uses_db:
        found.append(problems.DatabaseBusy)
    found.extend(k for k in marks.refusals if k not in found)
    return found


_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": (
                "`Bearer`: send an API token. A step-up refusal (`step_up_required`) says "
                '`Bearer error="insufficient_user_authentication", max_age="<seconds>"` '
                "(RFC 9470): sign in again, then repeat the request."
            ),
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
}


def _summary(kind: type[errors.LockboxError]) -> str:
    why = (kind.__doc__ or kind.title).strip().split("\n\n")[0]
    return f"`{kind.code}`: {' '.join(why.split())}"


def problem_responses(
    kinds: Sequence[type[errors.LockboxError]],
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for ``kinds``: one per status, listing each problem ``type`` code."""
    by_status: dict[int, list[type[errors.LockboxError]]] = {}
    for kind in kinds:
        by_status.setdefault(problems.status_of(kind), []).append(kind)
    answers: dict[int | str, dict[str, Any]] = {}
    for status in sorted(by_status):
        entry: dict[str, Any] = {
            "description": " ".join(_summary(k) for k in by_status[status]),
            "content": {problems.PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
        }
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        answers[status] = entry
    return answers


class ContractRouter(APIRouter):
    """An :class:`APIRouter` whose routes document every refusal they can answer."""

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        methods = [m.upper() for m in (kwargs.get("methods") or ["GET"])]
        dependencies = [*self.dependencies, *(kwargs.get("dependencies") or [])]
        full = self.prefix + path
        dependant = dependant_of(full, endpoint, dependencies)
        derived = problem_responses(refusals(full, endpoint, methods, dependant))
        given = dict(kwargs.pop("responses", None) or {})
        for status, entry in derived.items():
            given.setdefault(status, entry)  # what a route states itself wins
        super().add_api_route(path, endpoint, responses=given, **kwargs)


def router(**kwargs: Any) -> ContractRouter:
    """A router for ``/v1`` routes (same arguments as :class:`APIRouter`)."""
    return ContractRouter(**kwargs)


def _problem_schemas() -> dict[str, Any]:
    schema = Problem.model_json_schema(
        ref_template="#/components/schemas/{model}", mode="serialization"
    )
    found: dict[str, Any] = dict(schema.pop("$defs", {}))
    found["Problem"] = schema
    return found


_FASTAPI_422 = "#/components/schemas/HTTPValidationError"


def complete(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every operation's derived refusals, whatever router declared it.

    Routes of a :class:`ContractRouter` have them already; a route of a plain router gets
    them here, in place of FastAPI's own 422 (a shape this API never answers with).
    """
    paths = schema.get("paths", {})
    for route in routes_of(app):
        if not getattr(route, "include_in_schema", False) or route.dependant is None:
            continue
        methods = sorted(route.methods or ())
        found = refusals(route.path_format, route.endpoint, methods, route.dependant)
        derived = problem_responses(found)
        for method in methods:
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            answers = operation.setdefault("responses", {})
            fastapi_422 = answers.get("422", {}).get("content", {}).get("application/json", {})
            if fastapi_422.get("schema", {}).get("$ref") == _FASTAPI_422:
                del answers["422"]
            for status, entry in derived.items():
                answers.setdefault(str(status), entry)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, value in _problem_schemas().items():
        components.setdefault(name, value)
    if _FASTAPI_422 not in json.dumps(paths):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
    return schema


def routes_of(app: FastAPI) -> list[Any]:
    """The application's API routes (FastAPI route contexts), included routers flattened."""
    from fastapi.routing import APIRoute

    found = []
    for route in methods.routes(app):
        original = getattr(route, "original_route", route)
        if isinstance(original, APIRoute):
            found.append(route)
    return found


def install(app: FastAPI) -> None:
    """Complete ``app``'s OpenAPI document (:func:`complete`); answer ``OPTIONS``."""
    app.add_middleware(methods.Options, application=app)

    def openapi() -> dict[str, Any]:
        return complete(app, FastAPI.openapi(app))

    app.openapi = openapi  # type: ignore[method-assign]
