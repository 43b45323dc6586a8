"""Dependencies shared by the routers: the application context and the caller."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lockbox.config import Settings, get_settings
from lockbox.domain.errors import AuthenticationFailed, BrokenInvariant
from lockbox.domain.roles import Principal
from lockbox.service import tokens
from lockbox.service.app import Lockbox

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer lbx_…`")


async def get_lockbox(request: Request) -> Lockbox:
    """Async (it does no I/O): a sync dependency costs every request a thread hop."""
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


async def get_bearer(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The caller's API token, for an endpoint that authenticates it in its own transaction
    (the online check); the same 401 as :func:`get_principal` when there is none."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationFailed("send an API token as 'Authorization: Bearer <token>'")
    return credentials.credentials


BearerDep = Annotated[str, Depends(get_bearer)]


async def get_check_threads(request: Request) -> anyio.CapacityLimiter:
    """The limiter of the online check's threads (``LOCKBOX_CHECK_CONCURRENCY``; unset: 1 on
    SQLite, 4 on PostgreSQL), one per application, made on first use inside the event loop
    (AnyIO requires it)."""
    state = request.app.state
    limiter: anyio.CapacityLimiter | None = getattr(state, "check_threads", None)
    if limiter is None:
        settings: Settings = getattr(state, "settings", None) or get_settings()
        threads = settings.check_concurrency or (1 if state.lockbox.db.is_sqlite else 4)
        limiter = state.check_threads = anyio.CapacityLimiter(threads)
    return limiter


CheckThreadsDep = Annotated[anyio.CapacityLimiter, Depends(get_check_threads)]
