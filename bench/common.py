"""What every benchmark shares: the run context, timers, PostgreSQL schemas, server processes.

The machine is shared and has two cores, so a figure is only worth its
baseline measured in the same run; the helpers here interleave the two
(A, B, A, B …) and take medians, so a burst of someone else's load hits both
sides instead of deciding the ratio.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import create_engine, text

from bench.report import Row

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_ENV = "LOCKBOX_BENCH_POSTGRES_URL"
REPO = Path(__file__).resolve().parent.parent
_N = TypeVar("_N", int, float)


def progress(message: str) -> None:
    """Progress goes to stderr, so stdout carries only the results table."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


@dataclass
class Context:
    """One run: its options, where temporary files go, and which databases are reachable."""

    quick: bool
    seed: int
    tmp: Path
    pg_base: str | None  # None: PostgreSQL unreachable (its rows are skipped, not failed)
    pg_skip_reason: str = ""
    cache: dict[str, Any] = field(default_factory=dict)

    def size(self, full: _N, quick: _N) -> _N:
        """The full-run value, or the ``--quick`` one."""
        return quick if self.quick else full

    def sqlite_url(self, name: str) -> str:
        return f"sqlite:///{self.tmp / name}"

    def on_cleanup(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` when the whole run ends (shared datasets outlive one benchmark)."""
        self.cache.setdefault("cleanups", []).append(fn)


def make_context(quick: bool, seed: int) -> Context:
    tmp = Path(tempfile.mkdtemp(prefix="lockbox-bench-"))
    base = os.environ.get(PG_ENV, DEFAULT_PG)
    reason = ""
    try:
        engine = create_engine(base)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any driver error: no PostgreSQL here
        reason = f"PostgreSQL unreachable at {base}: {type(exc).__name__}"
        base = ""
    return Context(quick=quick, seed=seed, tmp=tmp, pg_base=base or None, pg_skip_reason=reason)


def cleanup_context(ctx: Context) -> None:
    shutil.rmtree(ctx.tmp, ignore_errors=True)


def postgres_version(ctx: Context) -> str | None:
    if ctx.pg_base is None:
        return None
    engine = create_engine(ctx.pg_base)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar())
    finally:
        engine.dispose()


_schemas = 0


@contextlib.contextmanager
def pg_schema(ctx: Context, label: str) -> Iterator[str]:
    """A fresh schema for one benchmark (its URL selects it), dropped afterwards whatever
    happens, so nothing is left in the shared server."""
    global _schemas
    if ctx.pg_base is None:
        raise RuntimeError(ctx.pg_skip_reason)
    _schemas += 1
    schema = f"lockbox_bench_{label}_{os.getpid()}_{_schemas}"
    admin = create_engine(ctx.pg_base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        yield f"{ctx.pg_base}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def skipped(benchmark: str, case: str, reason: str) -> Row:
    return Row(benchmark, case, "-", None, "", result="SKIP", notes=[reason])


# -- timing ---------------------------------------------------------------------------------

#: In-process, single-threaded, CPU-bound loops are timed by the CPU time of their thread:
#: on a shared machine the wall clock also counts the time other people's processes held
#: the core, which says nothing about the code. Anything involving another process (a
#: database server, an HTTP server) or waiting on I/O is timed by the wall clock.
CLOCK = time.thread_time
CPU_NOTE = "timed by the benchmark thread's CPU time (shared machine); baseline likewise"


def seconds(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    start = clock()
    fn()
    return clock() - start


def interleaved(
    subject: Callable[[], object],
    baseline: Callable[[], object],
    rounds: int,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[float, float]:
    """Median seconds of ``subject`` and of ``baseline``, run alternately ``rounds`` times."""
    a: list[float] = []
    b: list[float] = []
    for i in range(rounds):
        # Alternate who goes first, so neither always runs on a warmer cache.
        if i % 2 == 0:
            a.append(seconds(subject, clock))
            b.append(seconds(baseline, clock))
        else:
            b.append(seconds(baseline, clock))
            a.append(seconds(subject, clock))
    return statistics.median(a), statistics.median(b)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: a p99 is a latency someone really saw)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# -- servers --------------------------------------------------------------------------------


#: Environment for every server a benchmark starts: the rate limits far above any load
#: here, so the figures measure the work and not the limiter's refusals (the limiter
#: still runs and counts every request, in both the measured and the baseline calls).
UNLIMITED = {
    f"LOCKBOX_RATE_LIMIT_{budget}": "100000000/minute"
    for budget in (
        "DECISIONS",
        "DECISIONS_PER_ADDRESS",
        "DEFAULT",
        "DEFAULT_PER_ADDRESS",
        "TOKEN_ISSUE",
        "TOKEN_ISSUE_PER_ADDRESS",
    )
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def server_process(
    command: list[str],
    *,
    port: int,
    env: dict[str, str],
    log: Path,
    ready_timeout: float = 60,
    unset: tuple[str, ...] = (),
) -> Iterator[Server]:
    """Start a server, wait until ``/healthz`` answers, and always stop it (SIGINT, then kill).

    The server gets :data:`UNLIMITED` rate limits; ``unset`` names variables of this
    environment it must not inherit (so it runs with its defaults)."""
    full_env = {k: v for k, v in os.environ.items() if k not in unset} | UNLIMITED | env
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=full_env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
        )
    server = Server(process, port, log)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {process.returncode}: {log.read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield server
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
