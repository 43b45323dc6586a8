"""9. One server process vs. two, against one PostgreSQL database (for the docs).

``lockbox serve`` has no ``--workers`` option (checked at run time: if it gains
one, it is used), so "two processes" are two ``lockbox serve`` on two ports
sharing one PostgreSQL schema. Load: two wrk processes of 25 connections each
(50 in all), both against the one process, or one against each of the two;
the same allowed check bodies as benchmark 3. Alternating runs, medians. On
two cores shared by the servers, PostgreSQL and wrk, the ratio says how much
a second process buys on a small machine; it has no target.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from bench import wrk
from bench.common import (
    Context,
    Server,
    free_port,
    pg_schema,
    progress,
    server_process,
    skipped,
)
from bench.data import Shape
from bench.online import prepare
from bench.report import INFO, Row

NAME = "scaleout"


def lockbox_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "lockbox"), *args]


def has_workers_option() -> bool:
    done = subprocess.run(
        lockbox_command("serve", "--help"), capture_output=True, text=True, check=False
    )
    return "--workers" in done.stdout


@contextlib.contextmanager
def servers(ctx: Context, url: str, count: int) -> Iterator[list[Server]]:
    with contextlib.ExitStack() as stack:
        started = []
        for i in range(count):
            port = free_port()
            started.append(
                stack.enter_context(
                    server_process(
                        lockbox_command(
                            "serve", "--port", str(port), "--no-migrate", "--log-level", "warning"
                        ),
                        port=port,
                        env={"LOCKBOX_DATABASE_URL": url},
                        log=ctx.tmp / f"scaleout-{count}-{i}.log",
                    )
                )
            )
        yield started


def load(targets: list[str], script: Path, seconds: int) -> wrk.WrkResult:
    """Two wrk processes side by side, 25 connections each, on the given URLs."""
    running = [
        wrk.start(url, script, connections=25, threads=1, seconds=seconds) for url in targets
    ]
    results = [wrk.finish(p, seconds + 60) for p in running]
    return results[0].merged(results[1])


def run(ctx: Context) -> list[Row]:
    if not wrk.available():
        return [skipped(NAME, "1 vs 2 server processes", wrk.MISSING)]
    if ctx.pg_base is None:
        return [skipped(NAME, "1 vs 2 server processes", ctx.pg_skip_reason)]
    if has_workers_option():
        progress("scaleout: lockbox serve has --workers, but two processes on two ports are used")
    shape = Shape(requests=ctx.size(100_000, 10_000), due=100, live=2_000, seed=ctx.seed)
    seconds = ctx.size(10, 3)
    rounds = ctx.size(2, 1)
    with pg_schema(ctx, "scaleout") as url:
        progress(f"scaleout: loading PostgreSQL: {shape.describe()}")
        online = prepare(url, shape, ctx.seed)
        script = wrk.write_script(
            ctx.tmp / "scaleout.lua", "/v1/access/check", online.allow, online.token
        )
        one: list[wrk.WrkResult] = []
        two: list[wrk.WrkResult] = []
        with servers(ctx, url, 2) as (first, second):
            load([first.url, second.url], script, 2)  # warm both up
            for i in range(rounds * 2):
                for both in (i % 2 == 1, i % 2 == 0):
                    targets = [first.url, second.url] if both else [first.url, first.url]
                    result = load(targets, script, seconds)
                    (two if both else one).append(result)
                    progress(
                        f"scaleout: {'2 processes' if both else '1 process  '}: "
                        f"{result.rps:,.0f}/s, p99 {result.p99_ms:.0f} ms"
                    )
    rps2, rps1 = statistics.median(r.rps for r in two), statistics.median(r.rps for r in one)
    p99_2, p99_1 = (
        statistics.median(r.p99_ms for r in two),
        statistics.median(r.p99_ms for r in one),
    )
    errors = sum(r.non_2xx + r.socket_errors for r in one + two)
    return [
        Row(
            NAME,
            "allowed checks, 2 server processes vs 1 (PostgreSQL)",
            f"{shape.requests // 1000:,}k requests; 50 connections",
            rps2,
            "/s",
            baseline=rps1,
            baseline_label="the same load on one lockbox serve process",
            target="info (no target)",
            result=INFO,
            notes=[
                f"two lockbox serve processes on two ports, one PostgreSQL schema; p99 "
                f"{p99_2:.0f} ms with two, {p99_1:.0f} ms with one; {len(one)} x {seconds} s "
                f"runs each; non-2xx or socket errors: {errors}"
            ],
        )
    ]
