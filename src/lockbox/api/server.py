"""Building the server application from the environment, and running it with uvicorn."""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from lockbox.api.app import create_app
from lockbox.config import Settings
from lockbox.service.app import Lockbox
from lockbox.store.db import Database, upgrade

log = logging.getLogger("lockbox.server")


def build_lockbox(settings: Settings) -> Lockbox:
    if settings.test_clock_file is not None:
        log.warning(
            "LOCKBOX_TEST_CLOCK_FILE is set: the clock is shifted by that file (tests only)"
        )
    return Lockbox(Database(settings.database_url), settings.clock())


def app_from_env() -> FastAPI:
    """Uvicorn factory: ``uvicorn --factory lockbox.api.server:app_from_env``."""
    return create_app(build_lockbox(Settings()))


def serve(host: str, port: int, *, migrate: bool = True, log_level: str = "info") -> None:
    settings = Settings()
    lockbox = build_lockbox(settings)
    if migrate:
        upgrade(lockbox.db)
    app = create_app(lockbox)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
