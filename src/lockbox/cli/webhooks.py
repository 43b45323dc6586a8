"""``lockbox webhook``: register, list and delete webhook endpoints (signed JSON, or Slack
and Microsoft Teams chat messages)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from lockbox.cli import output
from lockbox.cli.remote import api, is_remote, local, root

app = typer.Typer(
    help="Webhook endpoints: signed JSON (Standard Webhooks; secret shown once), or Slack / "
    "Microsoft Teams chat messages (--format slack|teams; no links, not signed).",
    no_args_is_help=True,
)


class Format(StrEnum):
    """The choices of ``--format`` (the service's ``WebhookFormat``, spelt out for Typer)."""

    STANDARD = "standard"
    SLACK = "slack"
    TEAMS = "teams"


def _emit(ctx: typer.Context, data: Any) -> None:
    if root(ctx).json:
        output.emit_json(data)
    else:
        output.fields(data)


@app.command("create")
@app.command("add", hidden=True)  # the same command under the word people also reach for
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
    format: Annotated[
        Format,
        typer.Option(
            "--format",
            case_sensitive=False,
            help="standard: signed JSON events; slack / teams: a chat message for a Slack or "
            "Teams incoming-webhook URL (no links, not signed: the URL is the secret).",
        ),
    ] = Format.STANDARD,
) -> None:
    """Register an endpoint; prints its signing secret ONCE (standard format)."""
    if is_remote(ctx):
        body = {"url": url, "tenant": tenant, "events": event or ["*"], "format": format.value}
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
            format=format.value,
        )
        data = {**webhooks.view(created.row), "secret": created.secret}
    _emit(ctx, data)
    if root(ctx).json:
        return
    if data.get("secret"):
        output.err.print("Store the secret now: it is not shown again.")
    else:
        output.err.print(
            "Slack and Teams messages are not signed (those services check no signature): "
            "the webhook URL is the secret. Keep it private."
        )


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
        ["id", "tenant", "format", "url", "events", "created"],
        (
            [
                h["id"],
                h["tenant_id"] or "(provider)",
                h.get("format", "standard"),
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
