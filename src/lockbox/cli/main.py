"""The ``lockbox`` command: bootstrap, every intent, queries, audit, demo."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from lockbox.cli import output
from lockbox.cli.backend import Backend, LocalBackend
from lockbox.domain.errors import LockboxError, ValidationError
from lockbox.domain.lifecycle import render_document, render_markdown, render_mermaid
from lockbox.domain.policy import parse_duration
from lockbox.store.db import MigrationRefused

app = typer.Typer(
    name="lockbox",
    help="Lockbox: customer-approved, time-bounded, audited support access.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
tenant_app = typer.Typer(help="Tenants (customers) and their lockbox policy.", no_args_is_help=True)
policy_app = typer.Typer(help="A tenant's lockbox policy.", no_args_is_help=True)
user_app = typer.Typer(help="Staff and customer users and their roles.", no_args_is_help=True)
token_app = typer.Typer(
    help="API tokens (bearer credentials for the HTTP API).", no_args_is_help=True
)
case_app = typer.Typer(help="Support cases.", no_args_is_help=True)
request_app = typer.Typer(help="Access requests: the lockbox lifecycle.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
docs_app = typer.Typer(help="Generated documentation.", no_args_is_help=True)
for sub, name in (
    (tenant_app, "tenant"),
    (policy_app, "policy"),
    (user_app, "user"),
    (token_app, "token"),
    (case_app, "case"),
    (request_app, "request"),
    (audit_app, "audit"),
    (db_app, "db"),
    (docs_app, "docs"),
):
    app.add_typer(sub, name=name)

from lockbox.cli import accounts, trust  # noqa: E402
from lockbox.cli.access import access_app  # noqa: E402
from lockbox.cli.keys import keys_app  # noqa: E402

app.add_typer(keys_app, name="keys")
app.add_typer(trust.receipt_app, name="receipt")
audit_app.command("checkpoint")(trust.audit_checkpoint)
audit_app.command("keys")(trust.audit_keys)
app.add_typer(access_app, name="access")
app.add_typer(accounts.password_app, name="password")
from lockbox.cli.sso import sso_app  # noqa: E402

app.add_typer(sso_app, name="sso")
accounts.register(tenant_app, user_app)


class Settings:
    """Global options, resolved once per invocation."""

    def __init__(
        self,
        database_url: str | None,
        as_user: str | None,
        json_output: bool,
        server: str | None,
        token: str | None,
    ):
        self.database_url = database_url
        self.as_user = as_user
        self.json = json_output
        self.server = server
        self.token = token
        self._backend: Backend | None = None

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            if self.server:
                from lockbox.cli.http_backend import HttpBackend

                if not self.token:
                    raise ValidationError(
                        "token", "set LOCKBOX_TOKEN (or --token) to talk to a server"
                    )
                self._backend = HttpBackend(self.server, self.token)
            else:
                self._backend = LocalBackend(self.database_url, self.as_user)
        return self._backend

    def anonymous_backend(self) -> Backend:
        """The server without a token: for the one call that needs none (a password reset)."""
        from lockbox.cli.http_backend import HttpBackend

        if not self.server:
            raise ValidationError("server", "set LOCKBOX_SERVER")
        return HttpBackend(self.server, None)


def settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    if not isinstance(obj, Settings):
        raise RuntimeError("the lockbox command was not initialised")
    return obj


@app.callback()
def _root(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="LOCKBOX_DATABASE_URL",
            help="SQLAlchemy URL; default: a SQLite file under ~/.local/share/lockbox.",
        ),
    ] = None,
    as_user: Annotated[
        str | None,
        typer.Option(
            "--as",
            envvar="LOCKBOX_AS",
            help="Local mode: act as this user (e-mail or id). Default: the local operator.",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    server: Annotated[
        str | None,
        typer.Option(
            "--server", envvar="LOCKBOX_SERVER", help="Talk to this Lockbox server's API."
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="LOCKBOX_TOKEN", help="API token for --server.", show_default=False
        ),
    ] = None,
) -> None:
    ctx.obj = Settings(database_url, as_user, json_output, server, token)


def show(ctx: typer.Context, data: Any, keys: list[str] | None = None) -> None:
    if settings(ctx).json:
        output.emit_json(data)
    elif isinstance(data, dict):
        output.fields(data, keys)
    else:
        output.out.print(data)


# -- db and docs --------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create or migrate the database schema (idempotent)."""
    backend = settings(ctx).backend
    if not isinstance(backend, LocalBackend):
        raise ValidationError("server", "db upgrade works on the local database only")
    try:
        backend.migrate()
    except MigrationRefused as exc:
        output.err.print(f"error: the upgrade stopped: {exc}", markup=False)
        raise typer.Exit(1) from None
    output.err.print(f"database at revision head ({backend.app.db.dialect})")


