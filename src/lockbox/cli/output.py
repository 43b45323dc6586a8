"""How the CLI shows things: readable tables for people, ``--json`` for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from lockbox.domain import errors

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

#: Exit codes by error family, documented in the README.
EXIT_CODES: dict[type[errors.LockboxError], int] = {
    errors.ValidationError: 2,
    errors.NotFound: 3,
    errors.PermissionDenied: 4,
    errors.AuthenticationFailed: 4,
    errors.InvalidTransition: 5,
    errors.Conflict: 5,
    errors.AlreadyExists: 5,
}


def exit_code(exc: errors.LockboxError) -> int:
    for kind in type(exc).__mro__:
        if kind in EXIT_CODES:
            return EXIT_CODES[kind]
    return 1


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    t = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        t.add_column(column, overflow="fold")
    count = 0
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
        count += 1
    if count == 0:
        out.print(f"(no {title.lower() if title else 'rows'})")
        return
    out.print(t)


def fields(data: dict[str, Any], keys: Sequence[str] | None = None) -> None:
    """Key/value block for one object."""
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    for key in keys or list(data):
        value = data.get(key)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) if value else "-"
        elif isinstance(value, dict):
            value = json.dumps(value, sort_keys=True)
        t.add_row(key, "-" if value is None else str(value))
    out.print(t)


def person(known: dict[str, Any], actor_id: str) -> str:
    """``Paula <paula@contoso.example>`` for an id the answer named; the id otherwise."""
    found = known.get(actor_id)
    if not isinstance(found, dict):
        return actor_id
    name, email = found.get("name") or actor_id, found.get("email")
    return f"{name} <{email}>" if email else str(name)
