"""7. Listing: a tenant's pending requests, first page and later pages by cursor, among 1M.

What a tenant's approvers and admins open all day: ``list_requests`` with the
pending states (``pending_review``, ``pending_approval``, effective at now),
newest first, 50 a page, then page after page by cursor. Each page must take
≤ 5 ms (p95 over many pages; medians reported too) among 1,000,000 stored
requests, on SQLite and on PostgreSQL. Tenants are taken across the activity
skew (the busiest, middling, small); the walk is repeated to get many pages.
The baseline is a primary-key look-up of one request in its own read
transaction on the same table: the cheapest query there is.
"""

from __future__ import annotations

import random
import statistics
import time

from sqlalchemy import select

from bench.bench_sweep import shapes
from bench.common import Context, percentile, progress, skipped
from bench.data import NOW, People
from bench.datasets import pg_dataset, sqlite_pristine
from bench.report import Row, verdict
from lockbox.clock import ManualClock
from lockbox.service import requests
from lockbox.service.app import Lockbox
from lockbox.store import repositories as repo
from lockbox.store import tables as t
from lockbox.store.db import Database

NAME = "listing"
TARGET_MS = 5.0
PAGE = 50
PENDING = ["pending_review", "pending_approval"]
RANKS = (0, 1, 2, 5, 10, 20, 50, 100, 300)  # tenants by activity rank


def measure(ctx: Context, url: str, people: People, backend: str, stored: int) -> list[Row]:
    db = Database(url)
    app = Lockbox(db, ManualClock(NOW))
    first: list[float] = []
    later: list[float] = []
    ids: list[str] = []
    max_pages = ctx.size(30, 10)
    walks = ctx.size(3, 2)
    try:
        viewers = []
        for rank in RANKS:
            if rank < len(people.tenants):
                tenant = people.tenants[rank]
                with app.read() as tx:
                    user = repo.get_user(tx.conn, people.approvers[tenant.id][0])
                assert user is not None
                viewers.append(user.principal())
        for walk in range(walks + 1):  # the first walk warms the caches and is not counted
            for viewer in viewers:
                cursor = None
                for page_no in range(max_pages + 1):
                    start = time.perf_counter()
                    page = requests.list_requests(
                        app, viewer, states=PENDING, limit=PAGE, cursor=cursor
                    )
                    elapsed = (time.perf_counter() - start) * 1e3
                    if walk:
                        (first if page_no == 0 else later).append(elapsed)
                    ids.extend(v.request.id for v in page.items[:3])
                    cursor = page.next_cursor
                    if cursor is None:
                        break
        rng = random.Random(ctx.seed)
        sample = rng.sample(ids, min(len(ids), 300)) if ids else []
        c = t.access_requests.c
        lookups = []
        for _ in range(2):
            for request_id in sample:
                start = time.perf_counter()
                with app.read() as tx:
                    tx.conn.execute(select(t.access_requests).where(c.id == request_id)).first()
                lookups.append((time.perf_counter() - start) * 1e3)
    finally:
        db.dispose()
    base = statistics.median(lookups) if lookups else None
    progress(
        f"listing[{backend}]: first p95 {percentile(first, 95):.2f} ms, "
        f"later p95 {percentile(later, 95) if later else 0:.2f} ms, pk {base or 0:.2f} ms"
    )
    rows = []
    for label, samples in (("first page", first), ("later page (cursor)", later)):
        if not samples:
            continue
        p95, median = percentile(samples, 95), statistics.median(samples)
        rows.append(
            Row(
                NAME,
                f"tenant's pending, {label}, {backend}",
                f"{stored:,} requests; {len(samples)} pages",
                p95,
                "ms",
                baseline=base,
                baseline_label="primary-key look-up of one request (its own read transaction)",
                target=f"p95 <= {TARGET_MS:g} ms",
                result=verdict(p95 <= TARGET_MS),
                notes=[
                    f"{backend} {label}: median {median:.2f} ms, p95 {p95:.2f} ms, max "
                    f"{max(samples):.2f} ms; {PAGE} a page, tenants of activity rank "
                    f"{', '.join(map(str, RANKS))}, up to {max_pages} pages each"
                ],
            )
        )
    return rows


def run(ctx: Context) -> list[Row]:
    _small, big = shapes(ctx)
    path, people = sqlite_pristine(ctx, big)
    rows = measure(ctx, f"sqlite:///{path}", people, "sqlite", big.requests)
    if ctx.pg_base is None:
        return [*rows, skipped(NAME, "listing, postgresql", ctx.pg_skip_reason)]
    url, pg_people = pg_dataset(ctx, big)  # the same rows; the sweep consumes it afterwards
    return rows + measure(ctx, url, pg_people, "postgresql", big.requests)
