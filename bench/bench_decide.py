"""1. In-process decisions: the SDK's grant table (and a cached verified token) vs. pycasbin.

A resource service that follows the grant feed decides every request from its
local table, so that decision must be a dictionary look-up whose cost does not
grow with the number of grants: ≥ 100,000 decisions/s at 1,000 and at 100,000
active grants, the two rates within 20% of each other ("flat").

The baseline is pycasbin answering the same questions over the same grants: a
domain model (engineer, tenant, resource, action) whose resources match with
``keyMatch`` (``exchange/mailbox/*`` covers a mailbox) and whose ``read_write``
level also allows ``write``; one policy line per granted resource. casbin's
deadline-free answer is checked against ours on the questions asked.
"""

from __future__ import annotations

import importlib.util
import random
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bench.common import CLOCK, CPU_NOTE, Context, progress
from bench.data import NOW, covered, ident, mailbox, pick, resources_for, zipf_cumulative
from bench.report import Row, verdict
from lockbox.sdk.feed import Grant, GrantTable
from lockbox.sdk.verify import AccessClaims

NAME = "decide"
TARGET_RATE = 100_000
FLATNESS = 0.8
PER_PAIR = 3  # an engineer holds at most a few live grants on one tenant

CASBIN_MODEL = """
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.sub == p.sub && r.dom == p.dom && keyMatch(r.obj, p.obj) && (r.act == p.act || p.act == "read_write")
"""


@dataclass(frozen=True)
class Question:
    engineer: str  # an id or an e-mail address, as services pass them
    tenant: str  # an id or a slug
    resource: str
    action: str
    engineer_id: str  # the same question in casbin's terms (ids only)
    tenant_id: str


