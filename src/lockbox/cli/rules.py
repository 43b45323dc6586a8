"""``lockbox rule``: a tenant's auto-approval rules; ``lockbox change``: the changes that wait
for a second tenant admin (four eyes). Locally or over the API, like every command."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from lockbox.cli import output
from lockbox.cli.remote import api, is_remote, local, root
from lockbox.domain.errors import ValidationError
from lockbox.domain.policy import parse_duration

rule_app = typer.Typer(
    help="Auto-approval rules: which requests the tenant approves in advance (tenant admin).",
    no_args_is_help=True,
)
change_app = typer.Typer(
    help="Changes that widen access and wait for a second tenant admin (four eyes).",
    no_args_is_help=True,
)

TenantOpt = Annotated[str, typer.Option("--tenant", help="Tenant slug or id.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="How people see the rule.")]
ResourceOpt = Annotated[
    list[str] | None,
    typer.Option("--resource", help="A resource name or prefix/* pattern it covers (repeat)."),
]
LevelOpt = Annotated[
    str | None, typer.Option("--level", help="The highest level it approves: read, read_write.")
]
CategoryOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--category",
        help="A justification category it approves (repeat): incident, maintenance, "
        "investigation, customer_request, other.",
    ),
]
DayOpt = Annotated[
    list[str] | None, typer.Option("--day", help="A day it approves on (repeat): mon … sun.")
]
HoursOpt = Annotated[
    str | None, typer.Option("--hours", help="Local hours, e.g. 09:00-17:00 (24:00: midnight).")
]
ZoneOpt = Annotated[
    str | None, typer.Option("--time-zone", help="IANA time zone of the hours, e.g. Europe/Berlin.")
]
WindowOpt = Annotated[
    str | None, typer.Option("--max-window", help="Longest access it grants, e.g. 1h or 30m.")
]
CommentOpt = Annotated[str | None, typer.Option(help="A comment recorded with the decision.")]


def _settings(
    *,
    name: str | None,
    resource: list[str] | None,
    level: str | None,
    category: list[str] | None,
    day: list[str] | None,
    hours: str | None,
    time_zone: str | None,
    max_window: str | None,
) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key, value in (
        ("name", name),
        ("resources", resource),
        ("access_level", level),
        ("categories", category),
        ("days", day),
        ("hours", hours),
        ("time_zone", time_zone),
    ):
        if value:
            settings[key] = value
    if max_window is not None:
        window = parse_duration(max_window, "max_window")
        settings["max_access_window_seconds"] = int(window.total_seconds())
    return settings


def _path(tenant: str, *parts: str) -> str:
    return "/v1/tenants/" + "/".join(quote(p, safe="@") for p in (tenant, *parts))


def _emit(ctx: typer.Context, data: Any, tenant: str) -> None:
    """A rule, or a pending change with what to do next."""
    if root(ctx).json:
        output.emit_json(data)
        return
    output.fields(data)
    if isinstance(data, dict) and "kind" in data and data.get("state") == "pending":
        output.err.print(
            f"Not applied yet: it {'; '.join(data.get('reasons') or [])}, so another tenant "
            f"admin must approve it: lockbox change approve {data['id']} --tenant {tenant}",
            markup=False,
        )


def _outcome(outcome: Any) -> dict[str, Any]:
    from lockbox.service import auto_approval, changes

    if outcome.pending is not None:
        return changes.view(outcome.pending)
    view: dict[str, Any] = auto_approval.view(outcome.rule)
    return view


# -- rules ---------------------------------------------------------------------------------------


@rule_app.command("list")
def rule_list(
    ctx: typer.Context,
    tenant: TenantOpt,
    all_rules: Annotated[
        bool, typer.Option("--all", help="Also deleted, rejected and withdrawn rules.")
    ] = False,
) -> None:
    """A tenant's rules, in the order they are tried."""
    if is_remote(ctx):
        params = {"include_ended": "true"} if all_rules else None
        items = api(ctx, "GET", _path(tenant, "auto-approval-rules"), params=params)["items"]
    else:
        from lockbox.service import auto_approval

        lockbox, actor = local(ctx)
        items = auto_approval.rule_views(lockbox, actor, tenant, include_ended=all_rules)
    if root(ctx).json:
        output.emit_json(items)
        return
    output.table(
        "Auto-approval rules",
        ["id", "name", "state", "resources", "level", "categories", "when", "max window"],
        (
            [
                r["id"],
                r["name"],
                r["state"],
                ", ".join(r["resources"]),
                r["access_level"],
                ", ".join(r["categories"]),
                f"{','.join(r['days'])} {r['hours']} {r['time_zone']}",
                f"{r['max_access_window_seconds'] // 60}m",
            ]
            for r in items
        ),
    )


@rule_app.command("add")
def rule_add(
    ctx: typer.Context,
    tenant: TenantOpt,
    name: Annotated[str, typer.Option("--name", help="How people see the rule.")],
    resource: ResourceOpt = None,
    category: CategoryOpt = None,
    level: LevelOpt = None,
    day: DayOpt = None,
    hours: HoursOpt = None,
    time_zone: ZoneOpt = None,
    max_window: WindowOpt = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Write it switched off.")] = False,
) -> None:
    """Write a rule (tenant admin); with more than one tenant admin it waits for another."""
    settings = _settings(
        name=name,
        resource=resource,
        level=level,
        category=category,
        day=day,
        hours=hours,
        time_zone=time_zone,
        max_window=max_window,
    )
    if disabled:
        settings["enabled"] = False
    if is_remote(ctx):
        data = api(ctx, "POST", _path(tenant, "auto-approval-rules"), json=settings)
    else:
        from lockbox.service import auto_approval

        lockbox, actor = local(ctx)
        data = _outcome(auto_approval.create_rule(lockbox, actor, tenant, settings))
    _emit(ctx, data, tenant)


