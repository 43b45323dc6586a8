"""Process entry points for the multi-process concurrency test (importable by ``spawn``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lockbox.clock import ManualClock
from lockbox.domain.errors import LockboxError
from lockbox.domain.roles import Principal
from lockbox.service import requests
from lockbox.service.app import Lockbox
from lockbox.store.db import Database


def decide_in_process(
    url: str,
    now: datetime,
    actor: Principal,
    request_id: str,
    approve: bool,
    barrier: Any,
    results: Any,
) -> None:
    db = Database(url)
    app = Lockbox(db, ManualClock(now))
    try:
        with app.read() as tx:  # warm up the connection before lining up
            tx.conn.exec_driver_sql("SELECT 1")
        barrier.wait(timeout=60)
        try:
            requests.decide_request(app, actor, request_id, approve=approve)
            results.put(("won", actor.id, approve))
        except LockboxError as exc:
            results.put(("lost", actor.id, type(exc).__name__))
        except Exception as exc:  # reported, so the test shows it instead of hanging
            results.put(("crashed", actor.id, repr(exc)))
    finally:
        db.dispose()
