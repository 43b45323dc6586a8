"""Single sign-on settings: the provider's own (staff) and each tenant's.

The client secret is write-only: it is accepted in a ``PUT`` and answered as
``"set"`` / ``"not set"``, never echoed and never logged. A tenant's settings are
changed only by its own tenant admins (a provider admin who could point a customer's
sign-in at an identity provider of their own could approve their own access).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import TenantRef
from lockbox.api.schemas import PROBLEM_RESPONSES
from lockbox.service import sso

router = APIRouter(tags=["sign-in"], responses=PROBLEM_RESPONSES)


class SsoOut(BaseModel):
    """Sign-in settings as anyone may see them: the client secret only as set / not set."""

    scope: str = Field(description="provider (staff) or tenant")
    tenant_id: str | None
    enabled: bool
    issuer: str | None
    client_id: str | None
    client_secret: str = Field(description='"set" or "not set"; never the secret')
    email_domains: list[str]
    groups_claim: str
    role_map: dict[str, list[str]]
    jit: bool
    require_sso: bool
    require_second_factor: bool
    version: int
    updated_at: str | None


class SsoPut(BaseModel):
    """Send only the settings to change; an empty client secret removes it."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    issuer: str | None = Field(default=None, max_length=500)
    client_id: str | None = Field(default=None, max_length=200)
    client_secret: SecretStr | None = Field(default=None, description="write-only")
    email_domains: list[str] | None = None
    groups_claim: str | None = Field(default=None, max_length=100)
    role_map: dict[str, list[str]] | None = None
    jit: bool | None = None
    require_sso: bool | None = None
    require_second_factor: bool | None = None

    def changes(self) -> dict[str, Any]:
        found = self.model_dump(exclude_unset=True)
        if self.client_secret is not None:
            found["client_secret"] = self.client_secret.get_secret_value()
        return found


@router.get(
    "/v1/tenants/{tenant}/sso",
    response_model=SsoOut,
    operation_id="getTenantSso",
    summary="A tenant's single sign-on and sign-in rules",
)
def get_tenant_sso(
    tenant: TenantRef, lockbox: LockboxDep, principal: PrincipalDep
) -> dict[str, Any]:
    return sso.view(sso.get_config(lockbox, principal, tenant))


@router.put(
    "/v1/tenants/{tenant}/sso",
    response_model=SsoOut,
    operation_id="putTenantSso",
    summary="Change a tenant's single sign-on and sign-in rules (its tenant admins)",
)
def put_tenant_sso(
    tenant: TenantRef, body: SsoPut, lockbox: LockboxDep, principal: PrincipalDep
) -> dict[str, Any]:
    return sso.view(sso.set_config(lockbox, principal, tenant, body.changes()))


@router.get(
    "/v1/sso",
    response_model=SsoOut,
    operation_id="getProviderSso",
    summary="How provider staff sign in (provider admins)",
)
def get_provider_sso(lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    return sso.view(sso.get_config(lockbox, principal, None))


@router.put(
    "/v1/sso",
    response_model=SsoOut,
    operation_id="putProviderSso",
    summary="Change how provider staff sign in (provider admins)",
)
def put_provider_sso(body: SsoPut, lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    return sso.view(sso.set_config(lockbox, principal, None, body.changes()))
