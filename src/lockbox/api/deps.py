"""Dependencies shared by the routers: the application context and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lockbox.domain.errors import AuthenticationFailed, BrokenInvariant
from lockbox.domain.roles import Principal
from lockbox.service import tokens
from lockbox.service.app import Lockbox

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer lbx_…`")


def get_lockbox(request: Request) -> Lockbox:
    app = request.app.state.lockbox
    if not isinstance(app, Lockbox):
        raise BrokenInvariant("the application has no Lockbox context")
    return app


LockboxDep = Annotated[Lockbox, Depends(get_lockbox)]


def get_principal(
    request: Request,
    lockbox: LockboxDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller; every failure is the same 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationFailed("send an API token as 'Authorization: Bearer <token>'")
    principal = tokens.authenticate(lockbox, credentials.credentials)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
