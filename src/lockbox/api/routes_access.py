"""Enforcement endpoints for resource services and engineers, and the public JWKS."""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import Response, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from lockbox.api import contract, params
from lockbox.api.deps import BearerDep, CheckThreadsDep, LockboxDep, PrincipalDep
from lockbox.api.problems import invalid
from lockbox.api.schemas import Jwks, RequestId, TenantRef
from lockbox.domain.errors import InvalidTransition, NotFound
from lockbox.domain.instants import format_instant
from lockbox.domain.resources import MAX_RESOURCE_LENGTH
from lockbox.service import access, access_reports, tokens

router = contract.router(tags=["access"])

ConcreteResource = Annotated[
    str, StringConstraints(max_length=MAX_RESOURCE_LENGTH, pattern=params.CONCRETE_RESOURCE)
]
KeyId = Annotated[str, StringConstraints(max_length=64, pattern=params.LINE_TEXT)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckBody(_Body):
    engineer: Annotated[str, StringConstraints(max_length=320, pattern=params.LINE_TEXT)] = Field(
        description="The engineer's user id or e-mail address, as the service knows them (an "
        "unknown one is simply denied: `no_request`)."
    )
    tenant: TenantRef = Field(description="Tenant slug or id.")
    resource: ConcreteResource = Field(description="A concrete resource name (no `*`).")
    action: Literal["read", "write"]
    request_id: RequestId | None = Field(
        default=None,
        description="Only this request counts (e.g. the one named by the engineer's token).",
    )
    kid: KeyId | None = Field(
        default=None,
        description="The key id (`kid`) of the engineer's token: a retired key denies at once "
        "(`key_retired`).",
    )


class CheckAnswer(BaseModel):
    allowed: bool
    reason: str = Field(
        description="allowed: `approved`, `lockbox_off`; denied: `no_request`, `not_approved`, "
        "`expired`, `revoked`, `closed`, `out_of_scope`, `level_too_low`, `user_inactive`, "
        "`key_retired`"
    )
    request_id: str | None
    state: str | None
    access_level: str | None
    resources: list[str]
    access_deadline: str | None
    checked_at: str


class TokenBody(_Body):
    request_id: RequestId
    audience: Annotated[str, StringConstraints(max_length=200, pattern=params.LINE_TEXT)] | None = (
        Field(
            default=None,
            description="The `aud` of the resource service the token is for (a registered "
            "service that serves the request's tenant and holds some of its resources: 422 "
            "otherwise). Default: LOCKBOX_ACCESS_TOKEN_AUDIENCE.",
        )
    )


class TokenAnswer(BaseModel):
    token: str
    token_type: str = "Bearer"
    kid: str
    request_id: str
    expires_at: str
    expires_in: int
    claims: dict[str, Any]


class EventBody(_Body):
    """One event. Fields are checked event by event (an invalid one is listed in
    `rejected` and the others are still recorded), so the limits here are loose."""

    request_id: str | None = Field(
        default=None, max_length=200, description="The request the engineer acted under."
    )
    tenant: str | None = Field(
        default=None,
        max_length=200,
        description="Slug or id of the tenant whose content the event concerns. Required "
        "without `request_id`; when it differs from the request's tenant (a grant used on "
        "another tenant's content) the event is recorded in this tenant's chain.",
    )
    action: str = Field(description="`read` or `write`.", max_length=200)
    resource: str = Field(
        max_length=4096,
        description="The resource name; on a `denied` event a name that cannot be parsed is "
        "kept, escaped, as `resource_raw`.",
    )
    outcome: str = Field(
        default="success", max_length=200, description="`success`, `failure` or `denied`."
    )
    reason: str | None = Field(
        default=None, max_length=200, description="Why the service refused (`denied`)."
    )
    detail: str | None = Field(default=None, max_length=4096)
    engineer: str | None = Field(
        default=None, max_length=320, description="Who acted, if the service knows it."
    )
    occurred_at: str | None = Field(
        default=None,
        max_length=200,
        description="RFC 3339 with a zone, within the last 30 days and not in the future.",
    )


class EventsBody(_Body):
    events: list[EventBody] = Field(min_length=1, max_length=access_reports.MAX_EVENTS)


class RecordedAnswer(BaseModel):
    index: int = Field(description="Position of the event in the report.")
    audit_id: str
    tenant_id: str
    seq: int
    request_id: str | None
    operation: str
    flag: str | None
    first_use: bool


class RejectedAnswer(BaseModel):
    index: int
    field: str
    message: str


class EventsAnswer(BaseModel):
    recorded: list[RecordedAnswer]
    rejected: list[RejectedAnswer]


@router.post(
    "/v1/access/check",
    response_model=CheckAnswer,
    summary="May this engineer perform this action on this resource now? (resource services)",
    operation_id="checkAccess",
)
async def check_access(
    body: CheckBody, lockbox: LockboxDep, bearer: BearerDep, threads: CheckThreadsDep
) -> dict[str, Any]:
    # In a thread of its own small pool (LOCKBOX_CHECK_CONCURRENCY), not the shared one of
    # 40: under load, fewer threads taking turns at the database answer more checks. The
    # pool only reads; the token's "last used" write, once a minute, goes to the shared one.
    check = partial(
        access.check_bearer,
        lockbox,
        bearer,
        engineer=body.engineer,
        tenant=body.tenant,
        resource=body.resource,
        action=body.action,
        request_id=body.request_id,
        kid=body.kid,
    )
    result, touch = await anyio.to_thread.run_sync(check, limiter=threads)
    if touch is not None:
        await run_in_threadpool(tokens.touch_token, lockbox, touch)
    return result.as_dict()


@router.post(
    "/v1/access/token",
    response_model=TokenAnswer,
    status_code=status.HTTP_201_CREATED,
    summary="Obtain a short-lived signed access token for an approved request (its requester)",
    operation_id="issueAccessToken",
    responses={201: {"description": "The token (also `Cache-Control: no-store`)."}},
)
@contract.raises(InvalidTransition, NotFound)
def issue_token(
    body: TokenBody, lockbox: LockboxDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    issued = access.issue_token(lockbox, principal, body.request_id, audience=body.audience)
    response.headers["Cache-Control"] = "no-store"
    claims = issued.claims
    return {
        "token": issued.token,
        "token_type": "Bearer",
        "kid": issued.kid,
        "request_id": issued.request_id,
        "expires_at": format_instant(issued.expires_at),
        "expires_in": max(0, int(claims["exp"]) - int(claims["iat"])),
        "claims": claims,
    }


@router.post(
    "/v1/access/events",
    response_model=EventsAnswer,
    status_code=status.HTTP_201_CREATED,
    summary="Report engineer actions and refusals; each becomes an audit record",
    description="Each valid event becomes an `access.read` / `access.write` record in the "
    "chain of the tenant it concerns; invalid events are listed in `rejected` and cost the "
    "others nothing. 422 only when no event at all could be recorded.",
    operation_id="reportAccessEvents",
)
def report_events(body: EventsBody, lockbox: LockboxDep, principal: PrincipalDep) -> Any:
    result = access_reports.report_events(
        lockbox, principal, [e.model_dump(exclude_none=True) for e in body.events]
    )
    rejected = [{"index": r.index, "field": r.field, "message": r.message} for r in result.rejected]
    if not result.recorded:
        return invalid((r.field, r.message) for r in result.rejected)
    return {"recorded": [asdict(r) for r in result.recorded], "rejected": rejected}


@router.get(
    "/.well-known/jwks.json",
    response_model=Jwks,
    summary="Public keys that verify access tokens (JWK Set)",
    operation_id="getJwks",
)
def jwks(lockbox: LockboxDep, response: Response) -> dict[str, Any]:
    # Revalidate every time: a cache in front of Lockbox must not stretch how long a
    # retired key keeps verifying beyond the SDK's own bound (its max_age).
    response.headers["Cache-Control"] = "no-cache"
    return access.jwks(lockbox)
