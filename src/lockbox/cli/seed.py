"""``lockbox seed-demo``: the demo tenants, users and tokens that ``make run`` starts with."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from lockbox.cli import output
from lockbox.cli.backend import LocalBackend
from lockbox.domain.errors import ValidationError
from lockbox.service.seed import seed_demo


def seed_demo_command(
    ctx: typer.Context,
    tokens_file: Annotated[
        Path,
        typer.Option(
            "--tokens-file",
            help="Where to write the demo API tokens (LOCKBOX_TOKEN_<ROLE>=lbx_… lines).",
        ),
    ] = Path("var/demo-tokens.env"),
) -> None:
    """Create the demo tenants (contoso, fabrikam) and one user of every role, and issue
    fresh API tokens for them (idempotent; previous demo tokens are revoked)."""
    from lockbox.cli.main import settings

    backend = settings(ctx).backend
    if not isinstance(backend, LocalBackend):
        raise ValidationError("server", "seed-demo works on the local database only")
    result = seed_demo(backend.app)
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(tokens_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# Lockbox demo API tokens (re-issued by every `lockbox seed-demo`)\n")
        handle.write("\n".join(result.env_lines()) + "\n")
    if settings(ctx).json:
        output.emit_json(
            {
                "tenants_created": result.tenants_created,
                "tokens_file": str(tokens_file),
                "users": [
                    {
                        "email": s.user.email,
                        "role": s.user.role,
                        "tenant": s.user.tenant,
                        "password": s.user.password,
                        "token_variable": f"LOCKBOX_TOKEN_{s.user.key}",
                        "created": s.created,
                    }
                    for s in result.users
                ],
            }
        )
        return
    rows = [("role", "tenant", "e-mail", "password", "API token in")]
    rows += [
        (
            s.user.role,
            s.user.tenant or "-",
            s.user.email,
            s.user.password,
            f"$LOCKBOX_TOKEN_{s.user.key}",
        )
        for s in result.users
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    created = ", ".join(result.tenants_created) or "none (already there)"
    base = f"http://127.0.0.1:{os.environ.get('LOCKBOX_PORT', '8000')}"
    output.out.print(f"Demo tenants: contoso, fabrikam (created now: {created})", markup=False)
    output.out.print(
        f"Demo users: sign in to the admin center at {base}/ with an e-mail and password"
        " below, or use the API token of a role:"
    )
    output.out.print("\n".join(f"  {line.rstrip()}" for line in lines), markup=False)
    output.out.print(
        f"API tokens written to {tokens_file}. To use one:\n"
        f"  set -a; . {tokens_file}; set +a\n"
        f'  curl -H "Authorization: Bearer $LOCKBOX_TOKEN_ENGINEER" {base}/v1/me\n'
        f"  LOCKBOX_SERVER={base} LOCKBOX_TOKEN=$LOCKBOX_TOKEN_ENGINEER "
        "lockbox request list",
        markup=False,
    )
