"""Property-based: random intents by random (often wrong) actors, with clock jumps and policy
changes, through the service layer on a fresh SQLite file per example; after every step
every invariant of DESIGN.md must hold.

Invariants checked after each step:
- bounded access: ``check_access`` never allows outside approved / the access deadline /
  the named resources / the granted level, nor without the customer's approvals
  (or a manager's review with the lockbox off) recorded in the audit log;
- terminal states never change;
- tenant isolation: the other tenant's principals get NotFound and never list it;
- separation of duties, read back from the audit log;
- every tenant's audit chain verifies, and every stored state change of a request has
  exactly one audit record (their count equals the request's version, and their
  from/to states link up to the stored state);
- listed (effective) states agree with the domain's ``effective_state``.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from lockbox.clock import ManualClock
from lockbox.domain import request as domain
from lockbox.domain.audit import verify_chain
from lockbox.domain.errors import LockboxError, NotFound
from lockbox.domain.lifecycle import State
from lockbox.domain.request import AccessRequest
from lockbox.domain.resources import AccessLevel, Action, covers
from lockbox.domain.roles import Principal, Role, Side
from lockbox.service import cases, requests, sweeper, tenants
from lockbox.service.app import Lockbox
from lockbox.store import repositories as repo
from lockbox.store import tables as t
from lockbox.store.db import Database, upgrade
from tests.conftest import PRINCIPAL_NAMES, make_world

START = ManualClock().now()
OPEN = (State.PENDING_REVIEW, State.PENDING_APPROVAL, State.APPROVED)
ACTORS = list(PRINCIPAL_NAMES)
RESOURCES = [
    ["exchange/mailbox/alice@contoso.com"],
    ["exchange/mailbox/*"],
    ["files/share/q3", "exchange/mailbox/bob@contoso.com"],
    ["exchange/*/x"],  # invalid
]
PROBES = [
    "exchange/mailbox/alice@contoso.com",
    "exchange/mailbox/bob@contoso.com",
    "exchange/mailbox/alice@contoso.com/inbox",
    "exchange/mailboxes/alice",
    "files/share/q3",
    "files/share/q4",
]
JUMPS = [timedelta(seconds=1), timedelta(minutes=20), timedelta(hours=1), timedelta(hours=4)]


class Machine(RuleBasedStateMachine):
    template: Path  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="lockbox-prop-"))
        path = self.dir / "lockbox.db"
        shutil.copy(self.template, path)
        self.db = Database(f"sqlite:///{path}")
        self.clock = ManualClock(START)
        self.app = Lockbox(self.db, self.clock)
        self.p: dict[str, Principal] = dict(PRINCIPALS)
        self.tenant_of = dict(TENANT_IDS)
        self.cases: list[str] = []
        self.requests: list[str] = []
        self.terminal: dict[str, tuple[State, int]] = {}

    def teardown(self) -> None:
        self.db.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers -----------------------------------------------------------------------

    def attempt(self, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except LockboxError:
            return None  # a refusal is a fine outcome; the invariants decide if it was right

    def pick(self, items: list[str], index: int) -> str:
        return items[index % len(items)]

    def choose(self, index: int, *states: State) -> str:
        """A request, preferring (when ``index`` is even) one whose stored state is in ``states``."""
        candidates = self.requests
        if index % 2 == 0:
            with self.app.read() as tx:
                c = t.access_requests.c
                query = select(c.id).where(c.state.in_([s.value for s in states])).order_by(c.id)
                fitting = [row[0] for row in tx.conn.execute(query)]
            candidates = fitting or candidates
        return candidates[index // 2 % len(candidates)]

    def actor_for(self, who: str, request_id: str, n: int) -> Principal:
        """Resolve 'requester' / 'tenant_approver' against the request; other names directly."""
        if who not in ("requester", "tenant_approver"):
            return self.p[who]
        with self.app.read() as tx:
            req = repo.get_request(tx.conn, request_id)
        assert req is not None
        if who == "requester":
            return next(p for p in self.p.values() if p.id == req.requester_id)
        names = (
            ["contoso_approver", "contoso_approver2", "contoso_admin"]
            if req.tenant_id == self.tenant_of["contoso"]
            else ["fabrikam_approver", "fabrikam_admin"]
        )
        return self.p[names[n % len(names)]]

    # -- intents -----------------------------------------------------------------------

    @rule(
        who=st.sampled_from(["case_engineer"] * 20 + ACTORS),
        case=st.integers(0, 50),
        new_case=st.sampled_from([False, False, False, True]),
        tenant=st.sampled_from(["contoso", "contoso", "fabrikam", "other"]),
        resources=st.sampled_from(RESOURCES[:3] * 3 + RESOURCES[3:]),
        level=st.sampled_from(["read", "read_write"] * 3 + ["admin"]),
        n=st.integers(0, 2),
    )
    def submit(
        self,
        who: str,
        case: int,
        new_case: bool,
        tenant: str,
        resources: list[str],
        level: str,
        n: int,
    ) -> None:
        """Open a case (by one of the engineers) if asked or none is open, then submit on one."""
        if new_case or not self.cases:
            opener = self.p[["engineer", "engineer2", "manager2"][n]]
            slug = "contoso" if tenant == "other" else tenant
            opened = self.attempt(cases.open_case, self.app, opener, tenant=slug, title="t")
            if opened is None:
                return
            self.cases.append(opened.id)
            case_id = opened.id
        else:
            case_id = self.pick(self.cases, case)
        with self.app.read() as tx:
            stored = repo.get_case(tx.conn, case_id)
        assert stored is not None
        actor = (
            next(p for p in self.p.values() if p.id == stored.engineer_id)
            if who == "case_engineer"
            else self.p[who]
        )
        slug = next(s for s, i in self.tenant_of.items() if i == stored.tenant_id)
        if tenant == "other":
            slug = "fabrikam" if slug == "contoso" else "contoso"
        req = self.attempt(
            requests.submit_request,
            self.app,
            actor,
            tenant=slug,
            case_id=case_id,
            resources=resources,
            access_level=level,
            justification="why",
        )
        if req is not None:
            self.requests.append(req.id)

    @precondition(lambda self: self.requests)
    @rule(
        who=st.sampled_from(["manager", "manager2"] * 8 + ACTORS),
        req=st.integers(0, 50),
        approve=st.sampled_from([True, True, True, False]),
    )
    def review(self, who: str, req: int, approve: bool) -> None:
        rid = self.choose(req, State.PENDING_REVIEW)
        self.attempt(requests.review_request, self.app, self.p[who], rid, approve=approve)

    @precondition(lambda self: self.requests)
    @rule(
        who=st.sampled_from(["tenant_approver"] * 16 + ACTORS),
        req=st.integers(0, 50),
        approve=st.sampled_from([True, True, True, False]),
        n=st.integers(0, 2),
    )
    def decide(self, who: str, req: int, approve: bool, n: int) -> None:
        rid = self.choose(req, State.PENDING_APPROVAL)
        actor = self.actor_for(who, rid, n)
        self.attempt(requests.decide_request, self.app, actor, rid, approve=approve)

    @precondition(lambda self: self.requests)
    @rule(
        action=st.sampled_from(["cancel", "close", "close", "revoke", "revoke", "close_case"]),
        who=st.sampled_from(["requester"] * 6 + ["tenant_approver"] * 6 + ACTORS),
        req=st.integers(0, 50),
        n=st.integers(0, 2),
    )
    def end(self, action: str, who: str, req: int, n: int) -> None:
        rid = self.choose(req, State.APPROVED, State.PENDING_APPROVAL)
        actor = self.actor_for(who, rid, n)
        if action == "close_case":
            with self.app.read() as tx:
                found = repo.get_request(tx.conn, rid)
            assert found is not None
            self.attempt(cases.close_case, self.app, actor, found.case_id)
            return
        fn = {
            "cancel": requests.cancel_request,
            "close": requests.close_request,
            "revoke": requests.revoke_request,
        }[action]
        self.attempt(fn, self.app, actor, rid)

    @precondition(lambda self: self.requests)
    @rule(
        what=st.sampled_from([*JUMPS, "deadline", "deadline", "sweep", "sweep"]),
        req=st.integers(0, 50),
        offset=st.sampled_from([-1, 0, 1]),
    )
    def time_passes(self, what: timedelta | str, req: int, offset: int) -> None:
        """Clock jumps (to a request's deadline, or by a fixed step) and sweeper runs."""
        if isinstance(what, timedelta):
            self.clock.advance(what)
        elif what == "sweep":
            sweeper.sweep_deadlines(self.app)
            assert sweeper.sweep_deadlines(self.app).expired == 0  # idempotent
        elif self.requests:
            with self.app.read() as tx:
                found = repo.get_request(tx.conn, self.choose(req, *OPEN))
            assert found is not None
            deadline = found.stage_deadline()
            if deadline is not None:
                target = deadline + timedelta(seconds=offset)
                if target > self.clock.now():
                    self.clock.set(target)

    @precondition(lambda self: self.requests)
    @rule(
        who=st.sampled_from(["contoso_admin", "contoso_admin", "fabrikam_admin", "manager"]),
        tenant=st.sampled_from(["contoso", "fabrikam"]),
        enabled=st.sampled_from([True, True, False]),
        approvals=st.integers(0, 3),
        window=st.sampled_from([timedelta(minutes=30), timedelta(hours=4), timedelta(hours=12)]),
    )
    def change_policy(
        self, who: str, tenant: str, enabled: bool, approvals: int, window: timedelta
    ) -> None:
        changes = {"enabled": enabled, "required_approvals": approvals, "access_window": window}
        self.attempt(tenants.change_policy, self.app, self.p[who], tenant, changes)

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def invariants_hold(self) -> None:
        now = self.clock.now()
        with self.app.read() as tx:
            rows = tx.conn.execute(select(t.access_requests)).mappings().all()
            stored = {r.id: r for r in repo._requests(tx.conn, list(rows))}
            audit_by_tenant = {}
            for tenant_id in self.tenant_of.values():
                chain = list(repo.iter_audit(tx.conn, tenant_id))
                report = verify_chain(tenant_id, chain, head=repo.audit_head(tx.conn, tenant_id))
                assert report.ok, report
                audit_by_tenant[tenant_id] = chain
        assert set(stored) == set(self.requests)
        customers = {p.id: p.tenant_id for p in self.p.values() if p.side is Side.CUSTOMER}
        managers = {p.id for p in self.p.values() if Role.MANAGER in p.roles}
        listed = {
            v.request.id: v.state
            for v in requests.list_requests(self.app, self.p["manager"], limit=200).items
        }
        for rid, req in stored.items():
            history = [
                a
                for a in audit_by_tenant[req.tenant_id]
                if a.request_id == rid and a.operation.startswith("request.")
            ]
            # one audit record per stored change, linking up to the stored state
            assert len(history) == req.version, (rid, [h.operation for h in history])
            assert history[0].details["from"] is None
            for before, after in itertools.pairwise(history):
                assert after.details["from"] == before.details["to"]
            assert history[-1].details["to"] == req.state.value
            # no record of this request in the other tenant's chain
            for tenant_id, chain in audit_by_tenant.items():
                if tenant_id != req.tenant_id:
                    assert not any(a.request_id == rid for a in chain)
            # separation of duties, read back from the log
            for a in history:
                if a.operation.startswith("request.review_"):
                    assert a.actor_id in managers and a.actor_id != req.requester_id
                if a.operation in ("request.approve", "request.deny", "request.revoke"):
                    assert customers.get(a.actor_id) == req.tenant_id
                if a.operation in ("request.submit", "request.cancel"):
                    assert a.actor_id == req.requester_id
                if a.operation in ("request.expire", "request.end_access"):
                    assert a.actor_kind == "system"
            # terminal states never change
            if rid in self.terminal:
                assert (req.state, req.version) == self.terminal[rid]
            elif req.state.terminal:
                self.terminal[rid] = (req.state, req.version)
            # effective state, as listed
            assert listed[rid] is req.effective_state(now)
            self.check_bounded_access(req, history, customers, now)
            # tenant isolation
            foreign = (
                "fabrikam_admin" if req.tenant_id == self.tenant_of["contoso"] else "contoso_admin"
            )
            with pytest.raises(NotFound):
                requests.get_request(self.app, self.p[foreign], rid, history=False)
        self.check_listing_by_state(stored, now)
        for slug, other in (("contoso", "fabrikam_approver"), ("fabrikam", "contoso_approver")):
            seen = requests.list_requests(self.app, self.p[other], limit=200).items
            assert all(v.request.tenant_id != self.tenant_of[slug] for v in seen)

    def check_listing_by_state(self, stored: dict[str, AccessRequest], now: Any) -> None:
        """A tenant's list filtered by (effective) states, walked page by page with small
        pages, is exactly its requests in those states, newest first, each once: the
        listing merges one index range per stored state."""
        subsets = [
            *[(s,) for s in State],
            (State.PENDING_REVIEW, State.PENDING_APPROVAL),
            (State.EXPIRED, State.ACCESS_ENDED, State.APPROVED, State.EXPIRED),
        ]
        viewer = self.p["contoso_admin"]
        tenant_id = self.tenant_of["contoso"]
        for subset in subsets:
            expected = sorted(
                (
                    r
                    for r in stored.values()
                    if r.tenant_id == tenant_id and r.effective_state(now) in subset
                ),
                key=lambda r: (r.created_at, r.id),
                reverse=True,
            )
            walked: list[str] = []
            cursor = None
            for _ in range(len(expected) + 2):
                page = requests.list_requests(
                    self.app, viewer, states=[s.value for s in subset], limit=2, cursor=cursor
                )
                walked += [v.request.id for v in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert walked == [r.id for r in expected], subset

    def check_bounded_access(
        self, req: AccessRequest, history: list[Any], customers: dict[str, str | None], now: Any
    ) -> None:
        for who in ("engineer", "engineer2", "manager2"):
            engineer = self.p[who]
            for resource in PROBES:
                for action in Action:
                    decision = domain.check_access(req, engineer.id, resource, action, now)
                    if not decision.allowed:
                        continue
                    assert req.state is State.APPROVED
                    assert req.access_deadline is not None and now < req.access_deadline
                    assert req.approved_at is not None and req.approved_at <= now
                    assert engineer.id == req.requester_id
                    assert any(covers(g, resource) for g in req.resources)
                    assert action is Action.READ or req.access_level is AccessLevel.READ_WRITE
                    lockbox_off = any(
                        a.operation == "request.review_approve"
                        and a.details.get("lockbox") == "off"
                        for a in history
                    )
                    approvers = {
                        a.actor_id
                        for a in history
                        if a.operation == "request.approve"
                        and customers.get(a.actor_id) == req.tenant_id
                    }
                    assert lockbox_off or len(approvers) >= max(req.required_approvals, 1)


PRINCIPALS: dict[str, Principal] = {}
TENANT_IDS: dict[str, str] = {}


def test_random_intents_never_break_an_invariant(tmp_path: Path) -> None:
    template = tmp_path / "world.db"
    db = Database(f"sqlite:///{template}")
    try:
        upgrade(db)
        world = make_world(Lockbox(db, ManualClock(START)), ManualClock(START))
    finally:
        db.dispose()
    PRINCIPALS.clear()
    PRINCIPALS.update({name: getattr(world, name) for name in ACTORS})
    TENANT_IDS.clear()
    TENANT_IDS.update(contoso=world.contoso, fabrikam=world.fabrikam)
    Machine.template = template
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
