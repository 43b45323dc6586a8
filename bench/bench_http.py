"""3. The online check over HTTP, 50 connections (wrk), vs. a bare endpoint in the same server.

``POST /v1/access/check`` must keep ≥ 0.5× the throughput and ≤ 2× the p99 of
``POST /bench/bare`` — the same JSON body, validated by the same model, through
the same middleware, in the same process (see :mod:`bench.http_app`) — so the
server's own cost per check stays within what the framework costs anyway.
Two cases: checks that allow (read-only: authentication, the engineer's live
grants) and checks that deny (each also writes an ``access.check_denied``
audit record; the notes count them). Bare and check runs alternate; medians
are reported. The server's rate limits are raised above the load (see
:data:`bench.common.UNLIMITED`): a refused request would not measure the check.
"""

from __future__ import annotations

import statistics
import sys
import time

from sqlalchemy import func, select

from bench import wrk
from bench.common import Context, free_port, progress, server_process, skipped
from bench.data import Shape
from bench.online import prepare
from bench.report import Row, verdict
from lockbox.store import tables as t
from lockbox.store.db import Database

NAME = "http"
TARGET_RPS_RATIO = 0.5
TARGET_P99_RATIO = 2.0
CONNECTIONS = 50


def run(ctx: Context) -> list[Row]:
    if not wrk.available():
        progress(wrk.MISSING)
        return [skipped(NAME, "online check over HTTP", wrk.MISSING)]
    shape = Shape(
        requests=ctx.size(100_000, 10_000),
        due=ctx.size(100, 10),
        live=ctx.size(2_000, 400),
        seed=ctx.seed,
    )
    url = ctx.sqlite_url("http.db")
    progress(f"http: loading {shape.describe()}")
    online = prepare(url, shape, ctx.seed)
    seconds = ctx.size(10, 3)
    rounds = ctx.size(2, 1)
    port = free_port()
    rows: list[Row] = []
    with server_process(
        [sys.executable, "-m", "bench.http_app", "--port", str(port)],
        port=port,
        env={"LOCKBOX_DATABASE_URL": url},
        log=ctx.tmp / "http-server.log",
    ) as server:
        for case, bodies in (("allow", online.allow), ("deny", online.deny)):
            check = wrk.write_script(
                ctx.tmp / f"check-{case}.lua", "/v1/access/check", bodies, online.token
            )
            bare = wrk.write_script(
                ctx.tmp / f"bare-{case}.lua", "/bench/bare", bodies, online.token
            )
            progress(f"http: {case}: warming up")
            denials_before = denial_records(url)
            wrk.run(server.url, bare, connections=CONNECTIONS, seconds=2)
            warm = wrk.run(server.url, check, connections=CONNECTIONS, seconds=2)
            checks: list[wrk.WrkResult] = []
            bares: list[wrk.WrkResult] = []
            for i in range(rounds * 2):
                first_bare = i % 2 == 0
                for is_bare in (first_bare, not first_bare):
                    script = bare if is_bare else check
                    result = wrk.run(server.url, script, connections=CONNECTIONS, seconds=seconds)
                    (bares if is_bare else checks).append(result)
                    progress(
                        f"http: {case} {'bare ' if is_bare else 'check'}: {result.rps:,.0f}/s, "
                        f"p99 {result.p99_ms:.1f} ms"
                    )
            audited = ""
            if case == "deny":
                time.sleep(2)  # let the server finish what wrk stopped waiting for
                written = denial_records(url) - denials_before
                answered = warm.requests + sum(r.requests for r in checks)
                audited = (
                    f"; {written:,} access.check_denied audit records written for "
                    f"{answered:,} denials answered to wrk"
                )
            rows += _rows(case, checks, bares, shape, len(bodies), seconds, audited)
    return rows


def denial_records(url: str) -> int:
    """Audit records of denied checks so far (read from the side, while the server runs)."""
    db = Database(url)
    try:
        with db.read() as conn:
            c = t.audit_events.c
            query = select(func.count()).where(c.operation == "access.check_denied")
            return int(conn.execute(query).scalar_one())
    finally:
        db.dispose()


def _rows(
    case: str,
    checks: list[wrk.WrkResult],
    bares: list[wrk.WrkResult],
    shape: Shape,
    bodies: int,
    seconds: int,
    audited: str,
) -> list[Row]:
    rps = statistics.median(r.rps for r in checks)
    bare_rps = statistics.median(r.rps for r in bares)
    p99 = statistics.median(r.p99_ms for r in checks)
    bare_p99 = statistics.median(r.p99_ms for r in bares)
    p50 = statistics.median(r.p50_ms for r in checks)
    bare_p50 = statistics.median(r.p50_ms for r in bares)
    errors = sum(r.non_2xx + r.socket_errors for r in checks + bares)
    bare_errors = sum(r.non_2xx + r.socket_errors for r in bares)
    size = f"{shape.requests // 1000:,}k requests; {bodies} bodies"
    what = "allowed" if case == "allow" else "denied (+ audit record)"
    notes = [
        f"{len(checks)} x {seconds} s wrk runs each, {CONNECTIONS} connections, 2 threads, "
        f"loopback; p50 {p50:.1f} ms (bare {bare_p50:.1f} ms); non-2xx or socket errors: "
        f"{errors - bare_errors} (bare {bare_errors})" + audited,
    ]
    return [
        Row(
            NAME,
            f"check {what}: throughput",
            size,
            rps,
            "/s",
            baseline=bare_rps,
            baseline_label="POST /bench/bare, same body, same server",
            target=f">= {TARGET_RPS_RATIO}x baseline",
            result=verdict(rps / bare_rps >= TARGET_RPS_RATIO and errors == 0),
            notes=notes,
        ),
        Row(
            NAME,
            f"check {what}: p99 latency",
            size,
            p99,
            "ms",
            baseline=bare_p99,
            target=f"<= {TARGET_P99_RATIO}x baseline",
            result=verdict(p99 / bare_p99 <= TARGET_P99_RATIO and errors == 0),
        ),
    ]
