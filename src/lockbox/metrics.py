"""Prometheus metrics: what a Lockbox server process counts, and what a scrape computes.

Every metric is defined here, so names, labels and their bounds are reviewed in
one place. The module imports nothing but ``prometheus_client`` (no web
framework, no database), so the service layer may count its decisions without
depending on an adapter; what needs the database is handed in as a function.

Labels are bounded on purpose: an HTTP route is its *path template*
(``/v1/requests/{request_id}``), a method and a status class come from closed
sets, a decision reason is a short identifier. A raw path, an id or an address
never becomes a label value, so a scan of random URLs cannot grow the series
without bound.

Two kinds of metric:

* **counted by the process** as things happen: request latency, online-check
  decisions, the denied-check audit queue, open grant-feed streams;
* **computed at scrape time** from the database (:class:`DatabaseCollector` over
  an :class:`OperationalSnapshot`): the outbox backlog, the sweeper's lag, active
  web sessions. They are facts about the shared database, the same whichever
  process is scraped, so nothing has to keep them up to date in between.

Several worker processes of one ``lockbox serve --workers N`` share their
counts through prometheus_client's multiprocess mode: the serve command points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start,
each worker writes its values there, and a scrape of any of them (or of the
``--metrics-port`` listener in the parent) adds them up. Separate ``lockbox
serve`` processes are separate scrape targets, each with its own numbers.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("lockbox.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: prometheus_client's multiprocess helpers carry no type hints.
_MULTIPROCESS: Any = _multiprocess

#: Seconds; from a cached allowed check (a millisecond) to a slow page (seconds).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Methods kept as they are; anything else an HTTP client invents is counted as ``OTHER``.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The route label of a request no route chose: an unknown path, or one refused before
#: routing (a body over the size limit).
UNMATCHED = "unmatched"
#: Stages of a denied check on its way to the audit chain (``DenialRecorder.stats``).
DENIAL_STAGES = ("queued", "written", "dropped")
CHANNELS = ("email", "webhook")
_REASON = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# -- counted by the process ------------------------------------------------------------

HTTP_REQUEST_SECONDS = Histogram(
    "lockbox_http_request_duration_seconds",
    "Time from a request's arrival to its response headers (a streamed body such as the "
    "grant feed is not included), by route template, method and status class.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
ACCESS_DECISIONS = Counter(
    "lockbox_access_decisions",
    "Online access checks answered by this server, by outcome (allowed, denied) and reason. "
    "Decisions a resource service takes locally from the grant feed are not counted here.",
    ["outcome", "reason"],
)
DENIED_CHECK_AUDIT = Counter(
    "lockbox_denied_check_audit",
    "Denied checks on their way to the audit chain: queued (accepted), written (committed), "
    "dropped (the queue was full: not audited).",
    ["stage"],
)
DENIED_CHECK_AUDIT_RECORDS = Counter(
    "lockbox_denied_check_audit_records",
    "Audit records written for denied checks (identical denials of a batch share one record).",
)
FEED_SUBSCRIBERS = Gauge(
    "lockbox_grant_feed_subscribers",
    "Grant-feed streams open now (resource services following grants).",
    multiprocess_mode="livesum",
)
#: Counted by the rate limiter (:mod:`lockbox.api.ratelimit`), which uses this one when present.
RATE_LIMITED = Counter(
    "lockbox_rate_limited",
    "Requests refused with 429 by the rate limiter, by budget "
    "(signin, token_issue, decisions, default).",
    ["budget"],
)
for _stage in DENIAL_STAGES:
    DENIED_CHECK_AUDIT.labels(_stage)  # present from the start, so rate() sees the zero


def record_decision(allowed: bool, reason: str) -> None:
    """Count one online-check answer (called where :func:`lockbox.service.access.check` decides)."""
    label = reason if _REASON.match(reason) else "other"
    ACCESS_DECISIONS.labels("allowed" if allowed else "denied", label).inc()


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Record one HTTP request; ``route`` must be a template, never the raw path."""
    verb = method.upper() if method.upper() in METHODS else "OTHER"
    status_class = f"{status // 100}xx" if 100 <= status <= 599 else "other"
    HTTP_REQUEST_SECONDS.labels(route, verb, status_class).observe(seconds)


class DenialStatsSync:
    """Carries a denial recorder's cumulative ``stats`` into the counters.

    The recorder keeps plain integers (it is shared service code and knows
    nothing of metrics); counters are what aggregate across worker processes, so
    the difference since the last call is added. Called after every request a
    process serves and before every scrape: a process that serves nothing for a
    while shows its last few background writes late, never wrongly.
    """

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def sync(self, stats: Mapping[str, int]) -> None:
        with self._lock:
            for stage in (*DENIAL_STAGES, "records"):
                current = int(stats.get(stage, 0))
                delta = current - self._seen.get(stage, 0)
                if delta > 0:
                    if stage == "records":
                        DENIED_CHECK_AUDIT_RECORDS.inc(delta)
                    else:
                        DENIED_CHECK_AUDIT.labels(stage).inc(delta)
                self._seen[stage] = max(current, self._seen.get(stage, 0))


