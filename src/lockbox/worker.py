"""The background worker: records passed deadlines and delivers the outbox.

Each round sweeps deadlines (:func:`lockbox.service.sweeper.sweep_deadlines`),
at most once a minute signs the audit chains that grew and sends the daily
digests of their heads (:func:`lockbox.service.checkpoints.periodic`: no record
stays without a signed checkpoint for much more than an hour), and then
dispatches due outbox rows in batches
(:class:`lockbox.notify.dispatcher.Dispatcher`). Both are safe with several
workers running at once. SIGTERM / SIGINT finish the message in flight,
give back the leases of the rest and exit 0. ``once=True`` runs a single
round (for cron). Logs are JSON lines on standard error; secrets never
appear in them.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from lockbox.config import Settings
from lockbox.domain.errors import present
from lockbox.notify.dispatcher import Dispatcher, DispatchResult
from lockbox.service import checkpoints, sessions
from lockbox.service.app import Lockbox
from lockbox.service.checkpoints import PassResult
from lockbox.service.sweeper import sweep_deadlines

log = logging.getLogger("lockbox.worker")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, plus the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update(fields)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("lockbox")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


@dataclass
class RoundResult:
    expired: int = 0
    dispatch: DispatchResult = field(default_factory=DispatchResult)
    checkpoints: PassResult = field(default_factory=PassResult)


#: How often a worker looks for chains to sign and digests to send (the rules themselves
#: are hourly and daily: :mod:`lockbox.domain.checkpoints`).
CHECKPOINT_PASS_EVERY = timedelta(minutes=1)


@dataclass
class Worker:
    app: Lockbox
    settings: Settings
    interval: float | None = None
    batch: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    dispatcher: Dispatcher | None = None

    def __post_init__(self) -> None:
        if self.dispatcher is None:
            self.dispatcher = Dispatcher(self.app, self.settings, stop=self.stop)

    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        """Signal handler: ask the loop to stop after the message in flight."""
        if self.stop.is_set():
            return
        name = signal.Signals(signum).name if signum else "request"
        # Event.set() takes a lock the interrupted main thread may hold inside Event.wait(),
        # so it is called from a helper thread, never from the handler itself.
        threading.Thread(target=self.stop.set, name="worker-stop", daemon=True).start()
        self._stopping = name

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    _stopping: str | None = None

    def run_round(self) -> RoundResult:
        """One sweep and one dispatch pass (until nothing is due or a stop is requested)."""
        dispatcher = present(self.dispatcher, "the dispatcher")
        result = RoundResult()
        batch = self.batch or self.settings.worker_batch_size
        try:
            result.expired = sweep_deadlines(self.app, batch=batch).expired
            sessions.purge(self.app)
        except Exception:
            log.exception("worker.sweep_failed")
        if not self.stop.is_set() and self._checkpoint_pass_due():
            try:
                result.checkpoints = checkpoints.periodic(self.app)
            except Exception:
                log.exception("worker.checkpoints_failed")
        if not self.stop.is_set():
            try:
                result.dispatch = dispatcher.dispatch_due(batch)
            except Exception:
                log.exception("worker.dispatch_failed")
        fields = {"expired": result.expired, **result.dispatch.as_dict()}
        signed = result.checkpoints
        if signed.hourly or signed.daily:
            fields.update(signed.as_dict())
        if result.expired or result.dispatch.claimed or signed.hourly or signed.daily:
            log.info("worker.round", extra={"fields": fields})
        return result

    _next_checkpoint_pass: datetime | None = None

    def _checkpoint_pass_due(self) -> bool:
        now = self.app.now()
        if self._next_checkpoint_pass is not None and now < self._next_checkpoint_pass:
            return False
        self._next_checkpoint_pass = now + CHECKPOINT_PASS_EVERY
        return True

    def run(self, *, once: bool = False) -> int:
        """Run rounds until stopped (or one round with ``once``); returns the exit code 0."""
        dispatcher = present(self.dispatcher, "the dispatcher")
        interval = self.interval or self.settings.worker_interval_seconds
        log.info(
            "worker.started",
            extra={
                "fields": {
                    "owner": dispatcher.owner,
                    "once": once,
                    "interval": interval,
                    "database": self.app.db.dialect,
                    "smtp": f"{self.settings.smtp_host}:{self.settings.smtp_port}",
                    "smtp_security": self.settings.smtp_security,
                }
            },
        )
        try:
            while not self.stop.is_set():
                self.run_round()
                if once:
                    break
                self.stop.wait(interval)  # wakes at once on SIGTERM / SIGINT
        finally:
            dispatcher.close()
            if self._stopping:
                log.info("worker.signal", extra={"fields": {"signal": self._stopping}})
            log.info("worker.stopped", extra={"fields": {"owner": dispatcher.owner}})
        return 0
