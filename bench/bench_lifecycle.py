"""4. A request's whole lifecycle through the service layer, on SQLite and on PostgreSQL.

submit → review (manager) → approve (tenant approver) → access token → close,
each step its own audited transaction with its notifications and grant-feed
rows, exactly as the API runs them: ≥ 500 lifecycles/s on SQLite, ≥ 200/s on
PostgreSQL, on a database already holding a long history. The baseline is a
plain one-row INSERT transaction on the same database (a lifecycle is five
transactions, so 0.2× that rate is the ideal), alternated with the
lifecycles. SQL statements per lifecycle are counted with a
``before_cursor_execute`` listener (``BEGIN`` included).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, event, insert

from bench.common import Context, interleaved, progress, skipped
from bench.data import NOW, People, Shape, pick, resources_for
from bench.datasets import pg_dataset, sqlite_copy
from bench.report import Row, verdict
from lockbox.clock import ManualClock
from lockbox.domain.roles import Principal
from lockbox.service import access, cases, requests
from lockbox.service.access import TokenConfig
from lockbox.service.app import Lockbox
from lockbox.store import repositories as repo
from lockbox.store.db import Database

NAME = "lifecycle"
TARGETS = {"sqlite": 500.0, "postgresql": 200.0}
TOKENS = TokenConfig(issuer="lockbox", audience="mailstore", ttl=timedelta(minutes=5))


def shape(ctx: Context) -> Shape:
    """The sweep's smaller dataset: it is then generated once per run."""
    from bench.bench_sweep import shapes

    return shapes(ctx)[0]


@dataclass(frozen=True)
class Plan:
    tenant: str
    domain: str
    engineer: Principal
    case_id: str
    manager: Principal
    approver: Principal


def _principal(app: Lockbox, user_id: str) -> Principal:
    """People act through the API with their tokens (a session would also need a recent
    sign-in to approve: the step-up, which is not what is measured here)."""
    with app.read() as tx:
        user = repo.get_user(tx.conn, user_id)
    assert user is not None
    return user.principal(credential=f"token:tok_bench_{user_id[-8:]}")


def plans(app: Lockbox, people: People, rng: random.Random, count: int) -> list[Plan]:
    """Who does what, Zipf-skewed over tenants (with the lockbox on) and engineers; one open
    case per engineer and tenant, opened before the clock starts."""
    enabled = [i for i, x in enumerate(people.tenants) if x.lockbox_enabled]
    principals: dict[str, Principal] = {}
    open_cases: dict[tuple[str, str], str] = {}

    def who(user_id: str) -> Principal:
        if user_id not in principals:
            principals[user_id] = _principal(app, user_id)
        return principals[user_id]

    out = []
    for _ in range(count):
        tenant = people.tenants[enabled[pick(rng, people.tenant_weights) % len(enabled)]]
        engineer = who(people.engineers[pick(rng, people.engineer_weights)][0])
        key = (tenant.id, engineer.id)
        if key not in open_cases:
            open_cases[key] = cases.open_case(
                app, engineer, tenant=tenant.slug, title="Mailbox does not sync"
            ).id
        out.append(
            Plan(
                tenant=tenant.slug,
                domain=tenant.domain,
                engineer=engineer,
                case_id=open_cases[key],
                manager=who(rng.choice(people.managers)),
                approver=who(rng.choice(people.approvers[tenant.id])),
            )
        )
    return out


def lifecycle(app: Lockbox, plan: Plan, resources: list[str]) -> None:
    r = requests.submit_request(
        app,
        plan.engineer,
        tenant=plan.tenant,
        case_id=plan.case_id,
        resources=resources,
        access_level="read",
        justification="Customer reports the mailbox does not sync (SR-123456)",
    )
    requests.review_request(app, plan.manager, r.id, approve=True)
    requests.decide_request(app, plan.approver, r.id, approve=True)
    access.issue_token(app, plan.engineer, r.id, audience="mailstore", config=TOKENS)
    requests.close_request(app, plan.engineer, r.id)


def measure(ctx: Context, url: str, people: People, backend: str) -> Row:
    rng = random.Random(ctx.seed)
    db = Database(url)
    clock = ManualClock(NOW)
    app = Lockbox(db, clock)
    block = ctx.size(100, 30)
    rounds = ctx.size(6, 3)
    inserts = block * 5
    plain = Table(
        "bench_plain_insert",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("tenant_id", String(40), nullable=False),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("details", Text, nullable=False),
    )
    try:
        plain.create(db.engine)
        access.ensure_signing_key(app)
        todo = plans(app, people, rng, block * (rounds + 1) + 50)
        work = iter(todo)
        tenant_ids = [x.id for x in people.tenants]

        def lifecycles() -> None:
            for _ in range(block):
                plan = next(work)
                clock.advance(timedelta(seconds=1))
                lifecycle(app, plan, resources_for(rng, plan.domain))

        def plain_inserts() -> None:
            for i in range(inserts):
                with db.write() as conn:
                    conn.execute(
                        insert(plain).values(
                            tenant_id=tenant_ids[i % len(tenant_ids)],
                            at=NOW,
                            details='{"operation":"bench"}',
                        )
                    )

        statements = 0

        def count(*_args: object) -> None:
            nonlocal statements
            statements += 1

        counted = 20
        event.listen(db.engine, "before_cursor_execute", count)
        for _ in range(counted):
            plan = next(work)
            lifecycle(app, plan, resources_for(rng, plan.domain))
        event.remove(db.engine, "before_cursor_execute", count)
        per_lifecycle = statements / counted
        progress(f"lifecycle[{backend}]: {per_lifecycle:.1f} statements per lifecycle")
        for _ in range(30):  # warm up the rest of the way
            plan = next(work)
            lifecycle(app, plan, resources_for(rng, plan.domain))
        subject, baseline = interleaved(lifecycles, plain_inserts, rounds)
    finally:
        db.dispose()
    rate, base = block / subject, inserts / baseline
    progress(f"lifecycle[{backend}]: {rate:,.0f}/s vs {base:,.0f} inserts/s")
    target = TARGETS[backend]
    return Row(
        NAME,
        f"submit→review→approve→token→close, {backend}",
        f"{len(people.tenants):,} tenants, history of {ctx.size(100_000, 10_000):,} requests",
        rate,
        "/s",
        baseline=base,
        baseline_label="one-row INSERT transaction on the same database (5 per lifecycle)",
        target=f">= {target:,.0f}/s",
        result=verdict(rate >= target),
        notes=[
            f"{per_lifecycle:.1f} SQL statements per lifecycle (5 transactions, BEGIN included); "
            f"{rounds} alternating blocks of {block} lifecycles / {inserts} inserts"
        ],
    )


def run(ctx: Context) -> list[Row]:
    data = shape(ctx)
    url, people = sqlite_copy(ctx, data, "lifecycle.db")
    rows = [measure(ctx, url, people, "sqlite")]
    (ctx.tmp / "lifecycle.db").unlink(missing_ok=True)
    if ctx.pg_base is None:
        rows.append(skipped(NAME, "lifecycle, postgresql", ctx.pg_skip_reason))
        return rows
    # The sweep's smaller PostgreSQL dataset, which the sweep later consumes: the closed
    # requests added here do not change what it finds due.
    pg_url, pg_people = pg_dataset(ctx, shape(ctx))
    rows.append(measure(ctx, pg_url, pg_people, "postgresql"))
    return rows
