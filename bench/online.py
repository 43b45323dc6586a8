"""A database for the live-server benchmarks, anchored at the real clock, with a service token
and check bodies known to allow or to deny.

The servers run on the system clock, so this data is generated around "now"
(live grants end up to four hours from now) rather than around the fixed
instant the in-process benchmarks use. Each body is checked once through the
service layer before the run, so an "allow" body really allows and a "deny"
body really denies (and would write its audit record).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bench.data import People, Shape, covered, load_requests
from lockbox.domain.roles import Principal
from lockbox.service import access, tokens
from lockbox.service.app import Lockbox
from lockbox.store import repositories as repo
from lockbox.store import tables as t
from lockbox.store.db import Database, upgrade


@dataclass
class Online:
    url: str
    people: People
    token: str  # the resource service's API token
    service: Principal
    allow: list[dict[str, Any]]
    deny: list[dict[str, Any]]


def prepare(url: str, shape: Shape, seed: int, bodies: int = 200) -> Online:
    now = datetime.now(UTC).replace(microsecond=0)
    db = Database(url)
    try:
        upgrade(db)
        people = load_requests(db, shape, now)
        app = Lockbox(db)
        with app.read() as tx:
            user = repo.get_user(tx.conn, people.service_id)
        assert user is not None
        service = user.principal()
        secret = tokens.create_token(app, service, name="bench").secret
        allow, deny = _bodies(app, service, people, random.Random(seed), now, bodies)
    finally:
        db.dispose()
    return Online(url, people, secret, service, allow, deny)


def _bodies(
    app: Lockbox,
    service: Principal,
    people: People,
    rng: random.Random,
    now: datetime,
    count: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    tenants = {x.id: x for x in people.tenants}
    emails = dict(people.engineers)
    c = t.access_requests.c
    with app.read() as tx:
        live = tx.conn.execute(
            select(c.requester_id, c.tenant_id, c.resources, c.access_level)
            .where(c.state == "approved", c.access_deadline > now + timedelta(minutes=30))
            .order_by(c.id)
        ).all()
        ended = tx.conn.execute(
            select(c.requester_id, c.tenant_id, c.resources)
            .where(c.state.in_(["closed", "access_ended", "revoked"]))
            .order_by(c.created_at.desc())
            .limit(count * 5)
        ).all()

    def body(engineer: str, tenant_id: str, resource: str, action: str) -> dict[str, Any]:
        tenant = tenants[tenant_id]
        return {
            "engineer": emails[engineer] if rng.random() < 0.3 else engineer,
            "tenant": tenant.slug if rng.random() < 0.5 else tenant.id,
            "resource": resource,
            "action": action,
        }

    allow_candidates = []
    for engineer, tenant_id, resources, level in live:
        domain = tenants[tenant_id].domain
        action = "write" if level == "read_write" and rng.random() < 0.3 else "read"
        allow_candidates.append(
            body(engineer, tenant_id, covered(rng, rng.choice(resources), domain), action)
        )
    deny_candidates = []
    for i, (engineer, tenant_id, resources, level) in enumerate(live):
        domain = tenants[tenant_id].domain
        if i % 2 == 0:  # a resource the grant does not name
            resource = f"exchange/calendar/user{rng.randrange(5000):04d}@{domain}"
            deny_candidates.append(body(engineer, tenant_id, resource, "read"))
        elif level == "read":  # writing under a read grant
            deny_candidates.append(
                body(engineer, tenant_id, covered(rng, resources[0], domain), "write")
            )
    for engineer, tenant_id, resources in ended:  # access that has ended
        deny_candidates.append(
            body(engineer, tenant_id, covered(rng, resources[0], tenants[tenant_id].domain), "read")
        )
    rng.shuffle(allow_candidates)
    rng.shuffle(deny_candidates)
    return (
        _answering(app, service, allow_candidates, True, count),
        _answering(app, service, deny_candidates, False, count),
    )


def _answering(
    app: Lockbox, service: Principal, candidates: list[dict[str, Any]], allowed: bool, count: int
) -> list[dict[str, Any]]:
    chosen = []
    for b in candidates:
        if access.check(app, service, **b).allowed == allowed:
            chosen.append(b)
            if len(chosen) == count:
                break
    if not chosen:
        raise RuntimeError(f"no check body answers allowed={allowed}")
    return chosen
