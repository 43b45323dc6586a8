"""Three races the lock order of DESIGN.md closes, proven by forcing them and by repetition.

* submit vs close_case: submit row-locks the case, so a request is never inserted on a
  case that a concurrent close_case has already swept (it would survive as pending);
* close_case vs a transition: close_case locks case → request rows → audit head, the
  order every transition uses (request row → audit head), so the two never deadlock;
* two creations of one address in different case: the unique ``email_key`` lets only
  one of them commit.

The first group forces the dangerous interleaving on PostgreSQL (SQLite's
``BEGIN IMMEDIATE`` serialises writers, so there is nothing to interleave): thread A
runs one use case on its own engine and is held by an ``after_cursor_execute`` hook
right after a chosen statement; thread B runs the other use case on another engine;
A is released once B has finished or is seen in ``pg_stat_activity`` waiting on a
lock. Every wait is bounded (and each racing connection has a ``lock_timeout``), so a
broken lock order fails the test instead of hanging it.

The second group repeats each pair many times from two spawned processes lined up on
a barrier, on SQLite and PostgreSQL, checking the invariants after every round: no
open request on a closed case, no error caused by a deadlock (each worker reports the
SQLSTATEs behind its error), one user per address, an intact audit chain. The close
side is held back by 0-3 extra round trips in turn, so that both orders and the
overlaps between them occur. On SQLite these are regression guards: its writers were
serialised before the fix too.
"""

from __future__ import annotations

import multiprocessing
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, func, select, text

from lockbox.clock import Clock
from lockbox.domain.case import CaseStatus
from lockbox.domain.errors import AlreadyExists, Conflict, InvalidTransition, ValidationError
from lockbox.domain.lifecycle import State
from lockbox.domain.request import AccessRequest
from lockbox.domain.roles import Principal
from lockbox.service import cases, requests, users
from lockbox.service.app import Lockbox
from lockbox.store import repositories as repo
from lockbox.store import tables as t
from lockbox.store.db import Database
from tests.conftest import World
from tests.integration.helpers import approved, chains_ok, pending_approval, stored
from tests.integration.integrity_workers import (
    DEADLOCK,
    MAILBOX,
    Job,
    Report,
    causes_of,
    serve,
)

#: Upper bound of each wait of the interleaving tests (to reach the pause point, for B
#: to finish or block; twice that to join the threads).
WAIT_S = 15.0
#: How often the interleaving tests look at the threads and at pg_stat_activity.
POLL_S = 0.005
#: Server-side bound of every lock wait of a racing connection: a lock that is never
#: released fails the statement (55P03) instead of hanging the test run.
LOCK_TIMEOUT = "30s"
#: Rounds of each process race, per database.
ROUNDS = 15

postgres_only = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


# -- forced interleavings (PostgreSQL) ------------------------------------------------


class Racer:
    """A Lockbox on its own engine, as a second server process would have, whose backend
    pids are known (to watch them in ``pg_stat_activity``) and which can be paused."""

    def __init__(self, url: str, clock: Clock) -> None:
        self.db = Database(url)
        self.app = Lockbox(self.db, clock)
        self.pids: set[int] = set()
        event.listen(self.db.engine, "connect", _bound_lock_waits)
        event.listen(self.db.engine, "before_cursor_execute", self._note_pid)

    def _note_pid(self, _conn: Connection, cursor: Any, *_args: Any) -> None:
        self.pids.add(int(cursor.connection.info.backend_pid))

    def pause_after(self, pattern: str) -> Pause:
        return Pause(self.db.engine, pattern)


