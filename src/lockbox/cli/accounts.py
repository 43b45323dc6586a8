"""Account commands: tenant e-mail domains, password resets, resource-service registration.

Registered on the root app's ``tenant`` and ``user`` groups by :mod:`lockbox.cli.main`,
plus the ``password`` group; they work against the local database or a server alike.
"""

from __future__ import annotations

import getpass
import sys
from typing import Annotated, Any

import typer

from lockbox.domain.errors import ValidationError

password_app = typer.Typer(help="Your own password for the admin center.", no_args_is_help=True)


def _root(ctx: typer.Context) -> Any:
    from lockbox.cli.main import settings

    return settings(ctx)


def _show(ctx: typer.Context, data: Any) -> None:
    from lockbox.cli.main import show

    show(ctx, data)


def _secret(prompt: str, from_stdin: bool) -> str:
    """A secret from standard input (scripts) or typed without echo (people)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(prompt)


def tenant_domains(
    ctx: typer.Context,
    tenant: str,
    domain: Annotated[
        list[str] | None, typer.Argument(help="Every e-mail domain of the tenant.")
    ] = None,
) -> None:
    """Set the tenant's e-mail domains (provider admin): its admins add users only there."""
    _show(ctx, _root(ctx).backend.set_domains(tenant, list(domain or [])))


def user_reset_password(ctx: typer.Context, user: str) -> None:
    """E-mail USER a one-time code (no link) to choose a new password themself."""
    _show(ctx, _root(ctx).backend.start_password_reset(user))


def user_service(
    ctx: typer.Context,
    user: str,
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", help="A tenant it serves (repeat).")
    ] = None,
    all_tenants: Annotated[
        bool, typer.Option("--all-tenants", help="It serves every tenant.")
    ] = False,
    prefix: Annotated[
        list[str] | None,
        typer.Option(
            "--prefix", help="A resource prefix it owns, e.g. exchange/ (repeat); *: all."
        ),
    ] = None,
    audience: Annotated[
        str | None, typer.Option(help="The audience (aud) of access tokens for it.")
    ] = None,
    show_only: Annotated[bool, typer.Option("--show", help="Only show the registration.")] = False,
) -> None:
    """Register what a resource service serves (provider admin); it serves nothing until then."""
    backend = _root(ctx).backend
    if show_only:
        _show(ctx, backend.get_service(user))
        return
    if all_tenants and tenant:
        raise ValidationError("tenant", "give --tenant or --all-tenants, not both")
    if not all_tenants and not tenant:
        raise ValidationError("tenant", "give at least one --tenant, or --all-tenants")
    if not prefix:
        raise ValidationError("prefix", "give at least one --prefix (or --prefix '*')")
    tenants: list[str] | str = "*" if all_tenants else list(tenant or [])
    _show(ctx, backend.set_service(user, tenants, list(prefix), audience))


@password_app.command("reset")
def password_reset(
    ctx: typer.Context,
    email: Annotated[str, typer.Option(help="Your e-mail address.")],
    code: Annotated[str, typer.Option(help="The one-time code from the e-mail.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from standard input.")
    ] = False,
) -> None:
    """Choose a new password with the one-time code an administrator had e-mailed to you."""
    new = _secret("New password: ", password_stdin)
    root = _root(ctx)
    backend = root.anonymous_backend() if root.server else root.backend
    backend.complete_password_reset(email, code, new)
    _show(ctx, {"status": "password changed"})


@password_app.command("change")
def password_change(
    ctx: typer.Context,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the current and the new password, one per line."
        ),
    ] = False,
) -> None:
    """Change your own password (you prove the current one)."""
    current = _secret("Current password: ", password_stdin)
    new = _secret("New password: ", password_stdin)
    _root(ctx).backend.change_password(current, new)
    _show(ctx, {"status": "password changed"})


def register(tenant_app: typer.Typer, user_app: typer.Typer) -> None:
    tenant_app.command("domains")(tenant_domains)
    user_app.command("reset-password")(user_reset_password)
    user_app.command("service")(user_service)
