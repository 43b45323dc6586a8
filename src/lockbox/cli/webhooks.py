"""``lockbox webhook``: register, list and delete signed webhook endpoints."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lockbox.cli import output
from lockbox.cli.remote import api, is_remote, local, root

app = typer.Typer(
    help="Webhook endpoints (signed per Standard Webhooks; secret shown once).",
    no_args_is_help=True,
)


def _emit(ctx: typer.Context, data: Any) -> None:
    if root(ctx).json:
        output.emit_json(data)
    else:
        output.fields(data)


@app.command("create")
def webhook_create(
    ctx: typer.Context,
    url: str,
    tenant: Annotated[
        str | None,
        typer.Option(help="Tenant (id or slug); omit for a provider-level endpoint."),
    ] = None,
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help="Event type to send (repeatable); default: all ('*')."),
    ] = None,
) -> None:
    """Register an endpoint; prints its signing secret ONCE."""
    if is_remote(ctx):
        body = {"url": url, "tenant": tenant, "events": event or ["*"]}
        data = api(ctx, "POST", "/v1/webhooks", json=body)
    else:
        from lockbox.service import webhooks

        lockbox, actor = local(ctx)
        created = webhooks.register(
            lockbox,
            actor,
            url=url,
            events=event,
            tenant=tenant,
        )
        data = {**webhooks.view(created.row), "secret": created.secret}
    _emit(ctx, data)
    if not root(ctx).json:
        output.err.print("Store the secret now: it is not shown again.")


@app.command("list")
def webhook_list(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's endpoints.")] = None,
) -> None:
    """Registered endpoints (never their secrets)."""
    if is_remote(ctx):
        items = api(ctx, "GET", "/v1/webhooks", params={"tenant": tenant} if tenant else None)
        items = items["items"]
    else:
        from lockbox.service import webhooks

        lockbox, actor = local(ctx)
        items = [webhooks.view(h) for h in webhooks.list_webhooks(lockbox, actor, tenant=tenant)]
    if root(ctx).json:
        output.emit_json(items)
        return
    output.table(
        "Webhooks",
        ["id", "tenant", "url", "events", "created"],
        (
            [
                h["id"],
                h["tenant_id"] or "(provider)",
                h["url"],
                ",".join(h["events"]),
                h["created_at"],
            ]
            for h in items
        ),
    )


@app.command("delete")
def webhook_delete(ctx: typer.Context, webhook_id: str) -> None:
    """Delete an endpoint; deliveries still queued for it are skipped."""
    if is_remote(ctx):
        api(ctx, "DELETE", f"/v1/webhooks/{webhook_id}")
        data: dict[str, Any] = {"id": webhook_id, "deleted": True}
    else:
        from lockbox.service import webhooks

        lockbox, actor = local(ctx)
        data = {
            **webhooks.view(webhooks.delete_webhook(lockbox, actor, webhook_id)),
            "deleted": True,
        }
    _emit(ctx, data)