def _bound_lock_waits(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    cursor.close()
    dbapi_conn.commit()


class Pause:
    """Holds the thread that runs the first statement matching ``pattern`` right after it
    (its transaction still open, its locks held) until :meth:`release`."""

    def __init__(self, engine: Engine, pattern: str) -> None:
        self.pattern = re.compile(pattern, re.DOTALL)
        self.reached = threading.Event()
        self._released = threading.Event()
        self._fired = False
        event.listen(engine, "after_cursor_execute", self._after)

    def _after(self, _conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if self._fired or not self.pattern.search(statement):
            return
        self._fired = True
        self.reached.set()
        if not self._released.wait(3 * WAIT_S):  # a last resort: interleave() releases it
            raise AssertionError(f"paused after {self.pattern.pattern!r} and never released")

    def release(self) -> None:
        self._released.set()


@dataclass
class Outcome:
    label: str
    result: Any = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def deadlocked(self) -> bool:
        return DEADLOCK in causes_of(self.error)

    def describe(self) -> str:
        if self.error is None:
            return f"{self.label}: ok"
        return f"{self.label}: {self.error!r} (causes {causes_of(self.error)})"


def _start(label: str, job: Callable[[], Any]) -> tuple[Outcome, threading.Thread]:
    outcome = Outcome(label)

    def run() -> None:
        try:
            outcome.result = job()
        except BaseException as exc:
            outcome.error = exc
        finally:
            outcome.done.set()

    thread = threading.Thread(target=run, name=label, daemon=True)
    thread.start()
    return outcome, thread


def waiting_on_lock(monitor: Engine, pids: set[int]) -> bool:
    """Whether any of ``pids`` is blocked on a heavyweight lock (row, xid, relation).

    Each call is its own transaction: pg_stat_activity is a snapshot taken once per
    transaction.
    """
    if not pids:
        return False
    with monitor.connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE pid = ANY(:pids) AND wait_event_type = 'Lock'"
            ),
            {"pids": sorted(pids)},
        ).scalar_one()
    return bool(waiting)


@dataclass
class Interleaving:
    first: Outcome
    second: Outcome
    second_waited: bool  # B was seen blocked on a lock while A was paused

    def describe(self) -> str:
        return f"{self.first.describe()}; {self.second.describe()}; B waited: {self.second_waited}"


def interleave(
    monitor: Engine,
    first: tuple[str, Callable[[], Any]],
    pause: Pause,
    second: tuple[str, Callable[[], Any]],
    second_racer: Racer,
) -> Interleaving:
    """Run ``first`` until ``pause``; then ``second`` until it ends or blocks on a lock;
    then let ``first`` go, and wait for both."""
    a, a_thread = _start(*first)
    threads = [a_thread]
    waited = False
    try:
        deadline = time.monotonic() + WAIT_S
        while not pause.reached.wait(POLL_S):
            assert not a.done.is_set(), f"A ended before the pause point: {a.describe()}"
            assert time.monotonic() < deadline, "A never reached the pause point"
        b, b_thread = _start(*second)
        threads.append(b_thread)
        deadline = time.monotonic() + WAIT_S
        # Until B is done or blocked; waiting for B's "done" is the poll interval.
        while not b.done.wait(POLL_S):
            if waiting_on_lock(monitor, second_racer.pids):
                waited = True
                break
            assert time.monotonic() < deadline, "B neither finished nor blocked on a lock"
    finally:
        pause.release()
    for thread in threads:
        thread.join(timeout=2 * WAIT_S)
        assert not thread.is_alive(), f"{thread.name} hung"
    return Interleaving(a, b, waited)


@pytest.fixture
def racers(world: World) -> Iterator[tuple[Racer, Racer]]:
    """Two Lockboxes on separate engines of the world's database, with the world's clock."""
    pair = (Racer(world.app.db.url, world.clock), Racer(world.app.db.url, world.clock))
    yield pair
    for racer in pair:
        racer.db.dispose()


def open_requests(app: Lockbox, case_id: str) -> list[AccessRequest]:
    with app.read() as tx:
        return repo.open_requests_for_case(tx.conn, case_id)


