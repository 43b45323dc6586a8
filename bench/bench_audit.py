"""6. The audit log: verifying a long chain, and exporting a million records in bounded memory.

* Verification (``audit.verify``: read every record of the tenant's chain in
  order, recompute each hash, check the links and the head) must reach
  ≥ 100,000 records/s on a chain of 1,000,000 records. Baseline: SHA-256 over
  the same canonical bytes already in memory (what verification cannot avoid).
* Export (``audit.export``, JSON Lines, streamed) of the 1,000,000-record chain
  must peak at most 50 MB above an export of a 10,000-record chain: measured
  as the peak RSS (``VmHWM``) of a child process doing only the export.

The chains are generated with valid hashes (see :func:`bench.data.audit_rows`),
among other tenants, and bulk-loaded into SQLite.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import time

from bench.common import CLOCK, REPO, Context, interleaved, progress
from bench.data import NOW, load_chain, load_people, make_people
from bench.report import Row, verdict
from lockbox.clock import ManualClock
from lockbox.domain.audit import canonical_bytes
from lockbox.domain.roles import Principal
from lockbox.service import audit
from lockbox.service.app import Lockbox
from lockbox.store import repositories as repo
from lockbox.store.db import Database, upgrade

NAME = "audit"
TARGET_RATE = 100_000
TARGET_MB = 50.0


def export_peak(url: str, tenant: str, reader: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.audit_export", url, tenant, reader, "jsonl"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the export child failed: {done.stderr[-600:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(ctx: Context) -> list[Row]:
    big = ctx.size(1_000_000, 100_000)
    small = 10_000
    url = ctx.sqlite_url("audit.db")
    db = Database(url)
    try:
        upgrade(db)
        people = make_people(random.Random(ctx.seed), 20, 20)
        with db.engine.connect() as conn, conn.begin():
            load_people(conn, people)
        long_tenant, short_tenant = people.tenants[0], people.tenants[1]
        progress(f"audit: generating a chain of {big:,} records (and one of {small:,})")
        load_chain(db, long_tenant, big, ctx.seed)
        load_chain(db, short_tenant, small, ctx.seed + 1)
        app = Lockbox(db, ManualClock(NOW))
        operator = Principal.operator()
        sample = ctx.size(100_000, 20_000)
        with app.read() as tx:
            canonical = []
            for record in repo.iter_audit(tx.conn, long_tenant.id):
                canonical.append(canonical_bytes(record))
                if len(canonical) == sample:
                    break

        def verify() -> None:
            report = audit.verify(app, operator, long_tenant.slug)[0]
            if not report.ok or report.records != big:
                raise RuntimeError(f"the generated chain does not verify: {report.summary()}")

        def hashing() -> None:
            sha = hashlib.sha256
            for _ in range(big // sample):  # the same number of records as the chain
                for data in canonical:
                    sha(data).hexdigest()

        progress("audit: verifying")
        wall = time.perf_counter()
        rounds = ctx.size(1, 2)  # a million records is sample enough
        subject, baseline = interleaved(verify, hashing, rounds, clock=CLOCK)
        wall = time.perf_counter() - wall
        rate, base_rate = big / subject, big / baseline
        progress(f"audit: verify {rate:,.0f}/s, hashing {base_rate:,.0f}/s")
    finally:
        db.dispose()

    progress("audit: exporting (child processes)")
    short = export_peak(url, short_tenant.slug, people.admins[short_tenant.id])
    long = export_peak(url, long_tenant.slug, people.admins[long_tenant.id])
    short2 = export_peak(url, short_tenant.slug, people.admins[short_tenant.id])
    base_peak = min(short["peak_rss_mb"], short2["peak_rss_mb"])
    delta = long["peak_rss_mb"] - base_peak
    progress(f"audit: export peak {long['peak_rss_mb']:.0f} MB vs {base_peak:.0f} MB")
    (ctx.tmp / "audit.db").unlink(missing_ok=True)
    return [
        Row(
            NAME,
            "verify a chain (audit.verify)",
            f"{big:,} records in one chain",
            rate,
            "/s",
            baseline=base_rate,
            baseline_label="SHA-256 of the same canonical bytes, in memory",
            target=f">= {TARGET_RATE:,}/s",
            result=verdict(rate >= TARGET_RATE),
            notes=[
                f"timed by the thread's CPU time (SQLite runs in-process); wall clock for "
                f"{rounds} verifications and hashings: {wall:.1f} s"
            ],
        ),
        Row(
            NAME,
            "export JSON Lines: peak RSS",
            f"{big:,} records (baseline {small:,})",
            long["peak_rss_mb"],
            "MB",
            baseline=base_peak,
            baseline_label=f"the same export of {small:,} records",
            target=f"<= baseline + {TARGET_MB:g} MB",
            result=verdict(delta <= TARGET_MB),
            notes=[
                f"peak RSS (VmHWM) of a child process doing only the export: "
                f"{delta:+.1f} MB for {big:,} records ({long['bytes'] / 1e6:,.0f} MB streamed "
                f"in {long['seconds']:.1f} s) vs {small:,}"
            ],
        ),
    ]
