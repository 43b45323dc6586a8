"""8. A close reaching a connected SDK follower of the grant feed, with a live server.

``lockbox serve`` runs in a child process (``LOCKBOX_FEED_POLL_SECONDS`` left at
its default) on a SQLite file; this process follows ``/v1/access/feed`` with
``lockbox.sdk.feed.GrantFeed`` as a resource service would, and closes
approved requests through the service layer one at a time, at random moments.
Latency is from the start of the close to the follower applying the ``end``
event (the grant gone from its table); target: p99 ≤ 1 s over ≥ 100 closes.
The baseline shown is the server's poll interval, the delay the design accepts.
"""

from __future__ import annotations

import random
import statistics
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from bench.bench_lifecycle import plans
from bench.common import Context, free_port, percentile, progress, server_process
from bench.data import Shape, resources_for
from bench.online import prepare
from bench.report import Row, verdict
from lockbox.config import Settings
from lockbox.sdk.feed import GrantFeed
from lockbox.service import requests
from lockbox.service.app import Lockbox
from lockbox.store.db import Database

NAME = "feed"
TARGET_S = 1.0


def lockbox_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "lockbox"), *args]


def run(ctx: Context) -> list[Row]:
    closes = ctx.size(150, 30)
    shape = Shape(
        requests=ctx.size(100_000, 10_000), due=ctx.size(100, 10), live=2_000, seed=ctx.seed
    )
    url = ctx.sqlite_url("feed.db")
    progress(f"feed: loading {shape.describe()}")
    online = prepare(url, shape, ctx.seed, bodies=1)
    db = Database(url)
    app = Lockbox(db)  # the system clock, like the server
    rng = random.Random(ctx.seed)
    progress(f"feed: approving {closes} requests")
    approved = []
    for plan in plans(app, online.people, rng, closes):
        r = requests.submit_request(
            app,
            plan.engineer,
            tenant=plan.tenant,
            case_id=plan.case_id,
            resources=resources_for(rng, plan.domain),
            access_level="read",
            justification="Customer reports the mailbox does not sync",
        )
        requests.review_request(app, plan.manager, r.id, approve=True)
        requests.decide_request(app, plan.approver, r.id, approve=True)
        approved.append((r.id, plan.engineer))
    poll = Settings.model_fields["feed_poll_seconds"].default
    port = free_port()
    latencies: list[float] = []
    try:
        with server_process(
            lockbox_command("serve", "--port", str(port), "--no-migrate", "--log-level", "warning"),
            port=port,
            env={"LOCKBOX_DATABASE_URL": url},
            log=ctx.tmp / "feed-server.log",
            unset=("LOCKBOX_FEED_POLL_SECONDS",),  # the default, whatever the shell says
        ) as server:
            seen: dict[str, float] = {}
            arrived = threading.Condition()

            def on_event(kind: str, data: dict[str, Any]) -> None:
                if kind == "end":
                    with arrived:
                        seen[str(data["request_id"])] = time.perf_counter()
                        arrived.notify_all()

            feed = GrantFeed(server.url, online.token)
            feed.on_event(on_event)
            feed.start()
            try:
                if not feed.wait_ready(60):
                    raise RuntimeError("the grant feed did not become ready")
                progress(f"feed: following ({len(feed.table):,} live grants); closing")
                for request_id, engineer in approved:
                    time.sleep(rng.uniform(0, 0.25))  # land anywhere in the poll cycle
                    start = time.perf_counter()
                    requests.close_request(app, engineer, request_id)
                    with arrived:
                        if not arrived.wait_for(partial(seen.__contains__, request_id), 10):
                            raise RuntimeError(f"the close of {request_id} never arrived")
                    latencies.append(seen[request_id] - start)
                grants = len(feed.table)
            finally:
                feed.stop()
    finally:
        db.dispose()
    p99, median = percentile(latencies, 99), statistics.median(latencies)
    progress(f"feed: median {median * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms")
    return [
        Row(
            NAME,
            "close → SDK GrantFeed follower, p99",
            f"{len(latencies)} closes; {grants:,} live grants followed",
            p99,
            "s",
            baseline=poll,
            baseline_label="the server's feed poll interval (LOCKBOX_FEED_POLL_SECONDS default)",
            target=f"p99 <= {TARGET_S:g} s",
            result=verdict(p99 <= TARGET_S),
            notes=[
                f"median {median * 1e3:.0f} ms, max {max(latencies) * 1e3:.0f} ms; from the "
                f"start of close_request to the follower applying the end event; lockbox serve "
                f"on SQLite"
            ],
        )
    ]