def case_status(app: Lockbox, case_id: str) -> CaseStatus:
    with app.read() as tx:
        case = repo.get_case(tx.conn, case_id)
    assert case is not None
    return case.status


def requests_on(app: Lockbox, case_id: str) -> list[AccessRequest]:
    with app.read() as tx:
        rows = tx.conn.execute(
            select(t.access_requests.c.id).where(t.access_requests.c.case_id == case_id)
        )
        ids = [row[0] for row in rows]
    return [stored(app, request_id) for request_id in ids]


def users_with_address(app: Lockbox, address: str) -> int:
    """Users whose address is ``address`` in any case (by ``lower(email)``, not by the
    ``email_key`` under test, so that the count means the same on the old schema)."""
    with app.read() as tx:
        return int(
            tx.conn.execute(
                select(func.count())
                .select_from(t.users)
                .where(func.lower(t.users.c.email) == address.lower())
            ).scalar_one()
        )


@postgres_only
def test_submit_holding_the_case_makes_close_case_wait_and_end_the_request(
    world: World, racers: tuple[Racer, Racer]
) -> None:
    """Submit is paused right after reading the case; close_case runs meanwhile.

    Before the fix submit read the case without a lock: close_case went straight
    through, found no request to end and committed; submit then inserted its request
    on the closed case, where it stayed pending. Now close_case blocks on the case row
    until submit commits and then ends the new request.
    """
    a, b = racers
    case = cases.open_case(world.app, world.engineer, tenant="contoso", title="Mailbox broken")
    run = interleave(
        world.app.db.engine,
        (
            "submit",
            lambda: requests.submit_request(
                a.app,
                world.engineer,
                tenant="contoso",
                case_id=case.id,
                resources=[MAILBOX],
                access_level="read",
                justification="Need to inspect the mailbox",
            ),
        ),
        a.pause_after(r"^\s*SELECT\b.*\bFROM cases\b"),
        ("close_case", lambda: cases.close_case(b.app, world.engineer, case.id)),
        b,
    )
    assert run.first.error is None and run.second.error is None, run.describe()
    request: AccessRequest = run.first.result
    assert case_status(world.app, case.id) is CaseStatus.CLOSED
    assert open_requests(world.app, case.id) == [], (
        "a request survived on the closed case: " + run.describe()
    )
    assert stored(world.app, request.id).state is State.CANCELED
    _closed, ended = run.second.result
    assert [r.id for r in ended] == [request.id]
    assert run.second_waited, "close_case did not wait for the case lock submit holds"
    assert chains_ok(world.app)


def _approve(world: World, app: Lockbox, request_id: str) -> AccessRequest:
    return requests.decide_request(app, world.contoso_approver, request_id, approve=True)


def _close(world: World, app: Lockbox, request_id: str) -> AccessRequest:
    return requests.close_request(app, world.engineer, request_id)


#: name → (prepare a request in the right state, the transition by the right person)
TRANSITIONS: dict[
    str, tuple[Callable[[World], AccessRequest], Callable[[World, Lockbox, str], AccessRequest]]
] = {
    "approve": (pending_approval, _approve),  # pending_approval → approved
    "close": (approved, _close),  # approved → closed
}


