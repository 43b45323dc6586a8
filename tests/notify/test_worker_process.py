"""The ``lockbox worker`` process: SIGTERM, --once, SIGKILL mid-batch, several workers at once.

Workers run as real subprocesses against a database file (and PostgreSQL
where it matters) and deliver to a real SMTP server on loopback. Their clock
is the system clock plus an offset read from a file, so "the lease ran out"
is a write to that file, not a sleep. Waiting for a subprocess is polling
with a bounded timeout.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lockbox.clock import ManualClock, OffsetFileClock
from lockbox.service.app import Lockbox
from lockbox.store.db import Database
from tests.conftest import _truncate_pg, make_world, pg_url
from tests.notify.helpers import SmtpServer, rows, submit

LEASE = 30


class Env:
    def __init__(self, tmp_path: Path, url: str, smtp: SmtpServer) -> None:
        self.tmp_path = tmp_path
        self.url = url
        self.smtp = smtp
        self.clock_file = tmp_path / "clock-offset"
        self.clock_file.write_text("0")
        self.db = Database(url)
        self.app = Lockbox(self.db, OffsetFileClock(self.clock_file))
        self.logs: list[Path] = []

    def advance(self, seconds: float) -> None:
        current = float(self.clock_file.read_text() or 0)
        self.clock_file.write_text(str(current + seconds))

    def worker(self, *args: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "LOCKBOX_DATABASE_URL": self.url,
            "LOCKBOX_SMTP_HOST": "127.0.0.1",
            "LOCKBOX_SMTP_PORT": str(self.smtp.port),
            "LOCKBOX_SMTP_SECURITY": "none",
            "LOCKBOX_MAIL_FROM": "Lockbox <lockbox@provider.test>",
            "LOCKBOX_TEST_CLOCK_FILE": str(self.clock_file),
            "LOCKBOX_OUTBOX_LEASE_SECONDS": str(LEASE),
            "LOCKBOX_WORKER_BATCH_SIZE": "8",
        }
        log = self.tmp_path / f"worker-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as handle:
            return subprocess.Popen(
                [sys.executable, "-m", "lockbox.cli.main", "worker", *args],
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )

    def populate(self, requests: int) -> int:
        world = make_world(self.app, ManualClock())
        for _ in range(requests):
            submit(self.app, world.engineer)  # two managers hear about each
        return len(rows(self.app, "pending"))


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)  # polling interval, not waiting for time to pass


def check_nothing_lost(env: Env, expected: int) -> Counter[str]:
    sent = rows(env.app, "sent")
    assert len(sent) == expected and not rows(env.app, "pending") and not rows(env.app, "failed")
    got = env.smtp.collector.snapshot()
    by_id = {f"<{r.id}@lockbox>": r for r in sent}
    counts = Counter(r.message_id for r in got)
    assert set(counts) == set(by_id)  # every row arrived; nothing arrived that is not a row
    for r in got:  # a duplicate is the same message: same id, same recipient
        assert r.rcpt == [by_id[r.message_id].recipient]
    return counts


@pytest.fixture
def sqlite_env(tmp_path: Path, sqlite_template: Path) -> Iterator[Env]:
    path = tmp_path / "worker.db"
    shutil.copy(sqlite_template, path)
    smtp = SmtpServer(delay=0.05).start()
    env = Env(tmp_path, f"sqlite:///{path}", smtp)
    yield env
    smtp.stop()
    env.db.dispose()


@pytest.fixture
def pg_env(tmp_path: Path, pg_schema: str) -> Iterator[Env]:
    url = pg_url(pg_schema)
    db = Database(url)
    _truncate_pg(db)
    db.dispose()
    smtp = SmtpServer(delay=0.02).start()
    env = Env(tmp_path, url.replace("+psycopg", ""), smtp)
    yield env
    smtp.stop()
    env.db.dispose()


def test_once_delivers_everything_and_exits_0(sqlite_env: Env) -> None:
    expected = sqlite_env.populate(3)
    proc = sqlite_env.worker("--once")
    assert proc.wait(timeout=60) == 0
    counts = check_nothing_lost(sqlite_env, expected)
    assert set(counts.values()) == {1}
    log = sqlite_env.logs[0].read_text()
    assert '"event": "worker.started"' in log and '"event": "outbox.sent"' in log


def test_sigterm_finishes_the_message_in_flight_releases_leases_and_exits_0(
    sqlite_env: Env,
) -> None:
    expected = sqlite_env.populate(10)
    proc = sqlite_env.worker("--interval", "3600")
    wait_for(lambda: len(sqlite_env.smtp.collector.snapshot()) >= 3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    log = sqlite_env.logs[0].read_text()
    assert '"event": "worker.stopped"' in log and "SIGTERM" in log
    pending = rows(sqlite_env.app, "pending")
    assert 0 < len(pending) < expected
    assert all(r.lease_owner is None and r.lease_until is None for r in pending)
    # No clock advance needed: the leases were given back, the next worker takes over.
    assert sqlite_env.worker("--once").wait(timeout=60) == 0
    check_nothing_lost(sqlite_env, expected)


@pytest.mark.slow
def test_sigkill_mid_batch_repeatedly_loses_nothing(sqlite_env: Env) -> None:
    env = sqlite_env
    expected = env.populate(15)
    kills = 0
    for _ in range(5):
        before = len(env.smtp.collector.snapshot())
        proc = env.worker("--interval", "3600")
        wait_for(
            lambda p=proc, n=before: (
                len(env.smtp.collector.snapshot()) >= n + 3  # type: ignore[misc]
                or p.poll() is not None
            )
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        kills += proc.returncode == -signal.SIGKILL
        env.advance(LEASE + 1)  # the dead worker's leases run out
    assert kills == 5
    assert rows(env.app, "pending")  # the kills really left work behind
    assert env.worker("--once").wait(timeout=120) == 0
    check_nothing_lost(env, expected)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_workers_at_once_never_send_twice(backend: str, request: pytest.FixtureRequest) -> None:
    env: Env = request.getfixturevalue(f"{'pg' if backend == 'postgresql' else 'sqlite'}_env")
    env.smtp.collector.delay = 0.01
    expected = env.populate(15)
    a = env.worker("--once", "--batch", "4")
    b = env.worker("--once", "--batch", "4")
    assert a.wait(timeout=120) == 0 and b.wait(timeout=120) == 0
    counts = check_nothing_lost(env, expected)
    assert set(counts.values()) == {1}  # no double send in the normal path
    logs = [log.read_text() for log in env.logs]
    assert all('"event": "outbox.sent"' in log for log in logs), "both workers took part"
