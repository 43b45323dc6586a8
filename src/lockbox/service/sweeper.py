"""The deadline sweeper: records expiries that time has already decided.

Access never waits for this (the domain computes the effective state from the
deadlines), so the sweeper only makes the stored state, the audit log and the
notifications catch up. Each request is swept in its own transaction with a
version check, so several sweepers, or a sweeper racing a human decision,
leave exactly one outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from lockbox.domain import request as domain
from lockbox.domain.errors import Conflict
from lockbox.service.app import Lockbox, log
from lockbox.store import repositories as repo


@dataclass(frozen=True)
class SweepResult:
    expired: int = 0
    skipped: int = 0


def sweep_deadlines(app: Lockbox, *, batch: int = 200) -> SweepResult:
    """Move every request past its deadline to ``expired`` / ``access_ended``."""
    expired = skipped = 0
    while True:
        with app.read() as tx:
            due = repo.due_request_ids(tx.conn, tx.now, batch)
        if not due:
            break
        progress = 0
        for request_id in due:
            try:
                if _sweep_one(app, request_id):
                    expired += 1
                    progress += 1
                else:
                    skipped += 1
            except Conflict:
                skipped += 1  # someone else (a person or another sweeper) got there first
        if progress == 0 or len(due) < batch:
            break
    if expired:
        log.info("sweeper recorded %d expiries", expired)
    return SweepResult(expired=expired, skipped=skipped)


def _sweep_one(app: Lockbox, request_id: str) -> bool:
    with app.tx() as tx:
        skip_locked = app.db.dialect == "postgresql"
        request = repo.get_request(tx.conn, request_id, lock=True, skip_locked=skip_locked)
        if request is None:
            return False
        change = domain.expire(request, now=tx.now)
        if change is None:
            return False
        repo.update_request(tx.conn, change.request, request)
        tx.record(change)
        return True
