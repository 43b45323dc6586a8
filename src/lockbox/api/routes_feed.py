"""The grant feed for resource services: server-sent events, resumable, with a heartbeat.

``GET /v1/access/feed`` streams ``grant`` and ``end`` events (each with ``id:`` = its
place in the global stream) for the tenants and resources the calling service is
registered for. Without a cursor the stream starts with a ``snapshot`` of the
grants active now; with one (``?after=`` or the ``Last-Event-ID`` header a
reconnecting client sends) it replays what happened since. A ``heartbeat``
event at least every ``LOCKBOX_FEED_HEARTBEAT_SECONDS`` carries the cursor and
the server's time, so a follower can tell a quiet feed from a dead one.

One poller per server process watches the stream's head (every
``LOCKBOX_FEED_POLL_SECONDS``) and wakes the subscribers when it moves; each
subscriber then reads only what is new. Several processes each run their own.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Header, Query, Request
from pydantic import WithJsonSchema
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from lockbox import metrics
from lockbox.api import contract
from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.config import Settings, get_settings
from lockbox.domain.errors import PermissionDenied, ValidationError
from lockbox.domain.instants import format_instant
from lockbox.domain.resource_service import ServiceScope
from lockbox.service import grant_feed
from lockbox.service.app import Lockbox

router = contract.router(tags=["access"])
#: An event id of this feed (a cursor), as ``Last-Event-ID`` carries it.
_EVENT_ID = r"^[0-9]{1,18}$"


class FeedHub:
    """Watches the stream head for this process and wakes whoever waits for a change."""

    def __init__(self, app: Lockbox, poll: float) -> None:
        self.app = app
        self.poll = poll
        self.head = 0
        self.subscribers = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self.subscribers > 0:
            try:
                current = await run_in_threadpool(grant_feed.head, self.app)
            except Exception:  # a database hiccup must not end the feed; try again
                current = self.head
            if current != self.head:
                self.head = current
                self._changed.set()
                self._changed = asyncio.Event()
            await asyncio.sleep(self.poll)

    async def wait_past(self, cursor: int, timeout: float) -> None:
        """Return when the head passed ``cursor``, or after ``timeout`` (for a heartbeat)."""
        if self.head > cursor:
            return
        event = self._changed
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return


def _hub(request: Request, app: Lockbox, settings: Settings) -> FeedHub:
    hub = getattr(request.app.state, "feed_hub", None)
    if not isinstance(hub, FeedHub):
        hub = FeedHub(app, settings.feed_poll_seconds)
        request.app.state.feed_hub = hub
    return hub


def _cursor(after: int | None, last_event_id: str | None) -> int | None:
    if after is not None:
        return after
    if last_event_id is None:
        return None
    if not (last_event_id.isascii() and last_event_id.isdigit()) or len(last_event_id) > 18:
        raise ValidationError("Last-Event-ID", "is not a cursor of this feed")
    return int(last_event_id)


@router.get(
    "/v1/access/feed",
    summary="Follow grants starting and ending (server-sent events; resource services)",
    description="Events: `snapshot` (start of the grants active now), `grant`, `end`, "
    "`ready` (the snapshot is complete), `heartbeat`. Every event's `id` is a cursor: "
    "reconnect with `Last-Event-ID` (or `?after=`) to resume without losing anything.",
    response_class=EventSourceResponse,
    operation_id="followGrantFeed",
)
@contract.raises(PermissionDenied)
async def follow(
    request: Request,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    after: Annotated[
        int | None, Query(ge=0, le=2**62, description="Resume after this cursor.")
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="The `id` of the last event received (what a reconnecting client sends).",
            pattern=_EVENT_ID,
        ),
        WithJsonSchema({"type": "string", "pattern": _EVENT_ID}),
    ] = None,
) -> EventSourceResponse:
    settings: Settings = getattr(request.app.state, "settings", None) or get_settings()
    scope = await run_in_threadpool(grant_feed.scope_for, lockbox, principal)
    start = _cursor(after, last_event_id)
    hub = _hub(request, lockbox, settings)
    return EventSourceResponse(
        _events(request, lockbox, scope, start, hub, settings.feed_heartbeat_seconds),
        ping=None,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _message(kind: str, seq: int, data: dict[str, Any]) -> dict[str, str]:
    return {"event": kind, "id": str(seq), "data": json.dumps(data, separators=(",", ":"))}


async def _events(
    request: Request,
    app: Lockbox,
    scope: ServiceScope,
    start: int | None,
    hub: FeedHub,
    heartbeat: float,
) -> AsyncIterator[dict[str, str]]:
    hub.subscribers += 1
    metrics.FEED_SUBSCRIBERS.inc()
    hub.start()
    try:
        if start is None:
            snap = await run_in_threadpool(grant_feed.snapshot, app, scope)
            yield _message("snapshot", snap.cursor, {"grants": len(snap.events)})
            for event in snap.events:
                yield _message("grant", snap.cursor, event.as_dict())
            yield _message("ready", snap.cursor, {"cursor": snap.cursor})
            cursor = snap.cursor
        else:
            cursor = start
        beat = time.monotonic()
        while not await request.is_disconnected():
            batch = await run_in_threadpool(grant_feed.changes, app, scope, cursor)
            for event in batch.events:
                yield _message(event.kind, event.seq, event.as_dict())
            cursor = batch.cursor
            if time.monotonic() - beat >= heartbeat:
                now = format_instant(app.now())
                yield _message("heartbeat", cursor, {"cursor": cursor, "server_time": now})
                beat = time.monotonic()
            await hub.wait_past(cursor, max(0.0, heartbeat - (time.monotonic() - beat)))
    finally:
        hub.subscribers -= 1
        metrics.FEED_SUBSCRIBERS.dec()
