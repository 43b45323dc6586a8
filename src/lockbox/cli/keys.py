"""``lockbox keys``: the Ed25519 keys that sign access tokens (local database)."""

from __future__ import annotations

from typing import Any

import typer

from lockbox.cli import output
from lockbox.domain.errors import ValidationError
from lockbox.service import access

keys_app = typer.Typer(help="Signing keys for access tokens.", no_args_is_help=True)


def _local(ctx: typer.Context) -> Any:
    """The root settings' local backend; key management needs the database itself."""
    root = ctx.find_root().obj
    if getattr(root, "server", None):
        raise ValidationError("server", "key management works on the local database only")
    return root


def _emit(ctx: typer.Context, data: Any) -> None:
    if getattr(ctx.find_root().obj, "json", False):
        output.emit_json(data)
    elif isinstance(data, dict):
        output.fields(data)


@keys_app.command("list")
def keys_list(ctx: typer.Context) -> None:
    """Every signing key: active (signs), published (verifies only) or retired."""
    backend = _local(ctx).backend
    rows = access.list_keys(backend.app, backend.actor)
    if getattr(ctx.find_root().obj, "json", False):
        output.emit_json(rows)
        return
    output.table(
        "Signing keys",
        ["kid", "status", "created", "retired", "published until"],
        (
            [k["kid"], k["status"], k["created_at"], k["retired_at"], k["publish_until"]]
            for k in rows
        ),
    )


@keys_app.command("rotate")
def keys_rotate(ctx: typer.Context) -> None:
    """Add a new signing key; the previous one stays published until its last token expired."""
    backend = _local(ctx).backend
    _emit(ctx, access.rotate_keys(backend.app, backend.actor))


@keys_app.command("retire")
def keys_retire(ctx: typer.Context, kid: str) -> None:
    """Unpublish a key that no longer signs, now: every token it signed stops verifying."""
    backend = _local(ctx).backend
    _emit(ctx, access.retire_key(backend.app, backend.actor, kid))
