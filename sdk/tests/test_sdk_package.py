"""The SDK stays a small distribution of its own: checked on its source.

* it imports nothing of the Lockbox server (``lockbox``), only the standard
  library and the dependencies its ``pyproject.toml`` declares, and FastAPI only
  in the guard (the ``fastapi`` extra);
* no behaviour hangs on ``assert`` (``python -O`` strips them);
* the lazy exports resolve, and the webhook verifier loads without HTTP or JWT
  libraries.

That it really installs and runs alone is proven in a clean virtual environment
by ``tests/e2e/test_sdk_clean_venv.py``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import lockbox_sdk

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "lockbox_sdk"
MODULES = sorted(PACKAGE.rglob("*.py"))
DECLARED = {"httpx", "jwt", "cryptography"}
EXTRA = {"fastapi", "starlette"}  # the guard's extra (starlette comes with FastAPI)


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_imports_only_the_standard_library_and_declared_dependencies(path: Path) -> None:
    allowed = DECLARED | {"lockbox_sdk"} | (EXTRA if path.name == "guard.py" else set())
    for name in imports(path):
        root = name.split(".")[0]
        assert root != "lockbox", f"{path.name} imports the server ({name})"
        assert root in sys.stdlib_module_names or root in allowed, f"{path.name} imports {name}"


def test_the_declared_dependencies_are_the_ones_used() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "lockbox-sdk"
    assert project["version"] == lockbox_sdk.__version__
    names = {d.split("[")[0].split(">")[0].strip().lower() for d in project["dependencies"]}
    assert names == {"httpx", "pyjwt", "cryptography"}
    assert [d.split(">")[0] for d in project["optional-dependencies"]["fastapi"]] == ["fastapi"]


def test_no_behaviour_depends_on_assert() -> None:
    offenders = [
        f"{path.name}:{node.lineno}"
        for path in MODULES
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert offenders == []


def test_the_package_is_typed() -> None:
    assert (PACKAGE / "py.typed").exists()


def test_lazy_exports_resolve() -> None:
    for name in lockbox_sdk.__all__:
        assert getattr(lockbox_sdk, name).__name__ == name
    with pytest.raises(AttributeError):
        _ = lockbox_sdk.NoSuchThing


def test_the_webhook_verifier_needs_no_http_or_jwt_library() -> None:
    probe = (
        "import sys, lockbox_sdk, lockbox_sdk.webhooks; "
        "print(sorted(m for m in ('httpx', 'jwt', 'fastapi') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
