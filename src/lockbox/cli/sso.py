"""``lockbox sso show|set``: single sign-on and sign-in rules, for staff or one tenant.

Works against the local database (as the operator or ``--as``) or a server (its
``/v1/sso`` and ``/v1/tenants/{tenant}/sso``). The client secret is read from standard
input or a prompt (never from the command line, where it would land in shell history)
and is only ever shown as "set" / "not set".
"""

from __future__ import annotations

import getpass
import sys
from typing import Annotated, Any
from urllib.parse import quote

import typer

from lockbox.domain.errors import ValidationError

sso_app = typer.Typer(
    help="Single sign-on (OpenID Connect) and sign-in rules, for staff or a tenant.",
    no_args_is_help=True,
)

TenantOpt = Annotated[str | None, typer.Option("--tenant", help="The tenant (slug or id).")]
ProviderOpt = Annotated[bool, typer.Option("--provider", help="Provider staff's settings.")]


def _scope(tenant: str | None, provider: bool) -> str | None:
    if bool(tenant) == provider:
        raise ValidationError("scope", "give exactly one of --tenant T and --provider")
    return tenant


def _call(ctx: typer.Context, tenant: str | None, changes: dict[str, Any] | None) -> Any:
    from lockbox.cli.backend import LocalBackend
    from lockbox.cli.main import settings
    from lockbox.service import sso

    backend = settings(ctx).backend
    if isinstance(backend, LocalBackend):
        if changes is None:
            return sso.view(sso.get_config(backend.app, backend.actor, tenant))
        return sso.view(sso.set_config(backend.app, backend.actor, tenant, changes))
    url = f"/v1/tenants/{quote(tenant, safe='')}/sso" if tenant else "/v1/sso"
    send = backend._send  # type: ignore[attr-defined]  # HttpBackend: the server's API
    return send("GET", url) if changes is None else send("PUT", url, json=changes)


def _show(ctx: typer.Context, data: Any) -> None:
    from lockbox.cli.main import show

    show(ctx, data)


@sso_app.command("show")
def sso_show(ctx: typer.Context, tenant: TenantOpt = None, provider: ProviderOpt = False) -> None:
    """Show the settings (the client secret only as set / not set)."""
    _show(ctx, _call(ctx, _scope(tenant, provider), None))


@sso_app.command("set")
def sso_set(
    ctx: typer.Context,
    tenant: TenantOpt = None,
    provider: ProviderOpt = False,
    issuer: Annotated[str | None, typer.Option(help="The provider's issuer URL.")] = None,
    client_id: Annotated[str | None, typer.Option(help="Lockbox's client id there.")] = None,
    client_secret_stdin: Annotated[
        bool,
        typer.Option("--client-secret-stdin", help="Read the client secret from standard input."),
    ] = False,
    ask_client_secret: Annotated[
        bool, typer.Option("--ask-client-secret", help="Prompt for the client secret.")
    ] = False,
    domain: Annotated[
        list[str] | None, typer.Option("--domain", help="An e-mail domain it signs in (repeat).")
    ] = None,
    groups_claim: Annotated[str | None, typer.Option(help="The claim listing groups.")] = None,
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help="GROUP=ROLE[,ROLE…]: a group's roles (repeat; replaces all)."),
    ] = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled")] = None,
    jit: Annotated[bool | None, typer.Option("--jit/--no-jit")] = None,
    require_sso: Annotated[bool | None, typer.Option("--require-sso/--allow-passwords")] = None,
    require_second_factor: Annotated[
        bool | None, typer.Option("--require-second-factor/--no-require-second-factor")
    ] = None,
) -> None:
    """Change some settings; options not given keep their value."""
    scope = _scope(tenant, provider)
    changes: dict[str, Any] = {}
    for key, value in (
        ("issuer", issuer),
        ("client_id", client_id),
        ("groups_claim", groups_claim),
        ("enabled", enabled),
        ("jit", jit),
        ("require_sso", require_sso),
        ("require_second_factor", require_second_factor),
    ):
        if value is not None:
            changes[key] = value
    if domain is not None:
        changes["email_domains"] = list(domain)
    if role is not None:
        mapping: dict[str, list[str]] = {}
        for item in role:
            group, sep, roles = item.rpartition("=")
            if not sep or not group:
                raise ValidationError("role", f"{item!r}: write it as GROUP=ROLE")
            mapping[group] = [r.strip() for r in roles.split(",") if r.strip()]
        changes["role_map"] = mapping
    if client_secret_stdin:
        changes["client_secret"] = sys.stdin.readline().rstrip("\n")
    elif ask_client_secret:
        changes["client_secret"] = getpass.getpass("Client secret: ")
    _show(ctx, _call(ctx, scope, changes))
