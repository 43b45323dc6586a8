"""Enforcement endpoints for resource services and engineers, and the public JWKS."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import ID
from lockbox.service import access

router = APIRouter(tags=["access"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckBody(_Body):
    engineer: str = Field(description="The engineer's user id or e-mail address.", max_length=320)
    tenant: str = Field(description="Tenant id or slug.", max_length=100)
    resource: str = Field(description="A concrete resource name.", max_length=512)
    action: str = Field(description="`read` or `write`.", max_length=16)
    request_id: str | None = Field(
        default=None,
        max_length=40,
        pattern=ID,
        description="Only this request counts (e.g. the one named by the engineer's token).",
    )


class CheckAnswer(BaseModel):
    allowed: bool
    reason: str = Field(
        description="allowed: `approved`, `lockbox_off`; denied: `no_request`, `not_approved`, "
        "`expired`, `revoked`, `closed`, `out_of_scope`, `level_too_low`, `user_inactive`"
    )
    request_id: str | None
    state: str | None
    access_level: str | None
    resources: list[str]
    access_deadline: str | None
    checked_at: str


class TokenBody(_Body):
    request_id: str = Field(max_length=40, pattern=ID)
    audience: str | None = Field(
        default=None, max_length=200, description="Default: LOCKBOX_ACCESS_TOKEN_AUDIENCE."
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
    request_id: str = Field(max_length=40, pattern=ID)
    action: str = Field(description="`read` or `write`.", max_length=16)
    resource: str = Field(max_length=512)
    outcome: str = Field(default="success", description="`success`, `failure` or `denied`.")
    detail: str | None = Field(default=None, max_length=2000)
    engineer: str | None = Field(
        default=None, max_length=320, description="Who acted, if the service knows it."
    )
    occurred_at: str | None = Field(default=None, max_length=40)


class EventsBody(_Body):
    events: list[EventBody] = Field(min_length=1, max_length=access.MAX_EVENTS)


class RecordedAnswer(BaseModel):
    audit_id: str
    tenant_id: str
    seq: int
    request_id: str
    operation: str
    flag: str | None
    first_use: bool


class EventsAnswer(BaseModel):
    recorded: list[RecordedAnswer]


@router.post(
    "/v1/access/check",
    response_model=CheckAnswer,
    summary="May this engineer perform this action on this resource now? (resource services)",
)
def check_access(body: CheckBody, lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    result = access.check(
        lockbox,
        principal,
        engineer=body.engineer,
        tenant=body.tenant,
        resource=body.resource,
        action=body.action,
        request_id=body.request_id,
    )
    return result.as_dict()


@router.post(
    "/v1/access/token",
    response_model=TokenAnswer,
    status_code=status.HTTP_201_CREATED,
    summary="Obtain a short-lived signed access token for an approved request (its requester)",
)
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
        "expires_at": issued.expires_at.isoformat().replace("+00:00", "Z"),
        "expires_in": max(0, int(claims["exp"]) - int(claims["iat"])),
        "claims": claims,
    }


@router.post(
    "/v1/access/events",
    response_model=EventsAnswer,
    status_code=status.HTTP_201_CREATED,
    summary="Report engineer actions; each becomes an audit record (resource services)",
)
def report_events(body: EventsBody, lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    recorded = access.report_events(lockbox, principal, [e.model_dump() for e in body.events])
    return {
        "recorded": [
            {
                "audit_id": r.audit_id,
                "tenant_id": r.tenant_id,
                "seq": r.seq,
                "request_id": r.request_id,
                "operation": r.operation,
                "flag": r.flag,
                "first_use": r.first_use,
            }
            for r in recorded
        ]
    }


@router.get(
    "/.well-known/jwks.json",
    summary="Public keys that verify access tokens (JWK Set)",
    tags=["access"],
)
def jwks(lockbox: LockboxDep, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=60"
    return access.jwks(lockbox)
