"""``/v1/delegations``: approvers hand their approvals to a colleague for a period."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lockbox.api import contract
from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import DelegationId, Instant
from lockbox.api.schemas import Comment
from lockbox.domain.errors import NotFound, PermissionDenied
from lockbox.service import delegations

router = contract.router(prefix="/v1/delegations", tags=["delegations"])


class DelegationCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "to": "quinn@contoso.example",
                    "ends_at": "2026-08-15T00:00:00Z",
                    "reason": "on holiday",
                }
            ]
        },
    )

    to: Annotated[str, StringConstraints(min_length=3, max_length=320)] = Field(
        description="The colleague (an approver or tenant admin of your organisation), by "
        "e-mail address or user id."
    )
    ends_at: Instant = Field(description="When the delegation ends (at most 90 days).")
    starts_at: Instant | None = Field(None, description="When it starts; default: now.")
    reason: Comment | None = None


class DelegationOut(BaseModel):
    id: str
    tenant_id: str
    from_user: str = Field(description="Whose approvals are delegated.")
    to_user: str = Field(description="Who holds them.")
    starts_at: str
    ends_at: str
    reason: str | None
    created_at: str
    revoked_at: str | None
    revoked_by: str | None


class DelegationList(BaseModel):
    items: list[DelegationOut]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DelegationOut,
    summary="Hand your approvals to a colleague for a period (approver or tenant admin)",
    operation_id="createDelegation",
)
@contract.raises(PermissionDenied)
def create_delegation(
    lockbox: LockboxDep, principal: PrincipalDep, body: DelegationCreate
) -> dict[str, Any]:
    made = delegations.create_delegation(
        lockbox,
        principal,
        to=body.to,
        ends_at=body.ends_at,
        starts_at=body.starts_at,
        reason=body.reason,
    )
    return delegations.view(made)


@router.get(
    "",
    response_model=DelegationList,
    summary="Delegations not yet over: yours, or all of your organisation's (tenant admin)",
    operation_id="listDelegations",
)
@contract.raises(PermissionDenied)
def list_delegations(lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    return {
        "items": [delegations.view(d) for d in delegations.list_delegations(lockbox, principal)]
    }


@router.post(
    "/{delegation_id}/revoke",
    response_model=DelegationOut,
    summary="End a delegation now (its two people or a tenant admin)",
    operation_id="revokeDelegation",
)
@contract.raises(NotFound, PermissionDenied)
def revoke_delegation(
    lockbox: LockboxDep, principal: PrincipalDep, delegation_id: DelegationId
) -> dict[str, Any]:
    return delegations.view(delegations.revoke_delegation(lockbox, principal, delegation_id))
