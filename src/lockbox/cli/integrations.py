"""``lockbox integration``: add, list, rotate and delete help-desk integrations."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lockbox.cli import output
from lockbox.cli.remote import api, is_remote, local, root

app = typer.Typer(
    help="Help-desk integrations: signed events open, update and close cases "
    "(secret shown once; see docs/helpdesk.md).",
    no_args_is_help=True,
)


def _emit(ctx: typer.Context, data: Any) -> None:
    if root(ctx).json:
        output.emit_json(data)
    else:
        output.fields(data)


def _secret_shown(ctx: typer.Context) -> None:
    if not root(ctx).json:
        output.err.print(
            "Store the secret now (the help desk or its relay signs with it): "
            "it is not shown again.",
            markup=False,
        )


@app.command("add")
def integration_add(ctx: typer.Context, name: str) -> None:
    """Add an integration (e.g. `Zendesk`); prints its signing secret ONCE."""
    if is_remote(ctx):
        data = api(ctx, "POST", "/v1/integrations", json={"name": name})
    else:
        from lockbox.service import helpdesk

        lockbox, actor = local(ctx)
        created = helpdesk.create_integration(lockbox, actor, name=name)
        data = {**helpdesk.view(created.row), "secret": created.secret}
    _emit(ctx, data)
    _secret_shown(ctx)


@app.command("list")
def integration_list(ctx: typer.Context) -> None:
    """Integrations (never their secrets)."""
    if is_remote(ctx):
        items = api(ctx, "GET", "/v1/integrations")["items"]
    else:
        from lockbox.service import helpdesk

        lockbox, actor = local(ctx)
        items = [helpdesk.view(r) for r in helpdesk.list_integrations(lockbox, actor)]
    if root(ctx).json:
        output.emit_json(items)
        return
    output.table(
        "Help-desk integrations",
        ["id", "name", "events path", "created", "rotated"],
        (
            [i["id"], i["name"], i["events_path"], i["created_at"], i["rotated_at"] or ""]
            for i in items
        ),
    )


@app.command("rotate")
def integration_rotate(
    ctx: typer.Context,
    integration_id: str,
    keep_previous: Annotated[
        str,
        typer.Option(
            help="How long the old secret still verifies (e.g. 24h, 90m; at most 7d); "
            "0 ends it at once (after a leak).",
        ),
    ] = "24h",
) -> None:
    """A new signing secret, printed ONCE; the old one verifies for --keep-previous longer."""
    from lockbox.domain.policy import parse_duration

    overlap = parse_duration(
        "0s" if keep_previous.strip() == "0" else keep_previous, "keep_previous"
    )
    if is_remote(ctx):
        body = {"keep_previous_seconds": int(overlap.total_seconds())}
        data = api(ctx, "POST", f"/v1/integrations/{integration_id}/rotate", json=body)
    else:
        from lockbox.service import helpdesk

        lockbox, actor = local(ctx)
        rotated = helpdesk.rotate_secret(lockbox, actor, integration_id, overlap=overlap)
        data = {**helpdesk.view(rotated.row), "secret": rotated.secret}
    _emit(ctx, data)
    _secret_shown(ctx)


@app.command("delete")
def integration_delete(ctx: typer.Context, integration_id: str) -> None:
    """Delete an integration: its events are refused; the cases it opened stay open."""
    if is_remote(ctx):
        api(ctx, "DELETE", f"/v1/integrations/{integration_id}")
        data: dict[str, Any] = {"id": integration_id, "deleted": True}
    else:
        from lockbox.service import helpdesk

        lockbox, actor = local(ctx)
        data = {
            **helpdesk.view(helpdesk.delete_integration(lockbox, actor, integration_id)),
            "deleted": True,
        }
    _emit(ctx, data)
