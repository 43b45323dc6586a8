"""Core costs: the audit chain, a full request lifecycle, the effective-state list query.

Baselines, measured in the same run:
- audit append vs. a plain INSERT of the same row into a table without the chain;
- chain verification vs. hashing the same bytes with nothing else;
- the effective-state filtered list vs. a plain ``state = ?`` query over the same rows.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import timedelta

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, event, insert, select

from bench.common import make_setup, report, timed
from lockbox.domain.audit import canonical_bytes
from lockbox.domain.lifecycle import State
from lockbox.service import audit, requests
from lockbox.store import repositories as repo
from lockbox.store import tables as t


def run(url: str | None, label: str) -> None:
    s = make_setup(url)
    app = s.app
    print(f"\n[{label}]")
    n = 300

    # -- audit append vs plain insert ---------------------------------------------------
    plain_md = MetaData()
    plain = Table(
        "bench_plain",
        plain_md,
        Column("id", Integer, primary_key=True),
        Column("tenant_id", String(40)),
        Column("details", Text),
    )
    plain_md.create_all(app.db.engine)
    with app.read() as tx:
        tenant = repo.get_tenant(tx.conn, "contoso")
    assert tenant is not None

    def plain_inserts() -> None:
        for i in range(n):
            with app.db.write() as conn:
                conn.execute(
                    insert(plain).values(tenant_id=tenant.id, details=json.dumps({"i": i}))
                )

    def chained_appends() -> None:
        for i in range(n):
            with app.tx() as tx:
                tx.audit(
                    tenant_id=tenant.id, actor=s.engineer, operation="bench.op", details={"i": i}
                )

    base = timed(plain_inserts, repeat=3) / n * 1e6
    chain = timed(chained_appends, repeat=3) / n * 1e6
    report("plain INSERT transaction (baseline)", base, "us/op")
    report("audit append (lock head, hash, insert, update)", chain, "us/op", base)

    # -- full lifecycle -----------------------------------------------------------------
    def lifecycle() -> None:
        for _ in range(50):
            r = requests.submit_request(
                app,
                s.engineer,
                tenant="contoso",
                case_id=s.case_id,
                resources=["exchange/mailbox/a@contoso.com"],
                access_level="read",
                justification="bench",
            )
            requests.review_request(app, s.manager, r.id, approve=True)
            requests.decide_request(app, s.approver, r.id, approve=True)
            requests.close_request(app, s.engineer, r.id)

    statements = [0]

    def count(*_args: object) -> None:
        statements[0] += 1

    event.listen(app.db.engine, "before_cursor_execute", count)
    lifecycle()
    event.remove(app.db.engine, "before_cursor_execute", count)
    print(f"  {'SQL statements per request lifecycle':<48} {statements[0] / 50:>12.1f}")
    per_request = timed(lifecycle, repeat=3) / 50 * 1e3
    report(
        "submit+review+approve+close (4 transactions)", per_request, "ms/request", base / 1e3 * 4
    )

    # -- verification -------------------------------------------------------------------
    with app.read() as tx:
        records = list(repo.iter_audit(tx.conn, tenant.id))

    def raw_hash() -> None:
        for record in records:
            hashlib.sha256(canonical_bytes(record)).hexdigest()

    def verify() -> None:
        reports = audit.verify(app, s.engineer.__class__.operator(), "contoso")
        assert reports[0].ok

    raw = timed(raw_hash) / len(records) * 1e6
    ver = timed(verify) / len(records) * 1e6
    report(f"hash {len(records)} records in memory (baseline)", raw, "us/record")
    report("audit verify (read from DB + check chain)", ver, "us/record", raw)

    # -- effective-state list ------------------------------------------------------------
    s.clock.advance(timedelta(hours=1))
    now = s.clock.now()

    def plain_state() -> None:
        with app.read() as tx:
            tx.conn.execute(
                select(t.access_requests.c.id)
                .where(t.access_requests.c.state == State.CLOSED.value)
                .limit(50)
            ).all()

    def effective() -> None:
        with app.read() as tx:
            repo.list_requests(
                tx.conn, repo.RequestFilter(states=(State.CLOSED,)), now=now, limit=50, cursor=None
            )

    p = timed(plain_state, repeat=20) * 1e3
    e = timed(effective, repeat=20) * 1e3
    report("list 50 by stored state (baseline)", p, "ms")
    report("list 50 by effective state + decisions", e, "ms", p)
    app.db.dispose()


def main() -> None:
    run(None, "SQLite")
    pg = os.environ.get(
        "LOCKBOX_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(pg, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS lockbox_bench CASCADE"))
            conn.execute(text("CREATE SCHEMA lockbox_bench"))
        run(f"{pg}?options=-csearch_path%3Dlockbox_bench", "PostgreSQL")
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS lockbox_bench CASCADE"))
    except Exception as exc:  # the machine may have no PostgreSQL
        print(f"\n[PostgreSQL] skipped: {exc}")
