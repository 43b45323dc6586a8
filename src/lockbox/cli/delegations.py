"""``lockbox delegation``: hand your approvals to a colleague for a while, list, end."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from lockbox.cli import output
from lockbox.cli.remote import api, is_remote, local, root
from lockbox.domain.instants import format_instant
from lockbox.domain.policy import parse_duration

app = typer.Typer(
    help="Delegations: an approver's approvals held by a colleague for a period "
    "(docs/approvals.md).",
    no_args_is_help=True,
)


def _until(value: str, now: datetime) -> datetime:
    """An RFC 3339 instant (UTC when it names no zone), or a span such as ``7d`` from now."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return now + parse_duration(value, "until")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _emit(ctx: typer.Context, data: Any) -> None:
    if root(ctx).json:
        output.emit_json(data)
    else:
        output.fields(data)


@app.command("add")
def delegation_add(
    ctx: typer.Context,
    to: Annotated[str, typer.Option(help="The colleague, by e-mail address or user id.")],
    until: Annotated[str, typer.Option(help="An instant (RFC 3339) or a span: 7d, 36h.")],
    reason: Annotated[str | None, typer.Option(help="Why (in the audit log).")] = None,
) -> None:
    """Hand your approvals to a colleague (approver or tenant admin) until then."""
    if is_remote(ctx):
        ends = format_instant(_until(until, datetime.now(UTC)))
        body = {"to": to, "ends_at": ends, "reason": reason}
        data = api(ctx, "POST", "/v1/delegations", json={k: v for k, v in body.items() if v})
    else:
        from lockbox.service import delegations

        lockbox, actor = local(ctx)
        made = delegations.create_delegation(
            lockbox, actor, to=to, ends_at=_until(until, lockbox.now()), reason=reason
        )
        data = delegations.view(made)
    _emit(ctx, data)


@app.command("list")
def delegation_list(ctx: typer.Context) -> None:
    """Delegations not yet over: yours, or all of your organisation's (tenant admin)."""
    if is_remote(ctx):
        items = api(ctx, "GET", "/v1/delegations")["items"]
    else:
        from lockbox.service import delegations

        lockbox, actor = local(ctx)
        items = [delegations.view(d) for d in delegations.list_delegations(lockbox, actor)]
    if root(ctx).json:
        output.emit_json(items)
        return
    output.table(
        "Delegations",
        ["id", "from", "to", "from (UTC)", "until (UTC)", "reason"],
        (
            [
                d["id"],
                d["from_user"],
                d["to_user"],
                str(d["starts_at"])[:16].replace("T", " "),
                str(d["ends_at"])[:16].replace("T", " "),
                d.get("reason") or "",
            ]
            for d in items
        ),
    )


@app.command("revoke")
def delegation_revoke(ctx: typer.Context, delegation_id: str) -> None:
    """End a delegation now (its two people or a tenant admin)."""
    if is_remote(ctx):
        data = api(ctx, "POST", f"/v1/delegations/{delegation_id}/revoke")
    else:
        from lockbox.service import delegations

        lockbox, actor = local(ctx)
        data = delegations.view(delegations.revoke_delegation(lockbox, actor, delegation_id))
    _emit(ctx, data)