@docs_app.command("lifecycle")
def docs_lifecycle(
    fmt: Annotated[
        str, typer.Option("--format", help="document, markdown or mermaid")
    ] = "document",
) -> None:
    """Print the lifecycle docs (generated from the transition table in the code)."""
    renderers = {
        "document": render_document,
        "markdown": render_markdown,
        "mermaid": render_mermaid,
    }
    if fmt not in renderers:
        raise ValidationError("format", "must be 'document', 'markdown' or 'mermaid'")
    sys.stdout.write(renderers[fmt]().rstrip("\n") + "\n")


# -- tenants and policy -------------------------------------------------------------


class OnOff(StrEnum):
    on = "on"
    off = "off"


def _policy_options(
    lockbox: OnOff | None,
    approval_window: str | None,
    access_window: str | None,
    review_window: str | None,
    required_approvals: int | None,
    notify_email: list[str] | None,
    reminder_fraction: float | None,
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if lockbox is not None:
        changes["enabled"] = lockbox is OnOff.on
    for key, value in (
        ("approval_window", approval_window),
        ("access_window", access_window),
        ("review_window", review_window),
    ):
        if value is not None:
            changes[key] = parse_duration(value, key)
    if required_approvals is not None:
        changes["required_approvals"] = required_approvals
    if notify_email is not None:
        changes["notify_emails"] = tuple(e for e in notify_email if e)
    if reminder_fraction is not None:
        changes["reminder_fraction"] = reminder_fraction
    return changes


LockboxOpt = Annotated[OnOff | None, typer.Option("--lockbox", help="Customer approval on or off.")]
ApprovalOpt = Annotated[str | None, typer.Option(help="Approval window, e.g. 12h.")]
AccessOpt = Annotated[str | None, typer.Option(help="Access window, e.g. 4h.")]
ReviewOpt = Annotated[str | None, typer.Option(help="Manager review window, e.g. 12h.")]
ApprovalsOpt = Annotated[int | None, typer.Option(help="Distinct customer approvals required.")]
NotifyOpt = Annotated[
    list[str] | None,
    typer.Option("--notify-email", help="Extra address for approval mails (repeat)."),
]
ReminderOpt = Annotated[
    float | None, typer.Option(help="Remind when this fraction of the approval window is left.")
]


def _tenant_row(t: dict[str, Any]) -> list[Any]:
    p = t["policy"]
    return [
        t["slug"],
        t["name"],
        "on" if p["enabled"] else "off",
        p["required_approvals"],
        f"{p['approval_window_seconds'] // 60}m",
        f"{p['access_window_seconds'] // 60}m",
        t["id"],
    ]


_TENANT_COLUMNS = ["slug", "name", "lockbox", "approvals", "approval window", "access window", "id"]


@tenant_app.command("create")
def tenant_create(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="Short unique name, e.g. contoso.")],
    name: Annotated[str, typer.Option(help="Display name, e.g. 'Contoso Ltd'.")],
    lockbox: LockboxOpt = None,
    approval_window: ApprovalOpt = None,
    access_window: AccessOpt = None,
    review_window: ReviewOpt = None,
    required_approvals: ApprovalsOpt = None,
    notify_email: NotifyOpt = None,
    reminder_fraction: ReminderOpt = None,
    domain: Annotated[
        list[str] | None,
        typer.Option("--domain", help="An e-mail domain of the customer (repeat)."),
    ] = None,
) -> None:
    """Onboard a tenant (provider admin)."""
    policy = _policy_options(
        lockbox,
        approval_window,
        access_window,
        review_window,
        required_approvals,
        notify_email,
        reminder_fraction,
    )
    show(ctx, settings(ctx).backend.create_tenant(slug, name, policy, list(domain or [])))


