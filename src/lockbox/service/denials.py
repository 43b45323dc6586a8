"""Denied access checks, written to the audit chain in batches off the request path.

Every denied check is audited (``access.check_denied``) so a customer sees each
attempt. Writing each one synchronously would make a burst of denials (a
misconfigured service, an engineer retrying) queue on the tenant's audit-head
lock and starve the checks that allow. So a server records them here: the check
answers at once, and a background thread writes what arrived, every
``linger`` seconds or ``max_batch`` records, in one transaction, identical
denials of the batch coalesced into one record with a ``count`` and the first
and last times.

The trade-off is stated plainly: a process killed hard loses at most the last
``linger`` seconds of *denial* records (never a grant, a decision or anything a
state change wrote: those commit with their change). A full queue drops and
counts, and says so in the log. Without a recorder (the CLI, tests) a denial
is written synchronously, as before.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lockbox.domain.instants import format_instant
from lockbox.domain.roles import Principal
from lockbox.service.app import Lockbox

log = logging.getLogger("lockbox.denials")


@dataclass(frozen=True)
class Denial:
    tenant_id: str
    actor: Principal
    request_id: str | None
    details: dict[str, Any]
    at: datetime

    def key(self) -> tuple[Any, ...]:
        d = self.details
        return (
            self.tenant_id,
            self.actor.id,
            self.request_id,
            d.get("engineer"),
            d.get("resource"),
            d.get("action"),
            d.get("reason"),
        )


@dataclass
class DenialRecorder:
    app: Lockbox
    max_batch: int = 500
    linger: float = 0.05
    max_queue: int = 100_000
    stats: dict[str, int] = field(
        default_factory=lambda: {"queued": 0, "written": 0, "records": 0, "dropped": 0}
    )

    def __post_init__(self) -> None:
        self._queue: queue.Queue[Denial] = queue.Queue(maxsize=self.max_queue)
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def record(self, denial: Denial) -> None:
        """Queue a denial; never blocks the check that was denied."""
        self._start()
        try:
            self._queue.put_nowait(denial)
        except queue.Full:
            self.stats["dropped"] += 1
            log.error("denial queue full: a denied check was not audited")
            return
        with self._idle:
            self._pending += 1
            self.stats["queued"] += 1

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 10.0) -> bool:
        flushed = self.flush(timeout)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        return flushed

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="lockbox-denials", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = [first]
            if self.linger > 0:
                self._stop.wait(self.linger)  # let a burst gather into one transaction
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self.stats["records"] += write(self.app, batch)
                self.stats["written"] += len(batch)
            except Exception:
                log.exception("could not audit %d denied checks", len(batch))
            finally:
                with self._idle:
                    self._pending -= len(batch)
                    self._idle.notify_all()


def write(app: Lockbox, denials: Iterable[Denial]) -> int:
    """Write denials (coalescing identical ones) in one transaction; returns records written.

    Tenants in id order: the audit heads are locked one after another in that order.
    """
    groups: dict[tuple[Any, ...], list[Denial]] = {}
    for denial in denials:
        groups.setdefault(denial.key(), []).append(denial)
    ordered = sorted(groups.values(), key=lambda g: (g[0].tenant_id, g[0].at))
    with app.tx() as tx:
        for group in ordered:
            first = group[0]
            details = dict(first.details)
            if len(group) > 1:
                details.update(
                    count=len(group),
                    first_at=format_instant(group[0].at),
                    last_at=format_instant(group[-1].at),
                )
            else:
                details["checked_at"] = format_instant(first.at)
            tx.audit(
                tenant_id=first.tenant_id,
                actor=first.actor,
                operation="access.check_denied",
                request_id=first.request_id,
                details=details,
            )
    return len(ordered)
