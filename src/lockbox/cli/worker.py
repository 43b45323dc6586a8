"""``lockbox worker``: the deadline sweeper and outbox dispatcher."""

from __future__ import annotations

from typing import Annotated

import typer

from lockbox.domain.errors import ValidationError


def worker(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Run one round (sweep + deliver what is due) and exit.")
    ] = False,
    interval: Annotated[
        float | None,
        typer.Option(help="Seconds between rounds (default LOCKBOX_WORKER_INTERVAL_SECONDS)."),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option(help="Rows per batch (default LOCKBOX_WORKER_BATCH_SIZE)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Record passed deadlines and deliver e-mails and webhooks, until SIGTERM / SIGINT.

    Safe to run several at once. Logs are JSON lines on standard error.
    """
    from lockbox.config import Settings
    from lockbox.service.app import Lockbox
    from lockbox.store.db import Database
    from lockbox.worker import Worker, configure_logging

    root = ctx.find_root().obj
    if getattr(root, "server", None):
        raise ValidationError("server", "the worker works on the database, not through --server")
    if interval is not None and interval <= 0:
        raise ValidationError("interval", "must be positive")
    if batch is not None and not 1 <= batch <= 1000:
        raise ValidationError("batch", "must be between 1 and 1000")
    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ValidationError("log_level", "must be debug, info, warning or error")
    settings = Settings()
    configure_logging(log_level)
    app = Lockbox(Database(getattr(root, "database_url", None)), settings.clock())
    w = Worker(app, settings, interval=interval, batch=batch)
    w.install_signal_handlers()
    try:
        code = w.run(once=once)
    finally:
        app.db.dispose()
    raise typer.Exit(code)
