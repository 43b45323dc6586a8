"""One decision wins: concurrent decisions on one request leave exactly one outcome.

Threads (and, once, real processes) are lined up with a barrier and fire at the
same moment, on SQLite and on PostgreSQL. Every loser must get a clear
Conflict, or InvalidTransition if it loaded the request after the winner
committed; the audit chain must still verify and hold exactly one decision.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from lockbox.clock import ManualClock
from lockbox.domain.errors import Conflict, InvalidTransition, LockboxError
from lockbox.domain.lifecycle import State
from lockbox.domain.roles import Principal
from lockbox.service import requests, sweeper
from lockbox.service.app import Lockbox
from tests.conftest import World
from tests.integration.concurrency_workers import decide_in_process
from tests.integration.helpers import (
    approved,
    chains_ok,
    operations,
    pending_approval,
    set_policy,
    stored,
)

N = 8
DECISIONS = {
    "request.approve",
    "request.deny",
    "request.expire",
    "request.close",
    "request.revoke",
    "request.end_access",
    "request.cancel",
}


@dataclass
class Outcome:
    label: str
    result: object = None
    error: BaseException | None = None


def race(jobs: list[tuple[str, Callable[[], object]]]) -> list[Outcome]:
    """Run every job at the same instant in its own thread; collect results and errors."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[Outcome] = [Outcome(label) for label, _ in jobs]

    def run(index: int, job: Callable[[], object]) -> None:
        barrier.wait(timeout=30)
        try:
            outcomes[index].result = job()
        except BaseException as exc:
            outcomes[index].error = exc

    threads = [
        threading.Thread(target=run, args=(i, job), daemon=True) for i, (_, job) in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a racing thread hung"
    for outcome in outcomes:
        if outcome.error is not None and not isinstance(outcome.error, LockboxError):
            raise AssertionError(f"{outcome.label} crashed") from outcome.error
    return outcomes


def assert_losers_clear(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if outcome.error is not None:
            assert isinstance(outcome.error, Conflict | InvalidTransition), outcome
            assert str(outcome.error)


def decision_ops(app: Lockbox, tenant_id: str, request_id: str) -> list[str]:
    return [op for op in operations(app, tenant_id, request_id) if op in DECISIONS]


def test_approve_vs_deny(world: World) -> None:
    app = world.app
    req = pending_approval(world)
    deciders = [world.contoso_approver, world.contoso_approver2, world.contoso_admin]
    jobs: list[tuple[str, Callable[[], object]]] = []
    for i in range(N):
        actor, approve = deciders[i % len(deciders)], i % 2 == 0
        jobs.append(
            (
                f"{'approve' if approve else 'deny'}-{i}",
                lambda a=actor, ok=approve: requests.decide_request(app, a, req.id, approve=ok),
            )
        )
    outcomes = race(jobs)
    winners = [o for o in outcomes if o.error is None]
    assert len(winners) == 1, outcomes
    assert_losers_clear(outcomes)
    final = stored(app, req.id)
    expected = State.APPROVED if winners[0].label.startswith("approve") else State.DENIED
    assert final.state is expected
    assert final.version == req.version + 1
    assert len(final.decisions) == 1
    ops = decision_ops(app, world.contoso, req.id)
    assert ops == ["request.approve" if expected is State.APPROVED else "request.deny"]
    assert chains_ok(app)


def test_approve_vs_sweeper_expiry(world: World) -> None:
    req = pending_approval(world)
    assert req.approval_deadline is not None
    # The approvers' clock reads one second before the deadline, the sweepers' at it:
    # each side is entitled to act, and only one may.
    approvers_app = Lockbox(world.app.db, ManualClock(req.approval_deadline - timedelta(seconds=1)))
    sweepers_app = Lockbox(world.app.db, ManualClock(req.approval_deadline))
    deciders = [world.contoso_approver, world.contoso_approver2, world.contoso_admin]
    jobs: list[tuple[str, Callable[[], object]]] = []
    for i in range(N):
        if i % 2:
            jobs.append(("sweep", lambda: sweeper.sweep_deadlines(sweepers_app)))
        else:
            actor = deciders[i % len(deciders)]
            jobs.append(
                (
                    "approve",
                    lambda a=actor: requests.decide_request(approvers_app, a, req.id, approve=True),
                )
            )
    outcomes = race(jobs)
    assert_losers_clear(outcomes)
    approvals = [o for o in outcomes if o.label == "approve" and o.error is None]
    expiries = sum(
        o.result.expired  # type: ignore[attr-defined]
        for o in outcomes
        if o.label == "sweep" and o.error is None
    )
    assert all(o.error is None for o in outcomes if o.label == "sweep")  # sweepers never fail
    assert len(approvals) + expiries == 1, outcomes
    final = stored(world.app, req.id)
    ops = decision_ops(world.app, world.contoso, req.id)
    if approvals:
        assert final.state is State.APPROVED
        assert ops == ["request.approve"]
    else:
        assert final.state is State.EXPIRED
        assert ops == ["request.expire"]
    # Idempotent afterwards: nothing more to record.
    assert sweeper.sweep_deadlines(sweepers_app).expired == 0
    assert chains_ok(world.app)


def test_revoke_vs_close(world: World) -> None:
    app = world.app
    req = approved(world)
    before = decision_ops(app, world.contoso, req.id)
    assert before == ["request.approve"]
    closers = [world.engineer, world.manager]
    revokers = [world.contoso_approver, world.contoso_admin]
    jobs: list[tuple[str, Callable[[], object]]] = []
    for i in range(N):
        if i % 2:
            a = closers[i // 2 % 2]
            jobs.append(("close", lambda a=a: requests.close_request(app, a, req.id)))
        else:
            a = revokers[i // 2 % 2]
            jobs.append(("revoke", lambda a=a: requests.revoke_request(app, a, req.id)))
    outcomes = race(jobs)
    winners = [o for o in outcomes if o.error is None]
    assert len(winners) == 1, outcomes
    assert_losers_clear(outcomes)
    final = stored(app, req.id)
    assert final.state is (State.CLOSED if winners[0].label == "close" else State.REVOKED)
    ops = decision_ops(app, world.contoso, req.id)
    assert ops == [*before, f"request.{winners[0].label}"]
    assert chains_ok(app)


@pytest.mark.parametrize("with_version", [False, True], ids=["plain", "if-match"])
def test_approvals_arriving_together_all_count(world: World, with_version: bool) -> None:
    """Three approvals required, three approvers approve at the same instant, each having
    seen the same version (If-Match): every one counts, none is told to try again."""
    app = world.app
    set_policy(world, required_approvals=3)
    req = pending_approval(world)
    seen = req.version if with_version else None
    actors = [world.contoso_approver, world.contoso_approver2, world.contoso_admin]
    outcomes = race(
        [
            (
                a.id,
                lambda a=a: requests.decide_request(
                    app, a, req.id, approve=True, expected_version=seen
                ),
            )
            for a in actors
        ]
    )
    assert [o.error for o in outcomes] == [None, None, None]
    final = stored(app, req.id)
    assert final.state is State.APPROVED
    assert {d.actor_id for d in final.decisions} == {a.id for a in actors}
    assert final.version == req.version + 3
    assert decision_ops(app, world.contoso, req.id).count("request.approve") == 3
    assert chains_ok(app)


def test_a_decision_on_a_request_that_moved_on_is_still_a_conflict(world: World) -> None:
    """Tolerance covers other approvals only: once the request was decided (or is in
    another state), a decision made on an older version must be reloaded."""
    app = world.app
    req = pending_approval(world)
    requests.decide_request(app, world.contoso_approver, req.id, approve=True)
    with pytest.raises((Conflict, InvalidTransition)):
        requests.decide_request(
            app, world.contoso_approver2, req.id, approve=False, expected_version=req.version
        )
    with pytest.raises(Conflict):  # a version the request never had while pending
        requests.decide_request(
            app, world.contoso_approver2, req.id, approve=True, expected_version=req.version - 1
        )
    assert stored(app, req.id).state is State.APPROVED


def test_many_requests_in_parallel_keep_one_chain(world: World) -> None:
    """Independent changes on one tenant from many threads: the chain never forks."""
    app = world.app
    reqs = [pending_approval(world) for _ in range(4)]
    jobs: list[tuple[str, Callable[[], object]]] = [
        (
            r.id,
            lambda r=r: requests.decide_request(app, world.contoso_approver, r.id, approve=True),
        )
        for r in reqs
    ]
    outcomes = race(jobs)
    assert_losers_clear(outcomes)
    won = [o for o in outcomes if o.error is None]
    assert won  # at least some went through
    for o in outcomes:
        state = stored(app, o.label).state
        assert state is (State.APPROVED if o.error is None else State.PENDING_APPROVAL)
    assert chains_ok(app)


def test_processes_approve_vs_deny(world: World) -> None:
    app = world.app
    req = pending_approval(world)
    ctx = multiprocessing.get_context("spawn")
    deciders: list[Principal] = [
        world.contoso_approver,
        world.contoso_approver2,
        world.contoso_admin,
        world.contoso_approver,
    ]
    barrier = ctx.Barrier(len(deciders))
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=decide_in_process,
            args=(app.db.url, world.clock.now(), actor, req.id, i % 2 == 0, barrier, results),
        )
        for i, actor in enumerate(deciders)
    ]
    for proc in procs:
        proc.start()
    outcomes = []
    try:
        for _ in procs:
            outcomes.append(results.get(timeout=120))
    except queue.Empty:
        raise AssertionError(f"a process did not report: {outcomes}") from None
    finally:
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
    assert not [o for o in outcomes if o[0] == "crashed"], outcomes
    won = [o for o in outcomes if o[0] == "won"]
    assert len(won) == 1, outcomes
    assert {o[2] for o in outcomes if o[0] == "lost"} <= {"Conflict", "InvalidTransition"}
    final = stored(app, req.id)
    assert final.state is (State.APPROVED if won[0][2] else State.DENIED)
    assert len(decision_ops(app, world.contoso, req.id)) == 1
    assert chains_ok(app)