@postgres_only
@pytest.mark.parametrize("transition", sorted(TRANSITIONS))
def test_close_case_against_a_transition_holding_the_request_does_not_deadlock(
    world: World, racers: tuple[Racer, Racer], transition: str
) -> None:
    """A transition is paused right after its UPDATE of the request (row lock held, the
    audit head not yet taken); close_case runs until it blocks.

    Before the fix close_case took the audit head before the request rows: it held the
    head and waited for the row while the transition, once released, waited for the
    head: PostgreSQL's deadlock detector killed one of them (40P01, surfacing as a
    Conflict). Now close_case waits for the row before taking the head, so the
    transition commits and close_case then ends whatever is still open.
    """
    a, b = racers
    prepare, act = TRANSITIONS[transition]
    request = prepare(world)
    run = interleave(
        world.app.db.engine,
        (transition, lambda: act(world, a.app, request.id)),
        a.pause_after(r"^\s*UPDATE access_requests\b"),
        ("close_case", lambda: cases.close_case(b.app, world.engineer, request.case_id)),
        b,
    )
    deadlocked = [o.label for o in (run.first, run.second) if o.deadlocked]
    assert not deadlocked, f"deadlock ({deadlocked} got {DEADLOCK}): {run.describe()}"
    # Neither loses a version race here either: close_case reads the request only once
    # it holds its lock, so it sees the transition's committed version.
    assert run.first.error is None and run.second.error is None, run.describe()
    assert run.second_waited, "close_case did not wait for the request row: " + run.describe()
    final = stored(world.app, request.id)
    assert final.state.terminal, final.state
    assert final.state is State.CLOSED  # approved by A then closed by the case, or closed by A
    assert case_status(world.app, request.case_id) is CaseStatus.CLOSED
    assert open_requests(world.app, request.case_id) == []
    assert chains_ok(world.app)


@postgres_only
def test_two_creations_of_one_address_in_different_case_make_one_user(
    world: World, racers: tuple[Racer, Racer]
) -> None:
    """The first creation is paused right after checking that the address is free;
    the second (same address, other case) commits meanwhile.

    The existence check cannot see an uncommitted or concurrent insert, so only the
    database can refuse the second user: with the old case-sensitive unique ``email``
    both rows went in; the unique ``email_key`` refuses the paused one.
    """
    a, b = racers
    op = Principal.operator()
    run = interleave(
        world.app.db.engine,
        (
            "Dup@contoso.test",
            lambda: users.create_user(
                a.app, op, email="Dup@contoso.test", roles=["approver"], tenant="contoso"
            ),
        ),
        a.pause_after(r"\bFROM users\s+WHERE users\.email_key\b"),
        (
            "dup@CONTOSO.test",
            lambda: users.create_user(
                b.app, op, email="dup@CONTOSO.test", roles=["approver"], tenant="contoso"
            ),
        ),
        b,
    )
    assert run.second.error is None, run.describe()
    assert isinstance(run.first.error, Conflict | AlreadyExists), (
        "both creations succeeded: " + run.describe()
    )
    assert users_with_address(world.app, "dup@contoso.test") == 1
    assert chains_ok(world.app)


# -- many rounds from separate processes (SQLite and PostgreSQL) ----------------------


class Workers:
    """Two spawned worker processes; :meth:`race` runs one job in each at the same instant."""

    def __init__(self, procs: list[Any], inboxes: list[Any], results: Any) -> None:
        self._procs = procs
        self._inboxes = inboxes
        self._results = results

    def race(self, first: Job, second: Job, round_no: int) -> dict[str, Report]:
        """Both jobs' reports by label, once neither crashed nor deadlocked."""
        # Alternate which process runs which side, so neither is always first off the mark.
        order = (first, second) if round_no % 2 == 0 else (second, first)
        for inbox, job in zip(self._inboxes, order, strict=True):
            inbox.put(job)
        reports: dict[str, Report] = {}
        deadline = time.monotonic() + 90
        while len(reports) < len(order):
            try:
                report: Report = self._results.get(timeout=1)
            except queue.Empty:
                dead = [p.exitcode for p in self._procs if not p.is_alive()]
                assert not dead, f"round {round_no}: a worker died ({dead}): {reports}"
                assert time.monotonic() < deadline, f"round {round_no}: no report: {reports}"
                continue
            reports[report.label] = report
        crashed = [r for r in reports.values() if r.status == "crashed"]
        assert not crashed, f"round {round_no}: {crashed}"
        deadlocked = [r for r in reports.values() if r.deadlocked]
        assert not deadlocked, f"round {round_no}: deadlock: {deadlocked}"
        return reports


