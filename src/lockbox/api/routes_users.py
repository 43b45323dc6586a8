"""Users, their role assignments, and the caller's own account."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response

from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import UserRef, ref_query
from lockbox.api.schemas import (
    PROBLEM_RESPONSES,
    RolesPut,
    UserCreate,
    UserList,
    UserOut,
    UserPatch,
)
from lockbox.service import users, views

router = APIRouter(prefix="/v1", tags=["users"], responses=PROBLEM_RESPONSES)


@router.get("/me", response_model=UserOut, summary="The user behind your token")
def me(lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    return views.user(users.get_user(lockbox, principal, principal.id))


@router.post("/users", status_code=201, response_model=UserOut, summary="Create a user")
def create_user(
    body: UserCreate, lockbox: LockboxDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    user = users.create_user(
        lockbox,
        principal,
        email=body.email,
        roles=list(body.roles),
        tenant=body.tenant,
        display_name=body.display_name,
        password=body.password,
    )
    response.headers["Location"] = f"/v1/users/{user.id}"
    return views.user(user)


@router.get("/users", response_model=UserList, summary="Users you can see")
def list_users(
    lockbox: LockboxDep,
    principal: PrincipalDep,
    tenant: Annotated[str | None, ref_query("Only this tenant's users (slug or id).")] = None,
) -> dict[str, Any]:
    return {"items": [views.user(u) for u in users.list_users(lockbox, principal, tenant=tenant)]}


@router.get("/users/{user}", response_model=UserOut, summary="One user, by id or e-mail")
def get_user(user: UserRef, lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    return views.user(users.get_user(lockbox, principal, user))


@router.put("/users/{user}/roles", response_model=UserOut, summary="Replace a user's roles")
def set_roles(
    user: UserRef, body: RolesPut, lockbox: LockboxDep, principal: PrincipalDep
) -> dict[str, Any]:
    return views.user(users.set_roles(lockbox, principal, user, list(body.roles)))


@router.patch(
    "/users/{user}",
    response_model=UserOut,
    summary="Activate or deactivate a user",
    description="A deactivated user's tokens stop working at once.",
)
def patch_user(
    user: UserRef, body: UserPatch, lockbox: LockboxDep, principal: PrincipalDep
) -> dict[str, Any]:
    return views.user(users.set_active(lockbox, principal, user, body.active))
