"""Helpers shared by the outbox and webhook command groups: local app, or the HTTP API."""

from __future__ import annotations

from typing import Any

import typer

from lockbox.cli.http_backend import error_from_problem
from lockbox.domain import errors
from lockbox.domain.roles import Principal
from lockbox.service.app import Lockbox


def root(ctx: typer.Context) -> Any:
    return ctx.find_root().obj


def is_remote(ctx: typer.Context) -> bool:
    return bool(getattr(root(ctx), "server", None))


def local(ctx: typer.Context) -> tuple[Lockbox, Principal]:
    """The local application and the acting principal (``--as`` or the operator)."""
    backend = root(ctx).backend
    return backend.app, backend.actor


def api(ctx: typer.Context, method: str, path: str, **kwargs: Any) -> Any:
    """Call the server's API; problem+json answers become the matching Lockbox error."""
    import httpx

    settings = root(ctx)
    if not settings.token:
        raise errors.ValidationError("token", "set LOCKBOX_TOKEN (or --token) to talk to a server")
    response = httpx.request(
        method,
        settings.server.rstrip("/") + path,
        headers={"authorization": f"Bearer {settings.token}"},
        timeout=30,
        **kwargs,
    )
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text or f"HTTP {response.status_code}"}
        raise error_from_problem(response.status_code, body)
    return response.json() if response.content else None
