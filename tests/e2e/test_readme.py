"""The README's command-line walk-through runs as written, against a stack started as
``make run`` starts it, so the README cannot drift from what the server does.

Only the ports change (the test picks free ones); the rest of the block is taken
from README.md verbatim and run by bash, in a directory laid out like a checkout
after ``make run`` (``var/demo-tokens.env``, ``.venv``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port, stop, wait_until_up

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def readme_block(heading: str) -> str:
    text = (REPO / "README.md").read_text()
    section = text.split(f"## {heading}", 1)[1]
    found = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    if found is None:
        raise AssertionError(f"no sh block under '## {heading}'")
    return found.group(1)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Path, int, int]]:
    """``lockbox db upgrade``, ``lockbox seed-demo``, the server and the mail store."""
    home = tmp_path / "checkout"
    (home / "var").mkdir(parents=True)
    (home / ".venv").symlink_to(BIN.parent)
    shutil.copytree(REPO / "examples", home / "examples")
    api_port, store_port = free_port(), free_port()
    env = {
        **os.environ,
        "LOCKBOX_DATABASE_URL": f"sqlite:///{home / 'var' / 'lockbox.db'}",
        "LOCKBOX_PORT": str(api_port),
        "LOCKBOX_PROVIDER_NAME": "Acme Cloud",
        "LOCKBOX_FEED_HEARTBEAT_SECONDS": "1",
    }
    env.pop("LOCKBOX_SERVER", None)
    env.pop("LOCKBOX_TOKEN", None)
    lockbox = str(BIN / "lockbox")
    subprocess.run([lockbox, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run(
        [lockbox, "seed-demo", "--tokens-file", str(home / "var" / "demo-tokens.env")],
        env=env,
        check=True,
        capture_output=True,
    )
    tokens = dict(
        line.split("=", 1)
        for line in (home / "var" / "demo-tokens.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    server = subprocess.Popen(
        [lockbox, "serve", "--host", "127.0.0.1", "--port", str(api_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    store = None
    try:
        wait_until_up(f"http://127.0.0.1:{api_port}/healthz", server)
        store = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "examples.mailstore",
                "--host",
                "127.0.0.1",
                "--port",
                str(store_port),
            ],
            env={
                **env,
                "LOCKBOX_URL": f"http://127.0.0.1:{api_port}",
                "MAILSTORE_LOCKBOX_TOKEN": tokens["LOCKBOX_TOKEN_RESOURCE_SERVICE"],
            },
            cwd=home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_until_up(f"http://127.0.0.1:{store_port}/healthz", store)
        yield home, api_port, store_port
    finally:
        if store is not None:
            stop(store)
        stop(server)


def test_the_readme_walkthrough_runs_as_written(stack: tuple[Path, int, int]) -> None:
    home, api_port, store_port = stack
    script = readme_block("Try it from the command line")
    script = script.replace("127.0.0.1:8000", f"127.0.0.1:{api_port}")
    script = script.replace("127.0.0.1:8100", f"127.0.0.1:{store_port}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKBOX_")}
    env["COLUMNS"] = "200"
    run = subprocess.run(
        ["bash", "-c", script], cwd=home, env=env, capture_output=True, text=True, timeout=300
    )
    out = run.stdout
    assert "Quarterly numbers" in out, (out, run.stderr)  # step 6: the mailbox is read
    assert '"reason":"out_of_scope"' in out  # Bob's mailbox is not granted
    assert '"reason":"wrong_tenant"' in out  # nor is Fabrikam's
    assert "OK" in out  # the auditor's chain verifies
    assert "access tokens are issued only while access is granted" in run.stderr  # step 2
    # Step 7: the close reaches the mail store through the grant feed within a second.
    last = script.strip().splitlines()[-1].split("#")[0]
    deadline = time.monotonic() + 5
    while '"reason":"closed"' not in out and time.monotonic() < deadline:
        out = subprocess.run(
            ["bash", "-c", last], cwd=home, env=env, capture_output=True, text=True, timeout=30
        ).stdout
    assert '"reason":"closed"' in out, out
