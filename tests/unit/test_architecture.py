"""Architecture rules the code must keep, checked on its source.

* the domain core imports no framework and does no I/O;
* no behaviour hangs on ``assert`` (``python -O`` strips them);
* one helper spells instants (``lockbox.domain.instants.format_instant``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "lockbox"
FRAMEWORKS = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "httpx",
    "typer",
    "jinja2",
    "alembic",
    "uvicorn",
)


def _modules(under: Path) -> list[Path]:
    return sorted(p for p in under.rglob("*.py") if "migrations" not in p.parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", _modules(SRC / "domain"), ids=lambda p: p.name)
def test_the_domain_imports_no_framework_and_no_outer_layer(path: Path) -> None:
    for name in _imports(path):
        root = name.split(".")[0]
        assert root not in FRAMEWORKS, f"{path.name} imports {name}"
        assert not name.startswith(
            ("lockbox.store", "lockbox.service", "lockbox.api", "lockbox.web", "lockbox.cli")
        ), f"{path.name} imports the outer layer {name}"


def test_no_behaviour_depends_on_assert() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path in _modules(SRC)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assert)
    ]
    assert offenders == [], "use an explicit check (errors.require / errors.present): " + ", ".join(
        offenders
    )


def test_one_helper_spells_instants() -> None:
    """Server code formats times through ``format_instant`` (the SDK ships on its own)."""
    offenders = [
        str(path.relative_to(SRC))
        for path in _modules(SRC)
        if "sdk" not in path.parts and 'isoformat().replace("+00:00", "Z")' in path.read_text()
    ]
    assert offenders == []


def test_the_notify_and_web_adapters_do_not_reach_into_the_store() -> None:
    """Adapters go through the service layer (the worker's dispatcher included); only the
    composition root may build the :class:`~lockbox.store.db.Database` itself."""
    for package in ("notify", "api", "web"):
        for path in _modules(SRC / package):
            for name in _imports(path):
                assert not name.startswith("lockbox.store") or name == "lockbox.store.db", (
                    f"{path.relative_to(SRC)} imports {name}"
                )