@contextmanager
def workers(world: World) -> Iterator[Workers]:
    """Two worker processes on the world's database and clock, stopped afterwards."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    inboxes = [ctx.Queue(), ctx.Queue()]
    procs = [
        ctx.Process(
            target=serve,
            args=(world.app.db.url, world.clock.now(), barrier, inbox, results),
            daemon=True,
        )
        for inbox in inboxes
    ]
    for proc in procs:
        proc.start()
    try:
        yield Workers(procs, inboxes, results)
    finally:
        for inbox in inboxes:
            inbox.put(None)
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=10)


def assert_refused_as(report: Report, allowed: set[str], round_no: int) -> None:
    assert report.status == "ok" or report.error in allowed, f"round {round_no}: {report}"


def test_processes_submit_vs_close_case(world: World) -> None:
    """Each round: a fresh case; one process submits on it, the other closes it."""
    engineer = world.engineer
    with workers(world) as pool:
        for i in range(ROUNDS):
            case = cases.open_case(world.app, engineer, tenant="contoso", title=f"Case {i}")
            reports = pool.race(
                Job("submit", "submit", engineer, case.id),
                Job("close_case", "close_case", engineer, case.id, lead=i % 4),
                i,
            )
            assert reports["close_case"].status == "ok", f"round {i}: {reports}"
            # Submitting after the close is refused because the case is closed.
            assert_refused_as(reports["submit"], {ValidationError.__name__}, i)
            assert case_status(world.app, case.id) is CaseStatus.CLOSED
            survivors = open_requests(world.app, case.id)
            assert survivors == [], f"round {i}: open request on a closed case: {survivors}"
            assert all(r.state.terminal for r in requests_on(world.app, case.id))
            assert chains_ok(world.app), f"round {i}"


def test_processes_close_case_vs_transition(world: World) -> None:
    """Each round: a request on a fresh case; one process closes the case, the other
    approves the request (even rounds) or closes it (odd rounds)."""
    with workers(world) as pool:
        for i in range(ROUNDS):
            if i % 2 == 0:
                request = pending_approval(world)
                transition = Job("transition", "approve", world.contoso_approver, request.id)
            else:
                request = approved(world)
                transition = Job("transition", "close_request", world.engineer, request.id)
            close = Job("close_case", "close_case", world.engineer, request.case_id, lead=i % 4)
            reports = pool.race(transition, close, i)
            assert reports["close_case"].status == "ok", f"round {i}: {reports}"
            # Losing to the case close: a stale version (Conflict) or, if it read the
            # request after the close, a terminal state (InvalidTransition and kin).
            assert_refused_as(
                reports["transition"],
                {
                    Conflict.__name__,
                    InvalidTransition.__name__,
                    *(c.__name__ for c in InvalidTransition.__subclasses__()),
                },
                i,
            )
            assert case_status(world.app, request.case_id) is CaseStatus.CLOSED
            assert open_requests(world.app, request.case_id) == [], f"round {i}: {reports}"
            assert stored(world.app, request.id).state.terminal
            assert chains_ok(world.app), f"round {i}"


def test_processes_create_one_address_in_two_cases(world: World) -> None:
    """Each round: two processes create the same new address, spelt in different case."""
    op = Principal.operator()
    with workers(world) as pool:
        for i in range(ROUNDS):
            reports = pool.race(
                Job("upper", "create_user", op, f"Dup{i}@contoso.test"),
                Job("lower", "create_user", op, f"dup{i}@CONTOSO.test"),
                i,
            )
            winners = [r for r in reports.values() if r.status == "ok"]
            assert len(winners) == 1, f"round {i}: {reports}"
            for report in reports.values():
                assert_refused_as(report, {Conflict.__name__, AlreadyExists.__name__}, i)
            assert users_with_address(world.app, f"dup{i}@contoso.test") == 1, f"round {i}"
            assert chains_ok(world.app), f"round {i}"
