"""Tenants and their lockbox policy."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from lockbox.api import contract
from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import IfMatch, TenantRef, conditional, etag
from lockbox.api.routes_auto_approval import PENDING_RESPONSE, accepted
from lockbox.api.schemas import DomainsPut, PolicyPatch, TenantCreate, TenantList, TenantOut
from lockbox.api.schemas import Policy as PolicyOut
from lockbox.domain.errors import AlreadyExists, PermissionDenied
from lockbox.service import tenants, views

router = contract.router(prefix="/v1/tenants", tags=["tenants"])

_ETAG = {"ETag": {"description": 'The version, e.g. `"3"`.', "schema": {"type": "string"}}}


@router.post(
    "",
    status_code=201,
    response_model=TenantOut,
    summary="Onboard a tenant",
    operation_id="createTenant",
    responses={201: {"headers": {"Location": {"schema": {"type": "string"}}}}},
)
@contract.raises(AlreadyExists)
def create_tenant(
    body: TenantCreate, lockbox: LockboxDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    policy = body.policy.changes() if body.policy else None
    tenant = tenants.create_tenant(
        lockbox,
        principal,
        slug=body.slug,
        name=body.name,
        policy=policy,
        email_domains=list(body.email_domains),
    )
    response.headers["Location"] = f"/v1/tenants/{tenant.id}"
    return views.tenant(tenant)


@router.get(
    "", response_model=TenantList, summary="Tenants you can see", operation_id="listTenants"
)
def list_tenants(lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    return {"items": [views.tenant(t) for t in tenants.list_tenants(lockbox, principal)]}


@router.get(
    "/{tenant}",
    response_model=TenantOut,
    summary="One tenant, by slug or id",
    operation_id="getTenant",
    responses={200: {"headers": _ETAG}},
)
def get_tenant(
    tenant: TenantRef, lockbox: LockboxDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    found = tenants.get_tenant(lockbox, principal, tenant)
    response.headers["ETag"] = etag(found.version)
    return views.tenant(found)


@router.put(
    "/{tenant}/domains",
    response_model=TenantOut,
    summary="Set a tenant's e-mail domains (provider admin)",
    description="The tenant's admins can add users only with addresses at these domains. "
    "A domain belongs to at most one tenant (409 otherwise).",
    operation_id="setTenantDomains",
)
@contract.raises(AlreadyExists)
def set_domains(
    tenant: TenantRef, body: DomainsPut, lockbox: LockboxDep, principal: PrincipalDep
) -> dict[str, Any]:
    return views.tenant(tenants.set_domains(lockbox, principal, tenant, list(body.email_domains)))


@router.get(
    "/{tenant}/policy",
    response_model=PolicyOut,
    summary="A tenant's lockbox policy",
    operation_id="getPolicy",
    responses={200: {"headers": _ETAG}},
)
@contract.raises(PermissionDenied)
def get_policy(
    tenant: TenantRef, lockbox: LockboxDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    found = tenants.get_policy(lockbox, principal, tenant)
    response.headers["ETag"] = etag(found.version)
    return found.policy.as_dict()


@router.patch(
    "/{tenant}/policy",
    response_model=PolicyOut,
    summary="Change a tenant's policy (tenant admin)",
    description="Send only the settings to change. With `If-Match` (the ETag of a "
    "previous read) the change applies only if nobody changed the policy since: else 412. "
    "A change that widens access (turning the lockbox off, longer windows, fewer approvals, "
    "weaker stages, people added to groups) answers 202 with the pending change when the "
    "tenant has more than one tenant admin: another one must approve it (four eyes).",
    operation_id="changePolicy",
    responses={200: {"headers": _ETAG}, **PENDING_RESPONSE},
)
def change_policy(
    tenant: TenantRef,
    body: PolicyPatch,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    response: Response,
    if_match: IfMatch = None,
) -> Any:
    outcome = conditional(
        if_match,
        lambda expected: tenants.update_policy(
            lockbox, principal, tenant, body.changes(), expected_version=expected
        ),
    )
    if outcome.pending is not None:
        return accepted(outcome.pending, tenant)
    response.headers["ETag"] = etag(outcome.tenant.version)
    return outcome.tenant.policy.as_dict()
