"""``lockbox access``: obtain an access token for an approved request, check access."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lockbox.cli import output
from lockbox.cli.http_backend import error_from_problem
from lockbox.domain.errors import (
    ValidationError,
)
from lockbox.domain.instants import format_instant
from lockbox.service import access

access_app = typer.Typer(help="Enforcement: access tokens and checks.", no_args_is_help=True)


def _server_call(root: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    from lockbox.sdk.client import LockboxAPIError, LockboxClient

    if not root.token:
        raise ValidationError("token", "set LOCKBOX_TOKEN (or --token) to talk to a server")
    with LockboxClient(root.server, root.token) as client:
        try:
            if path == "token":
                return client.issue_token(body["request_id"], body.get("audience"))
            return client.check(**body).raw
        except LockboxAPIError as exc:
            raise error_from_problem(exc.status, exc.problem) from None


def _emit(ctx: typer.Context, data: dict[str, Any], keys: list[str]) -> None:
    if getattr(ctx.find_root().obj, "json", False):
        output.emit_json(data)
    else:
        output.fields(data, keys)


@access_app.command("token")
def access_token(
    ctx: typer.Context,
    request_id: str,
    audience: Annotated[
        str | None, typer.Option(help="Resource service audience (default: the configured one).")
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Print only the token.")] = False,
) -> None:
    """A short-lived signed access token for your approved request."""
    root = ctx.find_root().obj
    if root.server:
        data = _server_call(root, "token", {"request_id": request_id, "audience": audience})
    else:
        backend = root.backend
        issued = access.issue_token(backend.app, backend.actor, request_id, audience=audience)
        data = {
            "token": issued.token,
            "token_type": "Bearer",
            "kid": issued.kid,
            "request_id": issued.request_id,
            "expires_at": format_instant(issued.expires_at),
            "claims": issued.claims,
        }
    if raw:
        output.out.print(data["token"], markup=False, soft_wrap=True)
        return
    _emit(ctx, data, ["token", "kid", "request_id", "expires_at"])


@access_app.command("check")
def access_check(
    ctx: typer.Context,
    engineer: Annotated[str, typer.Option(help="Engineer id or e-mail.")],
    tenant: Annotated[str, typer.Option(help="Tenant id or slug.")],
    resource: Annotated[str, typer.Option(help="Resource name.")],
    action: Annotated[str, typer.Option(help="read or write.")] = "read",
) -> None:
    """Ask what a resource service would be told (needs the resource_service role)."""
    root = ctx.find_root().obj
    body = {"engineer": engineer, "tenant": tenant, "resource": resource, "action": action}
    if root.server:
        data = _server_call(root, "check", body)
    else:
        backend = root.backend
        data = access.check(backend.app, backend.actor, **body).as_dict()
    _emit(ctx, data, ["allowed", "reason", "request_id", "state", "access_deadline"])
    if not data["allowed"]:
        raise SystemExit(1)
