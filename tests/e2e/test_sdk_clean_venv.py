"""The SDK on its own: built from ``./sdk`` into a clean virtual environment that holds
nothing of the server, it runs the example mail store against a live Lockbox.

This is the proof the other SDK tests cannot give from the development venv
(where the server is installed too): that ``lockbox-sdk`` declares every
dependency it needs, imports nothing of ``lockbox``, and that the example needs
only the SDK, FastAPI, pydantic and uvicorn.

To stay fast, the venv is made without pip (``--without-pip`` takes a fraction of
a second, ensurepip ~10 s) and this venv's pip installs into it with
``--python``. Building the wheel fetches setuptools (build isolation) and the
install fetches the dependencies, from the package index pip is configured with.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lockbox.service import requests
from tests.e2e.conftest import Env, free_port, stop, wait_until_up
from tests.e2e.test_mailstore import ALICE_PATH, approve, reads, reason, submit, token_for

REPO = Path(__file__).resolve().parents[2]
PIP_TIMEOUT = 300  # seconds: a safety net for a slow index, not the expected time

pytestmark = pytest.mark.slow


def clean_environ() -> dict[str, str]:
    """The environment minus anything that could put the checkout or a user site on the path."""
    environ = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    environ["PYTHONNOUSERSITE"] = "1"
    return environ


def run(*args: str | Path, timeout: float = PIP_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=clean_environ(),
        check=False,
    )


def must(*args: str | Path) -> str:
    done = run(*args)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def sdk_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the SDK wheel (with its ``fastapi`` extra) and uvicorn only."""
    base = tmp_path_factory.mktemp("sdk-venv")
    # Build from a copy, so the build's own files (build/, *.egg-info) never land in the
    # checkout and a concurrent editable install of ./sdk cannot race with it.
    source = base / "sdk"
    shutil.copytree(
        REPO / "sdk",
        source,
        ignore=shutil.ignore_patterns(
            "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "tests", "vectors"
        ),
    )
    wheels = base / "wheels"
    must(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", source, "-w", wheels)
    (wheel,) = wheels.glob("lockbox_sdk-*.whl")
    venv = base / "venv"
    must(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    pip = (sys.executable, "-m", "pip", "--python", python)
    must(*pip, "install", "--quiet", f"{wheel}[fastapi]", "uvicorn")
    return python


def assert_installed_alone(sdk_python: Path) -> None:
    """Run from the checkout, as the example is: the repository root is on sys.path there,
    yet the server (under src/) must not be importable, nor any of its dependencies."""
    for module in ("lockbox", "lockbox.sdk", "sqlalchemy", "alembic", "psycopg", "argon2"):
        done = run(sdk_python, "-c", f"import {module}")
        assert done.returncode != 0, f"{module} is importable in the SDK's venv"
        assert "ModuleNotFoundError" in done.stderr, done.stderr
    where = must(
        sdk_python,
        "-c",
        "import lockbox_sdk, lockbox_sdk.guard, lockbox_sdk.feed; print(lockbox_sdk.__file__)",
    )
    assert Path(where.strip()).is_relative_to(sdk_python.parents[1]), where


@pytest.fixture
def clean_mailstore(env: Env, sdk_python: Path) -> Iterator[str]:
    """``python -m examples.mailstore`` with the clean venv's python, in feed mode."""
    port = free_port()
    environ = clean_environ() | {
        "LOCKBOX_URL": env.url,
        "MAILSTORE_LOCKBOX_TOKEN": env.service_token,
        "LOCKBOX_TEST_CLOCK_FILE": str(env.clock_file),
    }
    args = ["-m", "examples.mailstore", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(
        [str(sdk_python), *args],
        cwd=REPO,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/healthz", proc)
        yield url
    finally:
        stop(proc)
        errors = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        assert "Traceback" not in errors, errors


def until(get: httpx.Client, path: str, want: int, limit: float = 20.0) -> httpx.Response:
    """Poll until the answer has status ``want`` (the feed's snapshot or an end arriving)."""
    deadline = time.monotonic() + limit
    while True:
        response = get.get(path)
        if response.status_code == want or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def test_the_example_runs_on_the_sdk_alone(
    env: Env, sdk_python: Path, clean_mailstore: str
) -> None:
    # One test, not two: under xdist two tests of this module could land on two workers,
    # and each would build its own venv.
    assert_installed_alone(sdk_python)
    req = approve(env, submit(env))
    token = token_for(env, req.id)
    with httpx.Client(
        base_url=clean_mailstore, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as store:
        allowed = until(store, ALICE_PATH, 200)  # 503 until the feed's snapshot arrived
        assert allowed.status_code == 200, allowed.text
        assert [m["id"] for m in allowed.json()["messages"]] == ["m1", "m2"]

        requests.close_request(env.lockbox, env.engineer, req.id)
        refused = until(store, ALICE_PATH, 403)
        assert (refused.status_code, reason(refused)) == (403, "closed"), refused.text
    # The SDK's reporter sent the successful reads to Lockbox's audit log (in the
    # background, batched: poll for them). Reads that raced the close's feed event
    # succeeded too, so there may be more than one.
    deadline = time.monotonic() + 10
    while not reads(env, "contoso", req.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reads(env, "contoso", req.id), "the reads were not reported"