def make_grants(rng: random.Random, count: int, now: datetime) -> list[Grant]:
    """``count`` live grants over tenants and engineers whose activity is Zipf-skewed."""
    tenants = max(50, count // 10)
    engineers = max(50, count // 20)
    slugs = [f"tenant-{i:06d}" for i in range(tenants)]
    tenant_ids = [ident(rng, "ten") for _ in range(tenants)]
    engineer_ids = [ident(rng, "usr") for _ in range(engineers)]
    tw, ew = zipf_cumulative(tenants, 1.0), zipf_cumulative(engineers, 0.8, offset=3.0)
    held: dict[tuple[int, int], int] = {}
    grants = []
    for _ in range(count):
        e, ti = pick(rng, ew), pick(rng, tw)
        while held.get((ti, e), 0) >= PER_PAIR:
            ti = rng.randrange(tenants)
        held[(ti, e)] = held.get((ti, e), 0) + 1
        grants.append(
            Grant(
                request_id=ident(rng, "req"),
                tenant_id=tenant_ids[ti],
                tenant=slugs[ti],
                engineer_id=engineer_ids[e],
                engineer_email=f"engineer{e:06d}@provider.example",
                resources=tuple(resources_for(rng, f"{slugs[ti]}.example")),
                access_level="read" if rng.random() < 0.75 else "read_write",
                access_deadline=now + timedelta(minutes=rng.uniform(1, 240)),
            )
        )
    return grants


def make_questions(rng: random.Random, grants: list[Grant], count: int) -> list[Question]:
    """Mostly allowed questions about granted resources; some out of scope, some writes on a
    read grant, some about a tenant the engineer holds nothing on."""
    tenants = sorted({(g.tenant_id, g.tenant) for g in grants})
    out = []
    for _ in range(count):
        g = grants[rng.randrange(len(grants))]
        domain = f"{g.tenant}.example"
        engineer = g.engineer_email if rng.random() < 0.1 else g.engineer_id
        tenant_id, slug = g.tenant_id, g.tenant
        roll = rng.random()
        action = "write" if g.access_level == "read_write" and rng.random() < 0.3 else "read"
        resource = covered(rng, rng.choice(g.resources), domain)
        if roll < 0.08:
            resource = f"exchange/calendar/{mailbox(rng, domain).rsplit('/', 1)[1]}"
        elif roll < 0.14:
            action = "write"
        elif roll < 0.20:
            tenant_id, slug = tenants[rng.randrange(len(tenants))]
        out.append(
            Question(
                engineer=engineer,
                tenant=slug if rng.random() < 0.5 else tenant_id,
                resource=resource,
                action=action,
                engineer_id=g.engineer_id,
                tenant_id=tenant_id,
            )
        )
    return out


def table_of(grants: list[Grant]) -> GrantTable:
    table = GrantTable()
    table.replace_all(grants)
    return table


def table_rate(table: GrantTable, questions: list[Question], rounds: int) -> tuple[float, float]:
    """Median decisions/s over ``rounds`` passes, and the share of questions allowed."""
    decide = table.decide
    now = NOW
    rates = []
    allowed = 0
    for _ in range(rounds):
        allowed = 0
        start = CLOCK()
        for q in questions:
            if decide(
                engineer=q.engineer, tenant=q.tenant, resource=q.resource, action=q.action, now=now
            ).allowed:
                allowed += 1
        rates.append(len(questions) / (CLOCK() - start))
    return statistics.median(rates), allowed / len(questions)


def casbin_enforcer(grants: list[Grant]) -> Any:
    """The same grants as policy lines, one per granted resource."""
    import casbin  # type: ignore[import-untyped]

    model = casbin.model.Model()
    model.load_model_from_text(CASBIN_MODEL)
    enforcer = casbin.Enforcer(model)
    rules = [
        [g.engineer_id, g.tenant_id, resource, g.access_level]
        for g in grants
        for resource in g.resources
    ]
    enforcer.add_policies(rules)
    return enforcer


def casbin_rate(enforcer: Any, questions: list[Question], budget: float) -> tuple[float, int]:
    """Decisions/s over as many questions as fit in ``budget`` seconds (at least 20)."""
    enforce = enforcer.enforce
    done = 0
    start = CLOCK()
    for q in questions:
        enforce(q.engineer_id, q.tenant_id, q.resource, q.action)
        done += 1
        if done >= 20 and CLOCK() - start > budget:
            break
    return done / (CLOCK() - start), done


def agreement(enforcer: Any, table: GrantTable, questions: list[Question]) -> float:
    """How often casbin and the grant table agree (deadlines are all in the future here)."""
    same = 0
    for q in questions:
        ours = table.decide(
            engineer=q.engineer_id,
            tenant=q.tenant_id,
            resource=q.resource,
            action=q.action,
            now=NOW,
        ).allowed
        same += ours == bool(enforcer.enforce(q.engineer_id, q.tenant_id, q.resource, q.action))
    return same / len(questions)


def claims_rate(grants: list[Grant], questions: list[Question], rounds: int) -> float:
    """Decisions from already-verified tokens: a cache hit on the token, then the expiry,
    the tenant and :meth:`AccessClaims.denies` — what a service holding tokens does."""
    by_request: dict[str, AccessClaims] = {}
    by_person: dict[tuple[str, str], str] = {}
    for g in grants:
        token = f"token-{g.request_id}"
        by_request[token] = AccessClaims(
            engineer=g.engineer_id,
            tenant_id=g.tenant_id,
            tenant=g.tenant,
            request_id=g.request_id,
            resources=g.resources,
            access_level=g.access_level,
            audience="mailstore",
            issued_at=NOW - timedelta(minutes=1),
            expires_at=g.access_deadline or NOW,
            jti=g.request_id,
            kid="key_bench",
        )
        by_person.setdefault((g.engineer_id, g.tenant_id), token)
    asked = [
        (by_person.get((q.engineer_id, q.tenant_id), "token-none"), q.tenant, q.resource, q.action)
        for q in questions
    ]
    cache = by_request
    now = NOW
    rates = []
    for _ in range(rounds):
        start = CLOCK()
        for token, tenant, resource, action in asked:
            claims = cache.get(token)
            if claims is None or now >= claims.expires_at or not claims.matches_tenant(tenant):
                continue
            claims.denies(resource, action)
        rates.append(len(asked) / (CLOCK() - start))
    return statistics.median(rates)


def run(ctx: Context) -> list[Row]:
    rng = random.Random(ctx.seed)
    n_questions = ctx.size(100_000, 20_000)
    rounds = ctx.size(5, 3)
    budget = ctx.size(4.0, 1.0)
    sizes = [1_000, 10_000, 100_000]
    rows: list[Row] = []
    grants_by: dict[int, list[Grant]] = {}
    questions_by: dict[int, list[Question]] = {}
    tables: dict[int, GrantTable] = {}
    for size in sizes:
        progress(f"decide: {size:,} grants")
        grants_by[size] = make_grants(random.Random(ctx.seed + size), size, NOW)
        questions_by[size] = make_questions(rng, grants_by[size], n_questions)
        tables[size] = table_of(grants_by[size])
        table_rate(tables[size], questions_by[size][:2_000], 1)  # warm up
    # Round-robin over the sizes (rotating who goes first), so background load falls on all.
    samples: dict[int, list[float]] = {size: [] for size in sizes}
    shares: dict[int, float] = {}
    for r in range(rounds):
        for size in sizes[r % 3 :] + sizes[: r % 3]:
            rate, allowed = table_rate(tables[size], questions_by[size], 1)
            samples[size].append(rate)
            shares[size] = allowed
    rates = {size: statistics.median(v) for size, v in samples.items()}
    progress("decide: " + ", ".join(f"{s:,}: {r:,.0f}/s" for s, r in rates.items()))
    del tables
    casbin_ok = importlib.util.find_spec("casbin") is not None
    for size in (1_000, 10_000):
        grants, questions = grants_by[size], questions_by[size]
        base: float | None = None
        notes = []
        if casbin_ok:
            progress(f"decide: casbin over {size:,} policies")
            enforcer = casbin_enforcer(grants)
            policies = len(enforcer.get_policy())
            base, asked = casbin_rate(enforcer, questions, budget)
            agree = agreement(enforcer, table_of(grants), questions[:200])
            notes.append(
                f"casbin: {policies:,} policy lines (one per granted resource), {asked:,} "
                f"questions timed; agrees with the grant table on {agree:.0%} of 200 questions"
            )
        else:
            notes.append("casbin not installed (pip install -r bench/requirements.txt)")
        notes.append(f"{shares[size]:.0%} of the questions are allowed")
        rows.append(
            Row(
                NAME,
                f"GrantTable.decide, {size:,} grants",
                f"{size:,} grants; {len(questions):,} questions",
                rates[size],
                "/s",
                baseline=base,
                baseline_label="pycasbin enforce over the same grants (keyMatch domain model)",
                target=f">= {TARGET_RATE:,}/s",
                result=verdict(rates[size] >= TARGET_RATE),
                notes=[*notes, CPU_NOTE] if size == 1_000 else notes,
            )
        )
    big, small = rates[100_000], rates[1_000]
    rows.append(
        Row(
            NAME,
            "GrantTable.decide, 100,000 grants (flat?)",
            f"100,000 grants; {n_questions:,} questions",
            big,
            "/s",
            baseline=small,
            baseline_label="the same decisions over 1,000 grants (ratio = flatness)",
            target=f">= {TARGET_RATE:,}/s and >= {FLATNESS}x",
            result=verdict(big >= TARGET_RATE and big / small >= FLATNESS),
        )
    )
    progress("decide: cached verified tokens")
    cached = claims_rate(grants_by[100_000], questions_by[100_000], rounds)
    rows.append(
        Row(
            NAME,
            "cached verified token (claims.denies)",
            f"100,000 cached tokens; {n_questions:,} questions",
            cached,
            "/s",
            baseline=big,
            baseline_label="GrantTable.decide over 100,000 grants",
            target=f">= {TARGET_RATE:,}/s",
            result=verdict(cached >= TARGET_RATE),
        )
    )
    return rows
