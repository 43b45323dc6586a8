"""Building the server application from the environment, and running it with uvicorn.

``lockbox serve`` runs one process by default (the application object handed to
uvicorn directly). With ``workers > 1`` uvicorn starts that many processes on
one listening socket, each importing :func:`app_factory`; the parent only
supervises them (it restarts one that dies) and, with ``metrics_port``, serves
the metrics of all of them. Migrations run once, in the parent, before any
worker starts.

Metrics of several workers are added up through prometheus_client's
multiprocess mode: the parent points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
temporary directory *before* the workers are spawned (each worker reads it when
it first imports prometheus_client) and removes it when they have stopped.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from wsgiref.simple_server import WSGIServer

import uvicorn
from fastapi import FastAPI
from prometheus_client import start_http_server

from lockbox import metrics
from lockbox.api.app import create_app
from lockbox.api.metrics_routes import metrics_collector, sync_denials
from lockbox.config import Settings, normalise_proxy_addresses
from lockbox.service.app import Lockbox
from lockbox.store.db import Database, upgrade

log = logging.getLogger("lockbox.server")

#: The import string uvicorn's worker processes load (``factory=True``).
APP_FACTORY = "lockbox.api.server:app_factory"
#: The metrics listener of ``--metrics-port`` binds here only: it has no token.
METRICS_HOST = "127.0.0.1"
MAX_WORKERS = 64


def build_lockbox(settings: Settings) -> Lockbox:
    if settings.test_clock_file is not None:
        log.warning(
            "LOCKBOX_TEST_CLOCK_FILE is set: the clock is shifted by that file (tests only)"
        )
    return Lockbox(Database(settings.database_url), settings.clock())


def app_factory() -> FastAPI:
    """The application from the environment, for uvicorn's workers.

    ``uvicorn --factory lockbox.api.server:app_factory`` (what ``lockbox serve
    --workers N`` runs in each worker). No migration here: the parent ran them
    once, so N workers do not race to upgrade one schema.
    """
    return create_app(build_lockbox(Settings()))


#: The earlier name of :func:`app_factory`, kept for existing deployments.
app_from_env = app_factory


def serve(
    host: str,
    port: int,
    *,
    migrate: bool = True,
    log_level: str = "info",
    workers: int = 1,
    metrics_port: int | None = None,
    forwarded_allow_ips: str | None = None,
) -> None:
    """Run the server until SIGTERM / SIGINT (with ``workers`` processes).

    ``forwarded_allow_ips`` (else ``LOCKBOX_FORWARDED_ALLOW_IPS``): the reverse proxies
    whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed; unset: ignored.
    ``metrics_port``: also serve ``/metrics`` without a token on ``127.0.0.1:<port>``.
    """
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be between 1 and {MAX_WORKERS}")
    settings = Settings()
    proxies = (
        normalise_proxy_addresses(forwarded_allow_ips)
        if forwarded_allow_ips
        else settings.forwarded_allow_ips
    )
    lockbox = build_lockbox(settings)
    if migrate:
        upgrade(lockbox.db)
    if workers == 1:
        app = create_app(lockbox)
        with _metrics_listener(metrics_port, lockbox, settings, partial(sync_denials, app.state)):
            _run(app, 1, host=host, port=port, log_level=log_level, proxies=proxies)
        return
    with _multiprocess_dir(), _metrics_listener(metrics_port, lockbox, settings, None):
        lockbox.db.dispose()  # the migration's connections; the workers open their own
        _run(APP_FACTORY, workers, host=host, port=port, log_level=log_level, proxies=proxies)


def _run(
    app: FastAPI | str, workers: int, *, host: str, port: int, log_level: str, proxies: str | None
) -> None:
    uvicorn.run(
        app,
        factory=isinstance(app, str),
        workers=workers,
        host=host,
        port=port,
        log_level=log_level,
        # Forwarded headers are believed only from the configured proxies, and only when
        # there are some: a client talking to Lockbox directly cannot choose its address.
        proxy_headers=proxies is not None,
        forwarded_allow_ips=proxies,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


@contextmanager
def _multiprocess_dir() -> Iterator[str]:
    """A fresh ``PROMETHEUS_MULTIPROC_DIR`` for the workers, removed when they have stopped.

    Always a new, empty directory: values left by an earlier run would be added to this
    one's. A parent killed with SIGKILL leaves it behind in the temporary directory.
    """
    previous = os.environ.get(metrics.MULTIPROC_ENV)
    path = tempfile.mkdtemp(prefix="lockbox-metrics-")
    os.environ[metrics.MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(metrics.MULTIPROC_ENV, None)
        else:
            os.environ[metrics.MULTIPROC_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _metrics_listener(
    port: int | None, lockbox: Lockbox, settings: Settings, before: Callable[[], None] | None
) -> Iterator[WSGIServer | None]:
    """Serve the metrics on a loopback port for as long as the server runs (None: not)."""
    if port is None:
        yield None
        return
    server, thread = start_metrics_server(port, lockbox, settings, before=before)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def start_metrics_server(
    port: int, lockbox: Lockbox, settings: Settings, *, before: Callable[[], None] | None = None
) -> tuple[WSGIServer, threading.Thread]:
    """``/metrics`` on ``127.0.0.1:<port>``, no token: reachable only from this host.

    The exposition is the one the token-protected route gives (every worker's counts
    when ``PROMETHEUS_MULTIPROC_DIR`` is set, plus the database gauges).
    """
    server, thread = start_http_server(
        port, addr=METRICS_HOST, registry=metrics_collector(lockbox, settings, before=before)
    )
    log.info("metrics on http://%s:%d/metrics", METRICS_HOST, port)
    return server, thread