@tenant_app.command("list")
def tenant_list(ctx: typer.Context) -> None:
    """Tenants you can see."""
    items = settings(ctx).backend.list_tenants()
    if settings(ctx).json:
        output.emit_json(items)
    else:
        output.table("Tenants", _TENANT_COLUMNS, (_tenant_row(t) for t in items))


@tenant_app.command("show")
def tenant_show(ctx: typer.Context, tenant: str) -> None:
    """One tenant and its policy."""
    show(ctx, settings(ctx).backend.get_tenant(tenant))


@policy_app.command("show")
def policy_show(ctx: typer.Context, tenant: str) -> None:
    """A tenant's lockbox policy."""
    show(ctx, settings(ctx).backend.get_tenant(tenant)["policy"])


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
    tenant: str,
    lockbox: LockboxOpt = None,
    approval_window: ApprovalOpt = None,
    access_window: AccessOpt = None,
    review_window: ReviewOpt = None,
    required_approvals: ApprovalsOpt = None,
    notify_email: NotifyOpt = None,
    reminder_fraction: ReminderOpt = None,
    max_extensions: Annotated[
        int | None, typer.Option(help="Extensions allowed per request (0: none).")
    ] = None,
    stages_file: Annotated[
        Path | None,
        typer.Option(
            help="A JSON file with any of 'stages', 'groups' and 'extension_stages' "
            "(docs/approvals.md).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Change a tenant's policy (tenant admin)."""
    changes = _policy_options(
        lockbox,
        approval_window,
        access_window,
        review_window,
        required_approvals,
        notify_email,
        reminder_fraction,
    )
    if max_extensions is not None:
        changes["max_extensions"] = max_extensions
    if stages_file is not None:
        changes.update(_stages_file(stages_file))
    if not changes:
        raise ValidationError("policy", "name at least one setting to change")
    result = settings(ctx).backend.change_policy(tenant, changes)
    pending = result.get("pending_change")
    if pending is None:
        show(ctx, result["policy"])
        return
    show(ctx, pending)
    if not settings(ctx).json:
        output.err.print(
            f"Not applied yet: the change {'; '.join(pending['reasons'])}, so another tenant "
            f"admin must approve it (lockbox change approve {pending['id']} --tenant {tenant}).",
            markup=False,
        )


def _stages_file(path: Path) -> dict[str, Any]:
    """The approval stages, groups and extension stages of a JSON file, for the policy."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError("stages_file", f"cannot read it as JSON: {exc}") from None
    known = {"stages", "groups", "extension_stages"}
    if not isinstance(data, dict) or not data or set(data) - known:
        raise ValidationError(
            "stages_file", "must be a JSON object with stages, groups and/or extension_stages"
        )
    return dict(data)


# -- users and tokens ---------------------------------------------------------------


@user_app.command("create")
def user_create(
    ctx: typer.Context,
    email: str,
    role: Annotated[list[str], typer.Option("--role", help="Role to grant (repeat).")],
    tenant: Annotated[str | None, typer.Option(help="Tenant of a customer user.")] = None,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read a sign-in password from standard input (local operator only; "
            "everyone else uses `user reset-password`).",
        ),
    ] = False,
) -> None:
    """Create a provider or customer user."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    show(ctx, settings(ctx).backend.create_user(email, role, tenant, name, password))


@user_app.command("list")
def user_list(ctx: typer.Context, tenant: Annotated[str | None, typer.Option()] = None) -> None:
    """Users you can see."""
    items = settings(ctx).backend.list_users(tenant)
    if settings(ctx).json:
        output.emit_json(items)
        return
    output.table(
        "Users",
        ["email", "name", "side", "tenant", "roles", "active", "id"],
        (
            [
                u["email"],
                u["display_name"],
                u["side"],
                u["tenant_id"],
                ",".join(u["roles"]),
                u["active"],
                u["id"],
            ]
            for u in items
        ),
    )


@user_app.command("roles")
def user_roles(
    ctx: typer.Context,
    user: str,
    role: Annotated[
        list[str], typer.Option("--role", help="The complete new set of roles (repeat).")
    ],
) -> None:
    """Replace a user's roles."""
    show(ctx, settings(ctx).backend.set_roles(user, role))


@user_app.command("deactivate")
def user_deactivate(ctx: typer.Context, user: str) -> None:
    """Disable a user: their tokens and sessions stop working at once."""
    show(ctx, settings(ctx).backend.set_active(user, False))


@user_app.command("activate")
def user_activate(ctx: typer.Context, user: str) -> None:
    """Re-enable a user."""
    show(ctx, settings(ctx).backend.set_active(user, True))


def parse_when(value: str | None, field: str, *, past: bool = False) -> datetime | None:
    """An ISO 8601 instant (UTC when it names no zone), or a duration such as ``30d``
    from now: into the future, or into the past with ``past``."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except ValueError:
        delta = parse_duration(value, field)
        return datetime.now(UTC) - delta if past else datetime.now(UTC) + delta


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Option(help="Owner (e-mail or id); default: yourself.")
    ] = None,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    expires: Annotated[
        str | None, typer.Option(help="Expiry: a duration (30d, 12h) or an ISO 8601 time.")
    ] = None,
) -> None:
    """Create an API token. It is shown once; only its digest is stored."""
    data = settings(ctx).backend.create_token(user, name, parse_when(expires, "expires"))
    if settings(ctx).json:
        output.emit_json(data)
        return
    output.fields(data, ["id", "user_id", "name", "expires_at"])
    output.err.print("The token (shown once, keep it secret):")
    sys.stdout.write(data["token"] + "\n")


@token_app.command("list")
def token_list(ctx: typer.Context, user: Annotated[str | None, typer.Option()] = None) -> None:
    """Tokens of a user (never their secrets)."""
    items = settings(ctx).backend.list_tokens(user)
    if settings(ctx).json:
        output.emit_json(items)
        return
    output.table(
        "Tokens",
        ["id", "name", "created", "expires", "revoked", "last used"],
        (
            [
                t["id"],
                t["name"],
                t["created_at"],
                t["expires_at"],
                t["revoked_at"],
                t["last_used_at"],
            ]
            for t in items
        ),
    )


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: str) -> None:
    """Revoke a token; it stops working at once."""
    show(ctx, settings(ctx).backend.revoke_token(token_id))


# -- cases --------------------------------------------------------------------------


@case_app.command("open")
def case_open(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option(help="Tenant slug or id.")],
    title: Annotated[str, typer.Option(help="What the customer reported.")],
    engineer: Annotated[str | None, typer.Option(help="Assigned engineer; default: you.")] = None,
    reference: Annotated[
        str | None, typer.Option(help="Ticket number in your support system.")
    ] = None,
) -> None:
    """Open a support case."""
    show(ctx, settings(ctx).backend.open_case(tenant, title, engineer, reference))


@case_app.command("close")
def case_close(
    ctx: typer.Context, case_id: str, comment: Annotated[str | None, typer.Option()] = None
) -> None:
    """Close a case; every open request on it ends at once."""
    show(ctx, settings(ctx).backend.close_case(case_id, comment))


@case_app.command("list")
def case_list(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option(help="open or closed")] = None,
) -> None:
    """Support cases you can see."""
    items = settings(ctx).backend.list_cases(tenant, status)
    if settings(ctx).json:
        output.emit_json(items)
        return
    output.table(
        "Cases",
        ["id", "tenant", "title", "status", "engineer", "opened"],
        (
            [c["id"], c["tenant_id"], c["title"], c["status"], c["engineer_id"], c["opened_at"]]
            for c in items
        ),
    )


@case_app.command("show")
def case_show(ctx: typer.Context, case_id: str) -> None:
    """One support case."""
    show(ctx, settings(ctx).backend.get_case(case_id))


# -- requests -----------------------------------------------------------------------

_REQUEST_KEYS = [
    "id",
    "state",
    "tenant_id",
    "case_id",
    "requester_id",
    "resources",
    "access_level",
    "justification",
    "category",
    "created_at",
    "deadline",
    "review_deadline",
    "approval_deadline",
    "access_deadline",
    "required_approvals",
    "version",
]


def show_request(ctx: typer.Context, data: dict[str, Any]) -> None:
    if settings(ctx).json:
        output.emit_json(data)
        return
    known = data.get("people") or {}
    shown = dict(data)
    for key in ("requester_id", "reviewer_id", "ended_by"):
        if shown.get(key):
            shown[key] = output.person(known, shown[key])
    output.fields(shown, _REQUEST_KEYS)
    stages = data.get("stages") or []
    if stages:
        waiting = data.get("current_stage")
        output.table(
            "Approval stages",
            ["stage", "approvals", "status", "can approve"],
            (
                [
                    s["name"],
                    f"{len(s['approved_by'])} of {s['required']}",
                    "met" if s["met"] else ("waiting" if s["key"] == waiting else "later"),
                    ", ".join(output.person(known, p) for p in data.get("can_approve") or [])
                    if s["key"] == waiting
                    else "",
                ]
                for s in stages
            ),
        )
    decisions = data.get("decisions") or []
    if decisions:
        output.table(
            "Customer decisions",
            ["at (UTC)", "by", "decision", "comment"],
            (
                [
                    (d["at"] or "")[:19].replace("T", " "),
                    output.person(known, d["actor_id"]),
                    d["decision"],
                    d.get("comment") or "",
                ]
                for d in decisions
            ),
        )
    history = data.get("history") or []
    if history:
        output.table(
            "History",
            ["seq", "at (UTC)", "operation", "state", "by", "comment"],
            (
                [
                    h["seq"],
                    h["at"][:19].replace("T", " "),
                    h["operation"],
                    _state_change(h["details"]),
                    output.person(known, h["actor_id"]),
                    h["details"].get("comment") or h["details"].get("flag") or "",
                ]
                for h in history
            ),
        )


def _state_change(details: dict[str, Any]) -> str:
    """``pending_review → pending_approval`` for transitions, blank for other records."""
    before, after = details.get("from"), details.get("to")
    if after is None:
        return ""
    return f"{before or 'new'} → {after}" if before != after else str(after)


@request_app.command("submit")
def request_submit(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option(help="Tenant slug or id.")],
    case: Annotated[str, typer.Option(help="Support case id.")],
    resource: Annotated[list[str], typer.Option("--resource", help="Resource name (repeat).")],
    justification: Annotated[str, typer.Option(help="Why you need access.")],
    level: Annotated[str, typer.Option("--level", help="read or read_write")] = "read",
    category: Annotated[
        str,
        typer.Option(
            help="What it is for: incident, maintenance, investigation, customer_request or "
            "other (the customer's auto-approval rules select on it)."
        ),
    ] = "other",
    start: Annotated[
        str | None,
        typer.Option(
            help="When access should start (an instant, or a span from now such as 2d), "
            "at most 7 days ahead; default: at approval."
        ),
    ] = None,
) -> None:
    """Ask for access to a tenant's resources (engineer on the case)."""
    starts_at = parse_when(start, "start")
    show_request(
        ctx,
        settings(ctx).backend.submit_request(
            tenant, case, resource, level, justification, category, starts_at
        ),
    )


CommentOpt = Annotated[str | None, typer.Option(help="Comment recorded with the decision.")]


@request_app.command("review")
def request_review(
    ctx: typer.Context,
    request_id: str,
    approve: Annotated[bool, typer.Option("--approve/--reject", help="Forward or reject.")],
    comment: CommentOpt = None,
) -> None:
    """Manager review: forward to the customer (or approve, lockbox off) or reject."""
    show_request(ctx, settings(ctx).backend.review_request(request_id, approve, comment))


@request_app.command("approve")
def request_approve(
    ctx: typer.Context,
    request_id: str,
    comment: CommentOpt = None,
    resource: Annotated[
        list[str] | None,
        typer.Option(help="Grant only this resource (repeat); each within what was asked."),
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Grant read access when read_write was asked.")
    ] = False,
    window: Annotated[
        str | None,
        typer.Option(help="A shorter access window than the policy's, e.g. 1h or 90m."),
    ] = None,
) -> None:
    """Customer approval (tenant approver or admin), granting less than asked if you say so."""
    grant: dict[str, Any] = {}
    if resource:
        grant["resources"] = list(resource)
    if read_only:
        grant["access_level"] = "read"
    if window is not None:
        grant["access_window_seconds"] = int(parse_duration(window, "window").total_seconds())
    show_request(
        ctx, settings(ctx).backend.decide_request(request_id, True, comment, grant or None)
    )


@request_app.command("extend")
def request_extend(
    ctx: typer.Context,
    request_id: str,
    by: Annotated[str, typer.Option(help="How much more time, e.g. 1h or 90m.")],
    reason: Annotated[str, typer.Option(help="Why (the customer's approvers read it).")],
) -> None:
    """Ask for more time on your granted access; the customer approves it."""
    seconds = int(parse_duration(by, "by").total_seconds())
    show_request(ctx, settings(ctx).backend.extend_request(request_id, seconds, reason))


@request_app.command("extension")
def request_extension(
    ctx: typer.Context,
    decision: Annotated[str, typer.Argument(help="approve or deny")],
    request_id: str,
    comment: CommentOpt = None,
) -> None:
    """Approve or deny the extension an engineer asked for (tenant approver or admin)."""
    if decision not in ("approve", "deny"):
        raise ValidationError("decision", "must be approve or deny")
    backend = settings(ctx).backend
    show_request(ctx, backend.decide_extension(request_id, decision == "approve", comment))


@request_app.command("deny")
def request_deny(ctx: typer.Context, request_id: str, comment: CommentOpt = None) -> None:
    """Customer denial (tenant approver or admin)."""
    show_request(ctx, settings(ctx).backend.decide_request(request_id, False, comment))


@request_app.command("cancel")
def request_cancel(ctx: typer.Context, request_id: str, comment: CommentOpt = None) -> None:
    """Withdraw your own pending request."""
    show_request(ctx, settings(ctx).backend.end_request(request_id, "cancel", comment))


@request_app.command("close")
def request_close(ctx: typer.Context, request_id: str, comment: CommentOpt = None) -> None:
    """End granted access because the work is done (requester or manager)."""
    show_request(ctx, settings(ctx).backend.end_request(request_id, "close", comment))


@request_app.command("revoke")
def request_revoke(ctx: typer.Context, request_id: str, comment: CommentOpt = None) -> None:
    """End granted access early (tenant approver or admin)."""
    show_request(ctx, settings(ctx).backend.end_request(request_id, "revoke", comment))


@request_app.command("show")
def request_show(ctx: typer.Context, request_id: str) -> None:
    """One request with its history."""
    show_request(ctx, settings(ctx).backend.get_request(request_id))


@request_app.command("list")
def request_list(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option()] = None,
    state: Annotated[
        list[str] | None, typer.Option("--state", help="Filter by state (repeat).")
    ] = None,
    requester: Annotated[str | None, typer.Option(help="Requester e-mail or id.")] = None,
    case: Annotated[str | None, typer.Option(help="Support case id.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Created at or after (ISO time or duration ago).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Page size (1-200).")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue from a previous page.")] = None,
) -> None:
    """Requests you can see, newest first."""
    filters: dict[str, Any] = {
        "tenant": tenant,
        "states": state or [],
        "requester": requester,
        "case_id": case,
    }
    if since:
        filters["created_after"] = parse_when(since, "since", past=True)
    page = settings(ctx).backend.list_requests(filters, limit, cursor)
    if settings(ctx).json:
        output.emit_json(page)
        return
    output.table(
        "Requests",
        ["id", "state", "tenant", "requester", "level", "resources", "deadline", "created"],
        (
            [
                r["id"],
                r["state"],
                r["tenant_id"],
                r["requester_id"],
                r["access_level"],
                "\n".join(r["resources"]),
                r["deadline"],
                r["created_at"],
            ]
            for r in page["items"]
        ),
    )
    if page.get("next_cursor"):
        output.err.print(f"more: --cursor {page['next_cursor']}")


# -- audit and upkeep ---------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="Tenant (slug or id), or provider.")] = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="A signed checkpoint you hold (repeatable): the chain must still contain it.",
        ),
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option(help="Verify this export (JSON Lines) offline instead of the database."),
    ] = None,
    keys_file: Annotated[
        Path | None, typer.Option("--keys", help="With --export: the saved audit keys.")
    ] = None,
) -> None:
    """Verify audit hash chains; exit 1 if any is broken (docs/audit.md)."""
    if checkpoint or export is not None:
        reports = trust.verify_reports(ctx, tenant, checkpoint or [], export, keys_file)
    else:
        reports = settings(ctx).backend.audit_verify(tenant)
    if settings(ctx).json:
        output.emit_json(reports)
    else:
        for r in reports:
            if r["ok"]:
                output.out.print(
                    f"OK    {r['tenant_id']}  {r['records']} records, head {r['head_seq']}:{r['head_hash']}"
                )
            else:
                output.out.print(
                    f"BROKEN {r['tenant_id']}  at record {r['broken_seq']} ({r['broken_id']}): {r['problem']}"
                )
        if not reports:
            output.out.print("no tenants to verify")
    if any(not r["ok"] for r in reports):
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option()],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    output_file: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to a file.")
    ] = None,
    signed: Annotated[
        bool,
        typer.Option(
            "--signed", help="JSON Lines ending with the log's head, signed now (docs/audit.md)."
        ),
    ] = False,
) -> None:
    """Stream a tenant's whole audit log."""
    if signed and fmt != "jsonl":
        raise ValidationError("format", "--signed exports are JSON Lines")
    chunks = (
        trust.signed_export(ctx, tenant)
        if signed
        else settings(ctx).backend.audit_export(tenant, fmt)
    )
    if output_file is None:
        for chunk in chunks:
            sys.stdout.write(chunk)
        return
    with output_file.open("w", encoding="utf-8", newline="") as handle:
        for chunk in chunks:
            handle.write(chunk)


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option()],
    request: Annotated[str | None, typer.Option(help="Only this request's records.")] = None,
    operation: Annotated[
        str | None, typer.Option(help="Operation prefix, e.g. request. or access.")
    ] = None,
    limit: Annotated[int, typer.Option()] = 100,
    after: Annotated[int, typer.Option(help="Continue after this sequence number.")] = 0,
) -> None:
    """A page of a tenant's audit log, oldest first."""
    filters = {"request_id": request, "operation": operation}
    page = settings(ctx).backend.audit_list(tenant, filters, limit, after)
    if settings(ctx).json:
        output.emit_json(page)
        return
    known = page.get("people") or {}
    output.table(
        "Audit records",
        ["seq", "at (UTC)", "operation", "by", "request", "hash"],
        (
            [
                a["seq"],
                a["at"][:19].replace("T", " "),
                a["operation"],
                output.person(known, a["actor_id"]),
                a["request_id"],
                a["hash"][:12],
            ]
            for a in page["items"]
        ),
    )
    if page.get("next_cursor"):
        output.err.print(f"more: --after {page['next_cursor']}")


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="TCP port (0: any free port, printed at start).", min=0, max=65535)
    ] = 8000,
    no_migrate: Annotated[
        bool, typer.Option("--no-migrate", help="Do not apply migrations at start.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    workers: Annotated[
        int,
        typer.Option(
            help="Server processes sharing the port (1: one process, as always). Their "
            "metrics are added up.",
            min=1,
            max=64,
        ),
    ] = 1,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Also serve /metrics, without a token, on 127.0.0.1 at this port.",
            min=1,
            max=65535,
            show_default=False,
        ),
    ] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            envvar="LOCKBOX_FORWARDED_ALLOW_IPS",
            help="Reverse proxies (IP addresses or networks, comma-separated) whose "
            "X-Forwarded-For / X-Forwarded-Proto are believed. Default: none.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the HTTP API server (database from LOCKBOX_DATABASE_URL or --database-url).

    See docs/deploy.md: TLS proxies, several processes, metrics, backups.
    """
    from pydantic import ValidationError as SettingsError

    from lockbox.api.server import serve as run_server
    from lockbox.config import Settings as ServerSettings
    from lockbox.config import normalise_proxy_addresses
    from lockbox.store.db import ENV_URL

    if metrics_port is not None and metrics_port == port:
        raise ValidationError("metrics_port", "must differ from --port")
    try:
        proxies = normalise_proxy_addresses(forwarded_allow_ips) if forwarded_allow_ips else None
        ServerSettings()  # a bad LOCKBOX_* value stops here, in one line, before binding
    except SettingsError as exc:
        problems = [
            f"LOCKBOX_{'_'.join(map(str, e['loc'])).upper()}: "
            + str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors()
        ]
        raise ValidationError("settings", "; ".join(problems)) from None
    except ValueError as exc:
        raise ValidationError("forwarded_allow_ips", str(exc)) from None
    database_url = settings(ctx).database_url
    if database_url:
        os.environ[ENV_URL] = database_url  # the worker processes read it from there
    run_server(
        host,
        port,
        migrate=not no_migrate,
        log_level=log_level,
        workers=workers,
        metrics_port=metrics_port,
        forwarded_allow_ips=proxies,
    )


def _register_seed_demo() -> None:
    from lockbox.cli.seed import seed_demo_command

    app.command("seed-demo")(seed_demo_command)


_register_seed_demo()


@app.command("sweep")
def sweep(ctx: typer.Context) -> None:
    """Record every passed deadline now (the worker does this continuously)."""
    show(ctx, settings(ctx).backend.sweep())


from lockbox.cli import delegations as _delegations_cli  # noqa: E402
from lockbox.cli import integrations as _integrations_cli  # noqa: E402
from lockbox.cli import outbox as _outbox_cli  # noqa: E402 - after the root app exists
from lockbox.cli import rules as _rules_cli  # noqa: E402
from lockbox.cli import webhooks as _webhooks_cli  # noqa: E402
from lockbox.cli import worker as _worker_cli  # noqa: E402

app.add_typer(_outbox_cli.app, name="outbox")
app.add_typer(_webhooks_cli.app, name="webhook")
app.add_typer(_rules_cli.rule_app, name="rule")
app.add_typer(_rules_cli.change_app, name="change")
app.add_typer(_integrations_cli.app, name="integration")
app.add_typer(_delegations_cli.app, name="delegation")
app.command("worker")(_worker_cli.worker)


@app.command("demo")
def demo(
    keep: Annotated[
        Path | None,
        typer.Option(help="Keep the demo database at this path instead of a temp file."),
    ] = None,
) -> None:
    """Play the reference scenario for tenant Contoso with a simulated clock."""
    from lockbox.demo import run_demo

    raise typer.Exit(run_demo(keep))


def main() -> None:
    """Console-script entry point: one-line errors and meaningful exit codes.

    Standalone mode lets Typer report usage errors itself (exit 2, no
    traceback) and turn ``typer.Exit`` into the process exit code; domain
    refusals pass through it and become one line on stderr here.
    """
    from sqlalchemy.exc import DBAPIError

    try:
        app()
    except LockboxError as exc:
        output.err.print(f"error: {exc.message}", markup=False)
        sys.exit(output.exit_code(exc))
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        hint = (
            " (run `lockbox db upgrade` first?)"
            if "no such table" in reason or "does not exist" in reason
            else ""
        )
        output.err.print(f"error: database error: {reason}{hint}", markup=False)
        sys.exit(1)


if __name__ == "__main__":
    os.environ.setdefault("COLUMNS", "160")
    main()
