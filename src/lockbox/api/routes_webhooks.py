"""``/v1/webhooks``: register (secret shown once), list and delete signed webhook endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import ID, LINE, WebhookId, ref_query
from lockbox.service import webhooks

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are refused, never ignored

    url: str = Field(description="https URL that receives signed POSTs", max_length=2048)
    events: list[Annotated[str, Field(max_length=100, pattern=LINE)]] | None = Field(
        default=None,
        max_length=50,
        description="event types such as request.approve; default all ('*')",
    )
    tenant: str | None = Field(
        default=None,
        max_length=80,
        pattern=ID,
        description="tenant id or slug; omit for your own tenant (customers) or provider level",
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register an endpoint; the answer holds its signing secret, shown only this once",
)
def create_webhook(
    lockbox: LockboxDep, principal: PrincipalDep, body: WebhookCreate
) -> dict[str, Any]:
    created = webhooks.register(
        lockbox,
        principal,
        url=body.url,
        events=body.events,
        tenant=body.tenant,
    )
    return {**webhooks.view(created.row), "secret": created.secret}


@router.get("", summary="Endpoints you manage (never their secrets)")
def list_webhooks(
    lockbox: LockboxDep,
    principal: PrincipalDep,
    tenant: Annotated[str | None, ref_query("tenant id or slug")] = None,
) -> dict[str, Any]:
    hooks = webhooks.list_webhooks(lockbox, principal, tenant=tenant)
    return {"items": [webhooks.view(h) for h in hooks]}


@router.get("/{webhook_id}", summary="One endpoint (without its secret)")
def get_webhook(
    lockbox: LockboxDep, principal: PrincipalDep, webhook_id: WebhookId
) -> dict[str, Any]:
    return webhooks.view(webhooks.get_webhook(lockbox, principal, webhook_id))


@router.delete(
    "/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an endpoint"
)
def delete_webhook(lockbox: LockboxDep, principal: PrincipalDep, webhook_id: WebhookId) -> Response:
    webhooks.delete_webhook(lockbox, principal, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
