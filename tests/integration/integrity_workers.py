"""Process entry points for the integrity race tests (importable by ``spawn``).

A worker is a separate process with its own engine and connections, as a second
API server or CLI would be. It serves jobs from its own queue until it gets
``None``; for each job it lines up with the other worker on a shared barrier, runs
the use case and reports a picklable :class:`Report` (never an exception object,
which may not survive pickling) on the shared results queue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from lockbox.clock import ManualClock
from lockbox.domain.errors import LockboxError
from lockbox.domain.roles import Principal
from lockbox.service import cases, requests, users
from lockbox.service.app import Lockbox
from lockbox.store.db import Database

MAILBOX = "exchange/mailbox/alice@contoso.com"
#: PostgreSQL's "deadlock detected"; Lockbox.tx() turns it into a Conflict, so the
#: tests look for it in the exception's causes.
DEADLOCK = "40P01"


class Job(NamedTuple):
    """One use case to run: ``kind`` names it, ``target`` is a case/request id or address.

    ``lead`` read transactions go first: the two use cases of a race need different
    numbers of statements to reach their first lock, so without a varied head start the
    same side would nearly always win and the other interleavings would go untested.
    """

    label: str
    kind: str
    actor: Principal
    target: str
    lead: int = 0


class Report(NamedTuple):
    """What happened to a job: ``ok``, ``refused`` (a LockboxError) or ``crashed``."""

    label: str
    status: str
    error: str | None = None
    causes: tuple[str, ...] = ()  # SQLSTATEs / SQLite error names of the exception's causes
    message: str = ""
    result_id: str | None = None

    @property
    def deadlocked(self) -> bool:
        return DEADLOCK in self.causes or "deadlock" in self.message.lower()


def causes_of(exc: BaseException | None) -> tuple[str, ...]:
    """The database error codes anywhere in ``exc``'s cause/context chain.

    A deadlock reaches the caller as a plain ``Conflict`` (see ``Lockbox.tx``), so only
    its cause tells a lost version race from a lock-order bug.
    """
    found: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for candidate in (exc, getattr(exc, "orig", None)):
            for attr in ("sqlstate", "sqlite_errorname"):
                code = getattr(candidate, attr, None)
                if isinstance(code, str) and code not in found:
                    found.append(code)
        exc = exc.__cause__ or exc.__context__
    return tuple(found)


def run_job(app: Lockbox, job: Job) -> Report:
    """Run ``job`` and describe the outcome; every exception is caught and reported."""
    try:
        for _ in range(job.lead):
            with app.read() as tx:
                tx.conn.exec_driver_sql("SELECT 1")
        result_id = _run(app, job)
    except LockboxError as exc:
        return Report(job.label, "refused", type(exc).__name__, causes_of(exc), str(exc))
    except Exception as exc:  # reported, so the test shows it instead of a hang
        return Report(job.label, "crashed", type(exc).__name__, causes_of(exc), repr(exc))
    return Report(job.label, "ok", result_id=result_id)


def _run(app: Lockbox, job: Job) -> str:
    if job.kind == "submit":
        return requests.submit_request(
            app,
            job.actor,
            tenant="contoso",
            case_id=job.target,
            resources=[MAILBOX],
            access_level="read",
            justification="Need to inspect the mailbox",
        ).id
    if job.kind == "close_case":
        return cases.close_case(app, job.actor, job.target)[0].id
    if job.kind == "approve":
        return requests.decide_request(app, job.actor, job.target, approve=True).id
    if job.kind == "close_request":
        return requests.close_request(app, job.actor, job.target).id
    if job.kind == "create_user":
        return users.create_user(
            app, job.actor, email=job.target, roles=["approver"], tenant="contoso"
        ).id
    raise ValueError(f"unknown job kind {job.kind!r}")


def serve(url: str, now: datetime, barrier: Any, jobs: Any, results: Any) -> None:
    """Run jobs from ``jobs`` until ``None``, each released by ``barrier`` with the peer's."""
    db = Database(url)
    app = Lockbox(db, ManualClock(now))
    try:
        with app.read() as tx:  # connect before the first round, not inside it
            tx.conn.exec_driver_sql("SELECT 1")
        while True:
            job: Job | None = jobs.get(timeout=120)
            if job is None:
                return
            try:
                barrier.wait(timeout=60)
            except Exception as exc:  # a broken barrier: the peer died or timed out
                results.put(Report(job.label, "crashed", type(exc).__name__, (), repr(exc)))
                continue
            results.put(run_job(app, job))
    finally:
        db.dispose()
