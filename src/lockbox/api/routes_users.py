"""Users, their role assignments, and the caller's own account."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Response

from lockbox.api import contract
from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import UserRef, tenant_query
from lockbox.api.schemas import (
    PasswordChange,
    PasswordResetComplete,
    ResetStartedOut,
    RolesPut,
    ServiceOut,
    ServicePut,
    UserCreate,
    UserList,
    UserOut,
    UserPatch,
)
from lockbox.domain.errors import AlreadyExists, AuthenticationFailed, NotFound, PermissionDenied
from lockbox.domain.instants import format_instant
from lockbox.domain.roles import Side
from lockbox.service import passwords, resource_services, users, views

router = contract.router(prefix="/v1", tags=["users"])


@router.get(
    "/me", response_model=UserOut, summary="The user behind your token", operation_id="getMe"
)
def me(lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    return views.user(users.get_user(lockbox, principal, principal.id))


@router.put(
    "/me/password",
    status_code=204,
    summary="Change your own password (proving the current one)",
    description="A wrong `current_password` is a 422 naming that field.",
    operation_id="changeOwnPassword",
)
@contract.raises(NotFound)
def change_password(body: PasswordChange, lockbox: LockboxDep, principal: PrincipalDep) -> None:
    passwords.change_own_password(lockbox, principal, body.current_password, body.new_password)


@router.post(
    "/users/{user}/password-reset",
    status_code=202,
    response_model=ResetStartedOut,
    summary="E-mail a user a one-time code to choose a new password",
    description="Tenant admins for their users, the provider admin for staff. The code goes "
    "to the user's own address only (an e-mail without links); nobody else learns it.",
    operation_id="startPasswordReset",
)
def start_password_reset(
    user: UserRef, lockbox: LockboxDep, principal: PrincipalDep
) -> dict[str, Any]:
    started = passwords.start_reset(lockbox, principal, user)
    return {
        "user_id": started.user.id,
        "email": started.user.email,
        "expires_at": format_instant(started.expires_at),
    }


@router.post(
    "/password-reset",
    status_code=204,
    summary="Choose a new password with an e-mailed one-time code (no token needed)",
    description="A wrong, used or expired code answers 401; five wrong codes use it up.",
    operation_id="completePasswordReset",
)
@contract.raises(AuthenticationFailed)
def complete_password_reset(body: PasswordResetComplete, lockbox: LockboxDep) -> None:
    passwords.complete_reset(lockbox, body.email, body.code, body.new_password)


@router.get(
    "/users/{user}/service",
    response_model=ServiceOut,
    summary="What a resource service serves (provider admin)",
    operation_id="getResourceService",
)
@contract.raises(PermissionDenied)
def get_service(user: UserRef, lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    return resource_services.view(resource_services.get_registration(lockbox, principal, user))


@router.put(
    "/users/{user}/service",
    response_model=ServiceOut,
    summary="Register the tenants and resource prefixes a resource service serves",
    description="A resource service serves nothing until registered: checks, tokens and "
    "event reports outside its tenants and prefixes answer like missing objects.",
    operation_id="putResourceService",
)
@contract.raises(AlreadyExists)
def put_service(
    user: UserRef, body: ServicePut, lockbox: LockboxDep, principal: PrincipalDep
) -> dict[str, Any]:
    tenants: list[str] | str = body.tenants if body.tenants == "*" else list(body.tenants)
    registration = resource_services.register(
        lockbox,
        principal,
        user,
        tenants=tenants,
        prefixes=list(body.prefixes),
        audience=body.audience,
    )
    return resource_services.view(registration)


@router.post(
    "/users",
    status_code=201,
    response_model=UserOut,
    summary="Create a user",
    description="A tenant admin adds people to their own tenant (`tenant` may be left out), "
    "at the tenant's e-mail domains only. The provider admin names `tenant` for a customer "
    "user and leaves it out for staff.",
    operation_id="createUser",
    responses={201: {"headers": {"Location": {"schema": {"type": "string"}}}}},
)
@contract.raises(NotFound, AlreadyExists)
def create_user(
    body: UserCreate, lockbox: LockboxDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    # A customer caller can add people to one tenant only, their own: it need not be named.
    tenant = body.tenant
    if tenant is None and principal.side is Side.CUSTOMER:
        tenant = principal.tenant_id
    user = users.create_user(
        lockbox,
        principal,
        email=body.email,
        roles=list(body.roles),
        tenant=tenant,
        display_name=body.display_name,
        password=body.password,
    )
    response.headers["Location"] = f"/v1/users/{user.id}"
    return views.user(user)


@router.get(
    "/users", response_model=UserList, summary="Users you can see", operation_id="listUsers"
)
@contract.raises(NotFound)
def list_users(
    lockbox: LockboxDep,
    principal: PrincipalDep,
    tenant: Annotated[str | None, tenant_query("Only this tenant's users (slug or id).")] = None,
) -> dict[str, Any]:
    return {"items": [views.user(u) for u in users.list_users(lockbox, principal, tenant=tenant)]}


@router.get(
    "/users/{user}",
    response_model=UserOut,
    summary="One user, by id or e-mail",
    operation_id="getUser",
)
def get_user(user: UserRef, lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    return views.user(users.get_user(lockbox, principal, user))


@router.put(
    "/users/{user}/roles",
    response_model=UserOut,
    summary="Replace a user's roles",
    operation_id="setUserRoles",
)
def set_roles(
    user: UserRef, body: RolesPut, lockbox: LockboxDep, principal: PrincipalDep
) -> dict[str, Any]:
    return views.user(users.set_roles(lockbox, principal, user, list(body.roles)))


@router.patch(
    "/users/{user}",
    response_model=UserOut,
    summary="Activate or deactivate a user",
    description="A deactivated user's tokens stop working at once.",
    operation_id="updateUser",
)
def patch_user(
    user: UserRef, body: UserPatch, lockbox: LockboxDep, principal: PrincipalDep
) -> dict[str, Any]:
    return views.user(users.set_active(lockbox, principal, user, body.active))
