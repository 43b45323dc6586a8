"""Report engineer actions to Lockbox in the background: batched, retried, bounded.

:meth:`EventReporter.report` never blocks and never raises: it puts the event
on a bounded queue (a full queue drops the event and counts it in
``stats["dropped"]``, logged) and returns. One daemon thread sends batches of
up to ``batch_size`` events, retrying transport errors, 429 and 5xx answers
with exponential backoff (capped); a 4xx answer for a batch is retried event by
event so one bad event cannot sink its neighbours. :meth:`close` (call it on
shutdown) flushes what is queued within a time limit.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from lockbox_sdk.client import LockboxAPIError

log = logging.getLogger(__name__)

Sender = Callable[[list[dict[str, Any]]], Any]


class EventReporter:
    def __init__(
        self,
        send: Sender,
        *,
        max_queue: int = 10_000,
        batch_size: int = 50,
        linger: float = 0.2,
        max_attempts: int = 6,
        backoff_base: float = 0.25,
        backoff_max: float = 30.0,
    ) -> None:
        self._send = send
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=max_queue)
        self.batch_size = max(1, min(batch_size, 100))
        self.linger = linger
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stats = {
            "queued": 0,
            "sent": 0,
            "dropped": 0,
            "failed": 0,
            "retries": 0,
            "rejected": 0,
        }
        self._pending = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    # -- producer side ---------------------------------------------------------------

    def report(
        self,
        *,
        request_id: str | None,
        action: str,
        resource: str,
        outcome: str = "success",
        detail: str | None = None,
        engineer: str | None = None,
        tenant: str | None = None,
        reason: str | None = None,
    ) -> bool:
        """Queue one event; False if it was dropped (queue full or reporter closed).

        ``tenant`` names whose content the event concerns (required when there is no
        ``request_id``, e.g. a refused request without a valid token).
        """
        event: dict[str, Any] = {
            "action": action,
            "resource": resource[:4096],
            "outcome": outcome,
            "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        for key, value, limit in (
            ("request_id", request_id, 200),
            ("tenant", tenant, 200),
            ("reason", reason, 64),
            ("detail", detail, 2000),
            ("engineer", engineer, 320),
        ):
            if value:
                event[key] = value[:limit]
        return self.put(event)

    def put(self, event: dict[str, Any]) -> bool:
        if self._stop.is_set():
            self._count("dropped")
            log.warning("lockbox reporter closed; dropped an event")
            return False
        self._ensure_thread()
        with self._cond:
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                self.stats["dropped"] += 1
                log.warning("lockbox reporter queue full; dropped an event")
                return False
            self._pending += 1
            self.stats["queued"] += 1
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far was sent (or given up); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Flush, then stop the thread. Events reported afterwards are dropped."""
        flushed = self.flush(timeout)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(0.1, timeout))
        return flushed

    @property
    def pending(self) -> int:
        with self._cond:
            return self._pending

    # -- the sending thread ------------------------------------------------------------

    def _count(self, key: str, n: int = 1) -> None:
        with self._cond:
            self.stats[key] += n

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="lockbox-reporter", daemon=True
                )
                self._thread.start()

    def _done(self, n: int) -> None:
        with self._cond:
            self._pending -= n
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            batch = [first]
            # Linger briefly so bursts go out as one batch, without delaying a lone event much.
            deadline = time.monotonic() + self.linger
            while len(batch) < self.batch_size:
                left = deadline - time.monotonic()
                try:
                    batch.append(
                        self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
            try:
                self._deliver(batch)
            except Exception:  # never let the thread die
                log.exception("lockbox reporter: unexpected error; %d events lost", len(batch))
                self._count("failed", len(batch))
            finally:
                self._done(len(batch))

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        outcome = self._attempt(batch)
        if outcome == "sent":
            self._count("sent", len(batch))
        elif outcome == "rejected" and len(batch) > 1:
            for event in batch:  # find the bad one, keep the rest
                self._deliver([event])
        else:
            self._count("failed", len(batch))
            log.error("lockbox reporter: %d events could not be recorded", len(batch))

    def _attempt(self, batch: list[dict[str, Any]]) -> str:
        delay = self.backoff_base
        for attempt in range(1, self.max_attempts + 1):
            try:
                answer = self._send(batch)
                rejected = answer.get("rejected") if isinstance(answer, dict) else None
                if rejected:
                    # Lockbox kept the rest of the batch; these few were invalid on their own.
                    self._count("rejected", len(rejected))
                    log.error("lockbox refused %d reported events: %s", len(rejected), rejected)
                return "sent"
            except LockboxAPIError as exc:
                if not exc.retryable:
                    log.error("lockbox rejected %d events: %s", len(batch), exc)
                    return "rejected"
                error: Exception = exc
            except (httpx.HTTPError, OSError) as exc:
                error = exc
            if attempt == self.max_attempts:
                break
            self._count("retries")
            log.warning("lockbox reporter: attempt %d failed (%s); retrying", attempt, error)
            # After close() gave up waiting, back off briefly and finish the attempts.
            time.sleep(delay if not self._stop.is_set() else min(delay, 0.5))
            delay = min(delay * 2, self.backoff_max)
        return "failed"
