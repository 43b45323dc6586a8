"""``/v1/integrations``: help-desk integrations (secret shown once) and their signed events.

Managing integrations takes an API token with ``integration.manage`` (the provider admin).
``POST /v1/integrations/{id}/events`` takes no token: the Standard Webhooks signature made
with the integration's secret is the authentication (docs/helpdesk.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import Depends, Header, Path, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from lockbox.api import contract, params
from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.problems import PayloadTooLarge
from lockbox.domain import helpdesk as rules
from lockbox.domain.errors import AlreadyExists, AuthenticationFailed, PermissionDenied
from lockbox.service import helpdesk

router = contract.router(prefix="/v1/integrations", tags=["integrations"])

IntegrationId = Annotated[
    str,
    Path(
        description="Help-desk integration id (`hdi_…`).",
        pattern=params.id_pattern("integration"),
    ),
]
_MAX_OVERLAP = int(helpdesk.MAX_OVERLAP.total_seconds())


class IntegrationCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",  # unknown fields are refused, never ignored
        json_schema_extra={"examples": [{"name": "Zendesk"}]},
    )

    name: Annotated[str, StringConstraints(max_length=rules.NAME_MAX, pattern=params.LINE_TEXT)] = (
        Field(description="What the help desk is called (unique, any case), e.g. `Zendesk`.")
    )


class IntegrationRotate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"keep_previous_seconds": 86400}]},
    )

    keep_previous_seconds: StrictInt | None = Field(
        default=None,
        ge=0,
        le=_MAX_OVERLAP,
        description="How long the replaced secret still verifies, so the help desk can be "
        "switched over (default 86400, one day); 0 ends it at once (after a leak).",
    )


class IntegrationOut(BaseModel):
    id: str
    name: str
    events_path: str = Field(description="Where the help desk POSTs its signed events.")
    created_at: str
    created_by: str
    rotated_at: str | None
    previous_secret_valid_until: str | None = Field(
        description="After a rotation: until when the replaced secret still verifies."
    )


class CreatedIntegrationOut(IntegrationOut):
    secret: str = Field(
        description="The signing secret (`whsec_…`): in this response only, never again."
    )


class IntegrationList(BaseModel):
    items: list[IntegrationOut]


class EventOutcomeOut(BaseModel):
    outcome: Literal[
        "opened",
        "updated",
        "unchanged",
        "closed",
        "recorded_closed",
        "ignored_stale",
        "ignored_closed",
        "duplicate",
    ] = Field(
        description="What the event did: `opened`, `updated`, `unchanged` or `closed` the "
        "ticket's case; `recorded_closed` (closed before Lockbox saw it open: a later "
        "`ticket.opened` opens nothing); `ignored_stale` (older than the last event applied "
        "to the ticket); `ignored_closed` (the ticket is closed: nothing reopens it); "
        "`duplicate` (this `webhook-id` was processed before: nothing done again)."
    )
    ticket_id: str
    case_id: str | None = Field(description="The ticket's Lockbox case, if it has one.")
    webhook_id: str


_TICKET_STRING: dict[str, Any] = {"type": ["string", "null"], "maxLength": 320}
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "HelpdeskEvent",
    "description": "A help desk's ticket event: the ticket as it is now (docs/helpdesk.md).",
    "required": ["type", "ticket"],
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string", "enum": [e.value for e in rules.EventType]},
        "ticket": {
            "type": "object",
            "required": ["id", "updated_at"],
            "additionalProperties": False,
            "properties": {
                "id": {
                    "description": "The ticket's id in the help desk.",
                    "anyOf": [
                        {"type": "string", "minLength": 1, "maxLength": rules.TICKET_ID_MAX},
                        {"type": "integer", "minimum": 0},
                    ],
                },
                "title": {**_TICKET_STRING, "description": "The ticket's subject."},
                "tenant": {**_TICKET_STRING, "description": "The Lockbox tenant's slug."},
                "engineer": {
                    **_TICKET_STRING,
                    "description": "The assignee: a Lockbox support engineer's e-mail address.",
                },
                "updated_at": {
                    "type": "string",
                    "description": f"When the ticket last changed: {rules.TIME_HELP}.",
                },
            },
        },
    },
    "examples": [
        {
            "type": "ticket.opened",
            "ticket": {
                "id": "4521",
                "title": "Alice's mailbox does not sync",
                "tenant": "contoso",
                "engineer": "erin@provider.example",
                "updated_at": "2026-01-05T09:00:00Z",
            },
        }
    ],
}


async def _raw_body(request: Request) -> bytes:
    """The body exactly as sent: the signature covers these bytes, not a re-encoding."""
    return await request.body()


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedIntegrationOut,
    summary="Add a help-desk integration; the answer holds its signing secret, shown only once",
    operation_id="createIntegration",
)
@contract.raises(AlreadyExists)
def create_integration(
    lockbox: LockboxDep, principal: PrincipalDep, body: IntegrationCreate
) -> dict[str, Any]:
    created = helpdesk.create_integration(lockbox, principal, name=body.name)
    return {**helpdesk.view(created.row), "secret": created.secret}


@router.get(
    "",
    response_model=IntegrationList,
    summary="Help-desk integrations (never their secrets)",
    operation_id="listIntegrations",
)
@contract.raises(PermissionDenied)
def list_integrations(lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    rows = helpdesk.list_integrations(lockbox, principal)
    return {"items": [helpdesk.view(r) for r in rows]}


@router.get(
    "/{integration_id}",
    response_model=IntegrationOut,
    summary="One help-desk integration (without its secret)",
    operation_id="getIntegration",
)
def get_integration(
    lockbox: LockboxDep, principal: PrincipalDep, integration_id: IntegrationId
) -> dict[str, Any]:
    return helpdesk.view(helpdesk.get_integration(lockbox, principal, integration_id))


@router.post(
    "/{integration_id}/rotate",
    response_model=CreatedIntegrationOut,
    summary="A new signing secret, shown only once; the old one verifies for a while longer",
    operation_id="rotateIntegrationSecret",
)
def rotate_integration_secret(
    lockbox: LockboxDep,
    principal: PrincipalDep,
    integration_id: IntegrationId,
    body: IntegrationRotate | None = None,
) -> dict[str, Any]:
    seconds = body.keep_previous_seconds if body is not None else None
    overlap = helpdesk.DEFAULT_OVERLAP if seconds is None else timedelta(seconds=seconds)
    rotated = helpdesk.rotate_secret(lockbox, principal, integration_id, overlap=overlap)
    return {**helpdesk.view(rotated.row), "secret": rotated.secret}


@router.delete(
    "/{integration_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a help-desk integration (its cases stay open, as ordinary cases)",
    operation_id="deleteIntegration",
)
def delete_integration(
    lockbox: LockboxDep, principal: PrincipalDep, integration_id: IntegrationId
) -> Response:
    helpdesk.delete_integration(lockbox, principal, integration_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{integration_id}/events",
    response_model=EventOutcomeOut,
    summary="A help desk's signed ticket event: opens, updates or closes the ticket's case",
    description="No API token: the Standard Webhooks signature made with the integration's "
    "secret authenticates the call. A missing, stale (more than 5 minutes from Lockbox's "
    "clock) or wrong signature, and an unknown integration, all answer the same 401; a "
    "ticket naming an unknown tenant or engineer answers 422 naming the field. Nothing "
    "changes on either. A repeated `webhook-id`, an event older than the last one applied "
    "to its ticket and any event for a closed ticket answer 200 and change nothing.",
    operation_id="receiveIntegrationEvent",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EVENT_SCHEMA}},
        }
    },
)
@contract.raises(AuthenticationFailed, PayloadTooLarge)
def receive_event(
    lockbox: LockboxDep,
    integration_id: IntegrationId,
    body: Annotated[bytes, Depends(_raw_body)],
    webhook_id: Annotated[
        str | None,
        Header(
            alias="webhook-id",
            description="The delivery's id, the same on every retry (repeats are dropped); "
            f"one line of at most {rules.WEBHOOK_ID_MAX} characters.",
        ),
    ] = None,
    webhook_timestamp: Annotated[
        str | None,
        Header(
            alias="webhook-timestamp",
            description="Unix seconds when this attempt was signed (digits only).",
        ),
    ] = None,
    webhook_signature: Annotated[
        str | None,
        Header(
            alias="webhook-signature",
            description="`v1,<base64 HMAC-SHA256>` over `{webhook-id}.{webhook-timestamp}.{body}`"
            " (several space-separated).",
        ),
    ] = None,
) -> dict[str, Any]:
    headers = {
        name: value
        for name, value in (
            ("webhook-id", webhook_id),
            ("webhook-timestamp", webhook_timestamp),
            ("webhook-signature", webhook_signature),
        )
        if value is not None
    }
    return helpdesk.receive(lockbox, integration_id, headers, body).view()
