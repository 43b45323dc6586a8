"""5. The deadline sweep: 10,000 due requests among 1,000,000 stored vs. among 100,000.

The worker's sweeper finds requests whose stage deadline passed and records
each expiry in its own audited transaction. Its cost must follow the work
(the due requests), not the history: sweeping the same number of due requests
among ten times as many stored ones may take at most 1.5× as long. The rows
are bulk-loaded (see :mod:`bench.data`: two years of history, open requests
with live deadlines, and the due ones, whose deadlines passed up to 36 hours
ago); the clock is fixed, so both sweeps find exactly the same amount of work.
On SQLite and on PostgreSQL (the very same rows, copied), one sweep per size.
"""

from __future__ import annotations

import statistics
import time

from bench.common import Context, progress, skipped
from bench.data import NOW, Shape
from bench.datasets import pg_dataset, pg_release, sqlite_copy
from bench.report import Row, verdict
from lockbox.clock import ManualClock
from lockbox.service.app import Lockbox
from lockbox.service.sweeper import sweep_deadlines
from lockbox.store import repositories as repo
from lockbox.store.db import Database

NAME = "sweep"
TARGET_RATIO = 1.5


def shapes(ctx: Context) -> tuple[Shape, Shape]:
    """(smaller, larger) datasets, the same on both databases; the larger one is also the
    listing benchmark's, the smaller one the lifecycle's."""
    scale = 10 if ctx.quick else 1
    due = 10_000 // scale
    return (
        Shape(requests=100_000 // scale, due=due, live=2_000 // scale, seed=ctx.seed),
        Shape(requests=1_000_000 // scale, due=due, live=20_000 // scale, seed=ctx.seed),
    )


def sweep_seconds(url: str, due: int) -> float:
    db = Database(url)
    try:
        app = Lockbox(db, ManualClock(NOW))
        with app.read() as tx:
            found = len(repo.due_request_ids(tx.conn, NOW, due * 2))
        if found != due:
            raise RuntimeError(f"expected {due} due requests, found {found}")
        start = time.perf_counter()
        result = sweep_deadlines(app)
        elapsed = time.perf_counter() - start
        if result.expired != due:
            raise RuntimeError(f"the sweep recorded {result.expired} expiries, not {due}")
        return elapsed
    finally:
        db.dispose()


def _row(backend: str, small: Shape, big: Shape, t_small: float, t_big: float, runs: int) -> Row:
    return Row(
        NAME,
        f"sweep {big.due:,} due, {backend}",
        f"{big.requests:,} stored (baseline {small.requests:,})",
        t_big,
        "s",
        baseline=t_small,
        baseline_label=f"the same sweep among {small.requests:,} stored requests",
        target=f"<= {TARGET_RATIO}x baseline",
        result=verdict(t_big / t_small <= TARGET_RATIO),
        notes=[
            f"{backend}: {big.due / t_big:,.0f} expiries/s among {big.requests:,}, "
            f"{small.due / t_small:,.0f}/s among {small.requests:,}; "
            f"{'median of ' + str(runs) + ' sweeps each, on fresh copies' if runs > 1 else 'one sweep each'}"
        ],
    )


def run(ctx: Context) -> list[Row]:
    small, big = shapes(ctx)
    runs = 1
    times: dict[int, list[float]] = {small.requests: [], big.requests: []}
    for i, data in enumerate([small, big, big, small][: runs * 2]):
        url, _ = sqlite_copy(ctx, data, f"sweep-{i}.db")
        progress(f"sweep[sqlite]: {data.due:,} due among {data.requests:,}")
        seconds = sweep_seconds(url, data.due)
        times[data.requests].append(seconds)
        progress(f"sweep[sqlite]: {seconds:.1f} s")
        (ctx.tmp / f"sweep-{i}.db").unlink(missing_ok=True)
    rows = [
        _row(
            "sqlite",
            small,
            big,
            statistics.median(times[small.requests]),
            statistics.median(times[big.requests]),
            runs,
        )
    ]
    if ctx.pg_base is None:
        rows.append(skipped(NAME, "sweep, postgresql", ctx.pg_skip_reason))
        return rows
    pg: dict[int, float] = {}
    for data in (small, big):
        url, _ = pg_dataset(ctx, data)
        try:
            progress(f"sweep[postgresql]: {data.due:,} due among {data.requests:,}")
            pg[data.requests] = sweep_seconds(url, data.due)
            progress(f"sweep[postgresql]: {pg[data.requests]:.1f} s")
        finally:
            pg_release(ctx, data)  # changed by the sweep: nobody else may use it
    rows.append(_row("postgresql", small, big, pg[small.requests], pg[big.requests], 1))
    return rows