def _update(ctx: typer.Context, tenant: str, rule_id: str, settings: dict[str, Any]) -> None:
    if is_remote(ctx):
        data = api(ctx, "PATCH", _path(tenant, "auto-approval-rules", rule_id), json=settings)
    else:
        from lockbox.service import auto_approval

        lockbox, actor = local(ctx)
        data = _outcome(auto_approval.update_rule(lockbox, actor, tenant, rule_id, settings))
    _emit(ctx, data, tenant)


@rule_app.command("update")
def rule_update(
    ctx: typer.Context,
    rule_id: str,
    tenant: TenantOpt,
    name: NameOpt = None,
    resource: ResourceOpt = None,
    category: CategoryOpt = None,
    level: LevelOpt = None,
    day: DayOpt = None,
    hours: HoursOpt = None,
    time_zone: ZoneOpt = None,
    max_window: WindowOpt = None,
    enable: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Switch it on or off.")
    ] = None,
) -> None:
    """Change a rule: narrowing applies at once, loosening may wait for another tenant admin."""
    settings = _settings(
        name=name,
        resource=resource,
        level=level,
        category=category,
        day=day,
        hours=hours,
        time_zone=time_zone,
        max_window=max_window,
    )
    if enable is not None:
        settings["enabled"] = enable
    if not settings:
        raise ValidationError("rule", "name at least one setting to change")
    _update(ctx, tenant, rule_id, settings)


@rule_app.command("disable")
def rule_disable(ctx: typer.Context, rule_id: str, tenant: TenantOpt) -> None:
    """Switch a rule off at once (``rule update --enable`` switches it on again)."""
    _update(ctx, tenant, rule_id, {"enabled": False})


@rule_app.command("delete")
def rule_delete(ctx: typer.Context, rule_id: str, tenant: TenantOpt) -> None:
    """Delete a rule at once; it stays readable for the audit log (``rule list --all``)."""
    if is_remote(ctx):
        api(ctx, "DELETE", _path(tenant, "auto-approval-rules", rule_id))
        data: dict[str, Any] = {"id": rule_id, "state": "deleted"}
    else:
        from lockbox.service import auto_approval

        lockbox, actor = local(ctx)
        data = auto_approval.view(auto_approval.delete_rule(lockbox, actor, tenant, rule_id))
    _emit(ctx, data, tenant)


# -- pending changes -------------------------------------------------------------------------------


@change_app.command("list")
def change_list(
    ctx: typer.Context,
    tenant: TenantOpt,
    state: Annotated[
        list[str] | None,
        typer.Option("--state", help="Only these states (repeat): pending, applied, rejected, …"),
    ] = None,
) -> None:
    """A tenant's changes for a second admin, newest first."""
    if is_remote(ctx):
        params = [("state", s) for s in state or []]
        items = api(ctx, "GET", _path(tenant, "pending-changes"), params=params)["items"]
    else:
        from lockbox.service import changes

        lockbox, actor = local(ctx)
        found = changes.list_changes(lockbox, actor, tenant, states=list(state or []))
        items = [changes.view(c) for c in found]
    if root(ctx).json:
        output.emit_json(items)
        return
    output.table(
        "Pending changes",
        ["id", "kind", "state", "why", "proposed by", "proposed at"],
        (
            [
                c["id"],
                c["kind"],
                c["state"],
                "; ".join(c["reasons"]),
                c["proposed_by"],
                (c["proposed_at"] or "")[:19].replace("T", " "),
            ]
            for c in items
        ),
    )


def _decide(ctx: typer.Context, how: str, change_id: str, tenant: str, comment: str | None) -> None:
    if is_remote(ctx):
        body = {"comment": comment} if comment is not None else {}
        data = api(ctx, "POST", _path(tenant, "pending-changes", change_id, how), json=body)
    else:
        from lockbox.service import changes

        action = changes.DECISIONS[how]
        lockbox, actor = local(ctx)
        data = changes.view(action(lockbox, actor, tenant, change_id, comment=comment).change)
    _emit(ctx, data, tenant)


@change_app.command("approve")
def change_approve(
    ctx: typer.Context, change_id: str, tenant: TenantOpt, comment: CommentOpt = None
) -> None:
    """Approve another tenant admin's change: it applies now."""
    _decide(ctx, "approve", change_id, tenant, comment)


@change_app.command("reject")
def change_reject(
    ctx: typer.Context, change_id: str, tenant: TenantOpt, comment: CommentOpt = None
) -> None:
    """Reject another tenant admin's change: nothing changes."""
    _decide(ctx, "reject", change_id, tenant, comment)


@change_app.command("withdraw")
def change_withdraw(
    ctx: typer.Context, change_id: str, tenant: TenantOpt, comment: CommentOpt = None
) -> None:
    """Withdraw your own change before another admin decided."""
    _decide(ctx, "withdraw", change_id, tenant, comment)
