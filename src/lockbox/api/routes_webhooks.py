"""``/v1/webhooks``: register (secret shown once), list and delete webhook endpoints: signed
JSON (``standard``) or Slack / Microsoft Teams chat messages (``slack``, ``teams``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from lockbox.api import contract, params
from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import WebhookId, tenant_query
from lockbox.api.schemas import CreatedWebhookOut, TenantRef, WebhookList, WebhookOut
from lockbox.domain.errors import NotFound, PermissionDenied
from lockbox.service import webhooks

router = contract.router(prefix="/v1/webhooks", tags=["webhooks"])

#: Every event type an endpoint can subscribe to, and ``*`` for all of them.
EVENT_CHOICES = ("*", *webhooks.EVENT_TYPES)
_PORT = params.decimal_up_to(65535).removeprefix("^").removesuffix("$")
_AFTER_HOST = rf"(?::{_PORT})?(?:[/?][!\"$-~]*)?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_DNS_NAME = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
#: An https URL to a DNS name or an IPv4 address, without credentials or fragment; plain
#: http only to this machine, for deployments that allow it (test setups). Where the name
#: or address leads is the core's to judge (an internal network is refused with 422).
WEBHOOK_URL = (
    rf"^(?:https://(?:{_DNS_NAME}|{_IPV4}){_AFTER_HOST}"
    rf"|http://(?:localhost|127(?:\.{_OCTET}){{3}}|\[::1\]){_AFTER_HOST})$"
)


def _known_event(value: str) -> str:
    if value not in EVENT_CHOICES:
        raise ValueError(f"unknown event type; use one of {', '.join(EVENT_CHOICES)}")
    return value


EventType = Annotated[
    str,
    AfterValidator(_known_event),
    WithJsonSchema({"type": "string", "enum": list(EVENT_CHOICES)}),
]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",  # unknown fields are refused, never ignored
        json_schema_extra={
            "examples": [
                {"url": "https://hooks.example.com/lockbox", "events": ["request.approve"]},
                {
                    "url": "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX",
                    "format": "slack",
                    "events": ["request.review_approve", "request.approve"],
                },
            ]
        },
    )

    url: Annotated[str, StringConstraints(max_length=webhooks.MAX_URL, pattern=WEBHOOK_URL)] = (
        Field(
            description="The https URL that receives signed POSTs (no credentials, no fragment). "
            "A destination inside a private network, a loopback, link-local or metadata "
            "address, or a single-label name is refused (422) unless the operator allows it "
            "(LOCKBOX_WEBHOOK_ALLOW_HOSTS). Plain http only to 127.0.0.1, ::1 or localhost, "
            "and only where the deployment allows it (LOCKBOX_WEBHOOK_ALLOW_HTTP_LOOPBACK, "
            "for test setups)."
        )
    )
    events: list[EventType] | None = Field(
        default=None,
        max_length=50,
        description="Event types such as `request.approve`; default (or empty): all (`*`).",
    )
    tenant: TenantRef | None = Field(
        default=None,
        description="Tenant slug or id; omit for your own tenant (customers) or provider level.",
    )
    format: webhooks.WebhookFormat = Field(
        default=webhooks.WebhookFormat.STANDARD,
        description="What the endpoint receives: `standard` (signed JSON events, Standard "
        "Webhooks; the answer holds the signing secret), `slack` (a Slack incoming webhook: "
        "a Block Kit message) or `teams` (a Microsoft Teams incoming webhook or Workflows "
        "trigger: an Adaptive Card). Chat messages carry no link and are not signed: their "
        "URL is the secret, shown masked.",
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedWebhookOut,
    summary="Register an endpoint; the answer holds its signing secret (standard format), "
    "shown only this once",
    operation_id="createWebhook",
)
@contract.raises(NotFound)
def create_webhook(
    lockbox: LockboxDep, principal: PrincipalDep, body: WebhookCreate
) -> dict[str, Any]:
    created = webhooks.register(
        lockbox,
        principal,
        url=body.url,
        events=body.events,
        tenant=body.tenant,
        format=body.format,
    )
    return {**webhooks.view(created.row), "secret": created.secret}


@router.get(
    "",
    response_model=WebhookList,
    summary="Endpoints you manage (never their secrets)",
    operation_id="listWebhooks",
)
@contract.raises(NotFound, PermissionDenied)
def list_webhooks(
    lockbox: LockboxDep,
    principal: PrincipalDep,
    tenant: Annotated[str | None, tenant_query()] = None,
) -> dict[str, Any]:
    hooks = webhooks.list_webhooks(lockbox, principal, tenant=tenant)
    return {"items": [webhooks.view(h) for h in hooks]}


@router.get(
    "/{webhook_id}",
    response_model=WebhookOut,
    summary="One endpoint (without its secret)",
    operation_id="getWebhook",
)
def get_webhook(
    lockbox: LockboxDep, principal: PrincipalDep, webhook_id: WebhookId
) -> dict[str, Any]:
    return webhooks.view(webhooks.get_webhook(lockbox, principal, webhook_id))


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an endpoint",
    operation_id="deleteWebhook",
)
def delete_webhook(lockbox: LockboxDep, principal: PrincipalDep, webhook_id: WebhookId) -> Response:
    webhooks.delete_webhook(lockbox, principal, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
