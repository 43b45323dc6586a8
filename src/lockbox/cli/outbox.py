"""``lockbox outbox``: see queued, sent, skipped and parked notifications; re-send parked ones."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lockbox.cli import output
from lockbox.cli.remote import api, is_remote, local, root

app = typer.Typer(
    help="The notification outbox (e-mails and webhook deliveries).", no_args_is_help=True
)

StatusOpt = Annotated[
    str | None, typer.Option("--status", help="pending, sent, failed or skipped.")
]


def _emit(ctx: typer.Context, data: Any) -> None:
    if root(ctx).json:
        output.emit_json(data)
    elif isinstance(data, dict):
        output.fields(data)


@app.command("list")
def outbox_list(
    ctx: typer.Context,
    status: StatusOpt = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's messages.")] = None,
    request: Annotated[str | None, typer.Option(help="Only this request's messages.")] = None,
    limit: Annotated[int, typer.Option()] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue from a previous page.")] = None,
) -> None:
    """Outbox messages, newest first (``--status failed``: the parked ones)."""
    if is_remote(ctx):
        params = {"status": status, "tenant": tenant, "request_id": request, "limit": limit}
        params["cursor"] = cursor
        page = api(ctx, "GET", "/v1/outbox", params={k: v for k, v in params.items() if v})
    else:
        from lockbox.service import outbox

        lockbox, actor = local(ctx)
        rows, next_cursor = outbox.list_outbox(
            lockbox,
            actor,
            status=status,
            tenant=tenant,
            request_id=request,
            limit=limit,
            cursor=cursor,
        )
        page = {"items": [outbox.view(r) for r in rows], "next_cursor": next_cursor}
    if root(ctx).json:
        output.emit_json(page)
        return
    output.table(
        "Outbox messages",
        ["id", "status", "channel", "topic", "recipient", "attempts", "due", "last error"],
        (
            [
                m["id"],
                m["status"],
                m["channel"],
                m["topic"],
                m["recipient"],
                m["attempts"],
                m["due_at"],
                (m["last_error"] or "")[:80],
            ]
            for m in page["items"]
        ),
    )
    if page.get("next_cursor"):
        output.err.print(f"more: --cursor {page['next_cursor']}")


@app.command("show")
def outbox_show(ctx: typer.Context, message_id: str) -> None:
    """One message, with its payload."""
    if is_remote(ctx):
        data = api(ctx, "GET", f"/v1/outbox/{message_id}")
    else:
        from lockbox.service import outbox

        lockbox, actor = local(ctx)
        data = outbox.view(outbox.get_message(lockbox, actor, message_id), payload=True)
    _emit(ctx, data)


@app.command("retry")
def outbox_retry(ctx: typer.Context, message_id: str) -> None:
    """Re-queue a parked (failed) message: the worker sends it again, same Message-ID."""
    if is_remote(ctx):
        data = api(ctx, "POST", f"/v1/outbox/{message_id}/retry")
    else:
        from lockbox.service import outbox

        lockbox, actor = local(ctx)
        data = outbox.view(outbox.retry_message(lockbox, actor, message_id))
    _emit(ctx, data)


@app.command("stats")
def outbox_stats(ctx: typer.Context) -> None:
    """How many messages are pending, sent, failed and skipped."""
    if is_remote(ctx):
        data = api(ctx, "GET", "/v1/outbox/stats")
    else:
        from lockbox.service import outbox

        lockbox, actor = local(ctx)
        data = outbox.counts(lockbox, actor)
    _emit(ctx, data)