# -- computed at scrape time -----------------------------------------------------------


@dataclass(frozen=True)
class ChannelBacklog:
    """Pending outbox rows of one channel (``email`` or ``webhook``)."""

    pending: int = 0  # every pending row, including reminders scheduled for later
    due: int = 0  # pending rows whose time has come: the delivery backlog
    oldest_due_age: float = 0.0  # seconds since the oldest due row became due; 0: none


@dataclass(frozen=True)
class OperationalSnapshot:
    """What a scrape reads from the database (:mod:`lockbox.service.metrics_queries`)."""

    outbox: Mapping[str, ChannelBacklog] = field(default_factory=dict)
    #: Seconds since the oldest passed deadline the sweeper has not recorded yet; 0: none.
    sweeper_lag: float = 0.0
    #: Requests past a deadline whose stored state does not say so yet.
    sweeper_backlog: int = 0
    web_sessions_active: int = 0


class DatabaseCollector(Collector):
    """Gauges computed from the database when scraped; a failing query never fails the scrape.

    When the database cannot be read, ``lockbox_metrics_database_up`` is 0 and the
    database gauges are left out (absent, not a misleading zero).
    """

    def __init__(self, load: Callable[[], OperationalSnapshot]) -> None:
        self.load = load

    def describe(self) -> Iterable[Metric]:
        return []  # no query when the collector is registered

    def collect(self) -> Iterable[Metric]:
        started = time.perf_counter()
        try:
            snap = self.load()
        except Exception as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            log.warning(
                "metrics: the database could not be read: %s %s", type(exc).__name__, first_line
            )
            yield _gauge("lockbox_metrics_database_up", "1 if the scrape read the database.", 0)
            return
        yield _gauge("lockbox_metrics_database_up", "1 if the scrape read the database.", 1)
        yield _gauge(
            "lockbox_metrics_database_seconds",
            "Time the scrape spent reading the database.",
            time.perf_counter() - started,
        )
        channels = sorted({*CHANNELS, *snap.outbox})
        backlog = {c: snap.outbox.get(c, ChannelBacklog()) for c in channels}
        for name, doc, attr in (
            (
                "lockbox_outbox_pending",
                "Pending outbox rows (including later reminders).",
                "pending",
            ),
            ("lockbox_outbox_due", "Pending outbox rows due now (the delivery backlog).", "due"),
            (
                "lockbox_outbox_oldest_due_age_seconds",
                "Seconds the oldest due pending outbox row has waited (0: nothing due).",
                "oldest_due_age",
            ),
        ):
            family = GaugeMetricFamily(name, doc, labels=["channel"])
            for channel in channels:
                family.add_metric([channel], float(getattr(backlog[channel], attr)))
            yield family
        yield _gauge(
            "lockbox_sweeper_lag_seconds",
            "Seconds since the oldest passed deadline the sweeper has not recorded yet "
            "(0: caught up). Access never waits for the sweeper; notifications do.",
            snap.sweeper_lag,
        )
        yield _gauge(
            "lockbox_sweeper_backlog",
            "Requests past a deadline whose stored state does not say so yet.",
            snap.sweeper_backlog,
        )
        yield _gauge(
            "lockbox_web_sessions_active",
            "Admin-center sessions neither ended, expired nor idle.",
            snap.web_sessions_active,
        )


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


# -- exposition ------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    """The shared directory of ``--workers N`` mode, or None (one process, in memory)."""
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


class LockboxCollector(Collector):
    """Everything one scrape shows: this process's (or every worker's) counts, plus the
    database gauges when a loader is given."""

    def __init__(
        self,
        database: Callable[[], OperationalSnapshot] | None = None,
        *,
        before: Callable[[], None] | None = None,
    ) -> None:
        self.database = DatabaseCollector(database) if database is not None else None
        self.before = before

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        if self.before is not None:
            self.before()
        path = multiprocess_dir()
        if path is not None:
            forget_dead_processes(path)
            yield from _MULTIPROCESS.MultiProcessCollector(None, path).collect()
        else:
            yield from REGISTRY.collect()
        if self.database is not None:
            yield from self.database.collect()


def render(collector: Collector, accept: str | None) -> tuple[bytes, str]:
    """The exposition (Prometheus text, or OpenMetrics when asked) and its content type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(collector), content_type


def forget_dead_processes(path: str) -> None:
    """Drop the live gauges of worker processes that are gone.

    uvicorn replaces a worker that dies, and the new one writes under its own
    pid; without this a dead worker's open feed streams would be counted
    forever. Counters and histograms of dead workers stay: their sums must
    never go down.
    """
    if os.name == "nt":  # os.kill(pid, 0) would not be a probe there
        return
    pids: set[int] = set()
    for file in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        digits = os.path.basename(file)[: -len(".db")].rsplit("_", 1)[-1]
        if digits.isdigit():
            pids.add(int(digits))
    for pid in pids:
        if pid != os.getpid() and not _alive(pid):
            with contextlib.suppress(OSError):  # another scrape removed it first
                _MULTIPROCESS.mark_process_dead(pid, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
