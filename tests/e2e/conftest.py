"""End-to-end fixtures: a real ``lockbox serve`` process on a SQLite file shared with the
test process, and the example mail store (in-process uvicorn threads, on loopback).

The server's clock is moved with ``LOCKBOX_TEST_CLOCK_FILE``; the test process and
the mail stores read the same file, so every party agrees on "now" without sleeping.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from examples.mailstore.app import Config, create_app
from fastapi import FastAPI

from lockbox.clock import OffsetFileClock
from lockbox.domain.roles import Principal
from lockbox.service import resource_services, tenants, tokens, users
from lockbox.service.app import Lockbox
from lockbox.store.db import Database, upgrade

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, proc: subprocess.Popen[bytes] | None = None, limit: float = 20) -> None:
    """Poll a health URL until it answers (readiness, not a wait for time to pass)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited early with {proc.returncode}")
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass
class Env:
    """Everything a scenario needs: the server, the shared database, people and tokens."""

    url: str
    db_url: str
    clock_file: Path
    lockbox: Lockbox
    contoso: str
    fabrikam: str
    engineer: Principal
    engineer_token: str
    manager: Principal
    contoso_approver: Principal
    fabrikam_approver: Principal
    contoso_auditor: Principal
    fabrikam_auditor: Principal
    admin: Principal
    service: Principal
    service_token: str

    def shift(self, seconds: float) -> None:
        """Move every clock (server, mail stores, this process) to system time + seconds."""
        self.clock_file.write_text(str(seconds))

    def api(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.engineer_token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("e2e")
    db_url = f"sqlite:///{base / 'lockbox.db'}"
    clock_file = base / "clock-offset"
    clock_file.write_text("0")
    db = Database(db_url)
    upgrade(db)
    lb = Lockbox(db, OffsetFileClock(clock_file))
    op = Principal.operator()
    contoso = tenants.create_tenant(lb, op, slug="contoso", name="Contoso Ltd").id
    fabrikam = tenants.create_tenant(lb, op, slug="fabrikam", name="Fabrikam Inc").id

    def mk(email: str, role: str, tenant: str | None = None) -> Principal:
        return users.create_user(lb, op, email=email, roles=[role], tenant=tenant).principal()

    engineer = mk("erin@provider.test", "engineer")
    service = mk("mailstore@provider.test", "resource_service")
    # The mail store serves both tenants' mailboxes (and nothing else), under the default
    # audience of access tokens.
    resource_services.register(
        lb,
        op,
        service.id,
        tenants=["contoso", "fabrikam"],
        prefixes=["exchange/"],
        audience="lockbox-resource",
    )
    # A second service (a file store) with its own audience: its tokens must not open mail.
    filestore = mk("filestore@provider.test", "resource_service")
    resource_services.register(
        lb, op, filestore.id, tenants="*", prefixes=["*"], audience="filestore"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environ = {
        **os.environ,
        "LOCKBOX_DATABASE_URL": db_url,
        "LOCKBOX_TEST_CLOCK_FILE": str(clock_file),
        "LOCKBOX_FEED_HEARTBEAT_SECONDS": "0.5",
    }
    proc = subprocess.Popen(
        [str(VENV_BIN / "lockbox"), "serve", "--port", str(port), "--log-level", "warning"],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_up(f"{url}/healthz", proc)
        yield Env(
            url=url,
            db_url=db_url,
            clock_file=clock_file,
            lockbox=lb,
            contoso=contoso,
            fabrikam=fabrikam,
            engineer=engineer,
            engineer_token=tokens.create_token(lb, op, user=engineer.id, name="e2e").secret,
            manager=mk("mark@provider.test", "manager"),
            contoso_approver=mk("paula@contoso.test", "approver", "contoso"),
            fabrikam_approver=mk("fred@fabrikam.test", "approver", "fabrikam"),
            contoso_auditor=mk("audrey@contoso.test", "auditor", "contoso"),
            fabrikam_auditor=mk("finn@fabrikam.test", "auditor", "fabrikam"),
            admin=mk("pat@provider.test", "provider_admin"),
            service=service,
            service_token=tokens.create_token(lb, op, user=service.id, name="mailstore").secret,
        )
    finally:
        stop(proc)
        db.dispose()


@pytest.fixture(autouse=True)
def _reset_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "env" in request.fixturenames:
        request.getfixturevalue("env").shift(0)


class MailStore:
    """The example app served by uvicorn in a thread of this process."""

    def __init__(self, app: FastAPI, port: int) -> None:
        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> MailStore:
        self.thread.start()
        wait_until_up(f"{self.url}/healthz")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)

    def flush(self) -> None:
        assert self.app.state.reporter.flush(timeout=10), "reports were not delivered"

    def get(self, path: str, token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=10)

    def post(self, path: str, token: str | None, body: dict[str, str]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(f"{self.url}{path}", headers=headers, json=body, timeout=10)


def _mailstore(env: Env, mode: str) -> Iterator[MailStore]:
    config = Config(
        lockbox_url=env.url,
        service_token=env.service_token,
        mode=mode,
        jwks_refresh=0.0,
        clock=OffsetFileClock(env.clock_file).now,
    )
    store = MailStore(create_app(config), free_port()).start()
    feed = store.app.state.feed
    if feed is not None:
        assert feed.wait_ready(20), "the mail store's grant feed did not catch up"
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture(scope="module")
def online_store(env: Env) -> Iterator[MailStore]:
    yield from _mailstore(env, "online")


@pytest.fixture(scope="module")
def token_store(env: Env) -> Iterator[MailStore]:
    yield from _mailstore(env, "token")


@pytest.fixture(scope="module")
def feed_store(env: Env) -> Iterator[MailStore]:
    yield from _mailstore(env, "feed")
