"""``lockbox keys``: the Ed25519 keys that sign access tokens (and the audit log).

Locally on the database, or over the API (``/v1/keys``) when ``LOCKBOX_SERVER``
is set, like every other command: an operator rotates keys without a shell on
the database host.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from lockbox.cli import output
from lockbox.cli.remote import api, is_remote, local, root
from lockbox.service import access

keys_app = typer.Typer(help="Signing keys for access tokens.", no_args_is_help=True)

PurposeOpt = Annotated[
    str,
    typer.Option("--purpose", help="access (signs access tokens) or audit (signs the log)."),
]


def _emit(ctx: typer.Context, data: Any) -> None:
    if root(ctx).json:
        output.emit_json(data)
    elif isinstance(data, dict):
        output.fields(data)


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    purpose: Annotated[
        str, typer.Option("--purpose", help="access (default), audit or all.")
    ] = "access",
) -> None:
    """Every signing key: active (signs), published (verifies only) or retired."""
    if is_remote(ctx):
        rows = api(ctx, "GET", "/v1/keys", params={"purpose": purpose})["items"]
    else:
        lockbox, actor = local(ctx)
        rows = access.list_keys(lockbox, actor, None if purpose == "all" else purpose)
    if root(ctx).json:
        output.emit_json(rows)
        return
    output.table(
        "Signing keys",
        ["kid", "purpose", "status", "created", "retired", "published until"],
        (
            [
                k["kid"],
                k.get("purpose") or "access",
                k["status"],
                k["created_at"],
                k["retired_at"],
                k["publish_until"],
            ]
            for k in rows
        ),
    )


@keys_app.command("rotate")
def keys_rotate(ctx: typer.Context, purpose: PurposeOpt = "access") -> None:
    """Add a new signing key; the previous one stays published until its last token expired."""
    if is_remote(ctx):
        data = api(ctx, "POST", "/v1/keys/rotate", json={"purpose": purpose})
    else:
        lockbox, actor = local(ctx)
        data = access.rotate_keys(lockbox, actor, purpose=purpose)
    _emit(ctx, data)


@keys_app.command("retire")
def keys_retire(ctx: typer.Context, kid: str) -> None:
    """Unpublish a key that no longer signs, now: every token it signed stops verifying."""
    if is_remote(ctx):
        data = api(ctx, "POST", f"/v1/keys/{quote(kid, safe='')}/retire")
    else:
        lockbox, actor = local(ctx)
        data = access.retire_key(lockbox, actor, kid)
    _emit(ctx, data)
