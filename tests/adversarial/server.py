"""A real ``lockbox serve`` subprocess for the race / crash / secrets tests.

The server listens on a free 127.0.0.1 port (``--port 0``; the port is read
from uvicorn's start-up line), shares the test's database (SQLite file or a
PostgreSQL schema) and moves its clock by ``LOCKBOX_TEST_CLOCK_FILE``. Every
line it writes to stdout and stderr is kept, so tests can search the logs.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

LOCKBOX = str(Path(sys.executable).with_name("lockbox"))
MAILBOX = "exchange/mailbox/alice@contoso.com"
_LISTENING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@dataclass
class Server:
    """One running server process and everything it printed."""

    db_url: str
    clock_file: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    lines: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "LOCKBOX_DATABASE_URL": self.db_url,
            "LOCKBOX_TEST_CLOCK_FILE": str(self.clock_file),
            "NO_COLOR": "1",
            "COLUMNS": "200",
            **self.extra_env,
        }
        env.pop("LOCKBOX_SERVER", None)
        env.pop("LOCKBOX_TOKEN", None)
        return env

    def start(self, timeout: float = 30) -> None:
        proc = subprocess.Popen(
            [LOCKBOX, "serve", "--host", "127.0.0.1", "--port", "0", "--no-migrate"],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.proc = proc
        up = threading.Event()
        found: list[str] = []

        def drain(stream: Any) -> None:
            for line in stream:
                self.lines.append(line)
                match = _LISTENING.search(line)
                if match:
                    found.append(match.group(1))
                    up.set()
            up.set()  # the stream closed: the process exited

        self._threads = [
            threading.Thread(target=drain, args=(s,), daemon=True)
            for s in (proc.stdout, proc.stderr)
        ]
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + timeout
        while not found and time.monotonic() < deadline and proc.poll() is None:
            up.wait(0.1)
        if not found:
            self.stop()
            raise RuntimeError("server did not start:\n" + self.log())
        self.url = found[0]

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, transactions in flight are cut off."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=15)
        self._join()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._join()

    def _join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=5)

    def log(self) -> str:
        return "".join(self.lines)

    def shift(self, seconds: float) -> None:
        self.clock_file.write_text(str(seconds))

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )


@contextmanager
def running(
    db_url: str, tmp_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    clock_file = tmp_path / "clock-offset"
    clock_file.write_text("0")
    server = Server(db_url, clock_file, extra_env or {})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def race(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Fire every call at once (one thread each, lined up on a barrier)."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, c) for c in calls]
        return [f.result(timeout=120) for f in futures]


def new_request(engineer: httpx.Client, manager: httpx.Client, *, review: bool = True) -> str:
    """A contoso request submitted over HTTP (and forwarded by the manager)."""
    case = engineer.post("/v1/cases", json={"tenant": "contoso", "title": "mailbox"})
    assert case.status_code == 201, case.text
    body = {
        "tenant": "contoso",
        "case_id": case.json()["id"],
        "resources": [MAILBOX],
        "justification": "race test",
    }
    created = engineer.post("/v1/requests", json=body)
    assert created.status_code == 201, created.text
    rid = str(created.json()["id"])
    if review:
        r = manager.post(f"/v1/requests/{rid}/review", json={"decision": "approve"})
        assert r.status_code == 200, r.text
    return rid


def chain_ok(auditor: httpx.Client, tenant: str = "contoso") -> dict[str, Any]:
    r = auditor.get(f"/v1/tenants/{tenant}/audit/verify")
    assert r.status_code == 200, r.text
    report: dict[str, Any] = r.json()
    return report


def audit_ops(auditor: httpx.Client, request_id: str, tenant: str = "contoso") -> list[str]:
    r = auditor.get(f"/v1/tenants/{tenant}/audit", params={"request_id": request_id, "limit": 1000})
    assert r.status_code == 200, r.text
    return [item["operation"] for item in r.json()["items"]]
