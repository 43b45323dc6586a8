"""Follow Lockbox's grant feed and decide locally: a decision is a dictionary look-up.

::

    feed = GrantFeed("https://lockbox.example", SERVICE_TOKEN)
    feed.start()                       # a background thread follows /v1/access/feed
    feed.wait_ready(timeout=10)        # the snapshot of active grants has arrived
    decision = feed.table.decide(engineer="usr_…", tenant="contoso",
                                 resource="exchange/mailbox/alice@contoso.com", action="read")

Guarantees:

* **Ends reach you fast.** Lockbox pushes a close or a revocation as soon as it
  commits (its poller looks every 100 ms by default); the entry is gone from the
  table when the event arrives.
* **Deadlines need no message.** Each grant carries its ``access_deadline`` and
  :meth:`GrantTable.decide` refuses from that instant on, by the clock you give.
* **A silent feed is never trusted.** :meth:`GrantFeed.healthy` is false when no
  event or heartbeat arrived for ``stale_after`` seconds (or the connection is
  down); callers must then fail closed or ask Lockbox online — the guard does
  one or the other, never an allow from a table that may be stale.
* **Nothing is lost across a disconnect.** Every event carries a cursor; the
  follower reconnects with ``Last-Event-ID`` and Lockbox replays what it missed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from lockbox_sdk.scope import Action, in_scope, is_concrete, level_permits

log = logging.getLogger(__name__)

_ENDED_MEMORY = 50_000


@dataclass(frozen=True)
class Grant:
    request_id: str
    tenant_id: str
    tenant: str
    engineer_id: str
    engineer_email: str
    resources: tuple[str, ...]
    access_level: str
    access_deadline: datetime | None
    #: A scheduled start: nothing is allowed before it (None: started).
    access_starts_at: datetime | None = None

    @classmethod
    def from_event(cls, data: dict[str, Any]) -> Grant:
        deadline = data.get("access_deadline")
        starts = data.get("access_starts_at")
        return cls(
            request_id=str(data["request_id"]),
            tenant_id=str(data["tenant_id"]),
            tenant=str(data.get("tenant") or data["tenant_id"]),
            engineer_id=str(data["engineer_id"]),
            engineer_email=str(data.get("engineer_email") or "").lower(),
            resources=tuple(str(r) for r in data.get("resources") or ()),
            access_level=str(data["access_level"]),
            access_deadline=_parse_time(deadline) if deadline else None,
            access_starts_at=_parse_time(starts) if starts else None,
        )

    def names(self, engineer: str) -> bool:
        return engineer == self.engineer_id or engineer.lower() == self.engineer_email

    def of(self, tenant: str) -> bool:
        return tenant in (self.tenant_id, self.tenant)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # approved, or why not (as the online check says it)
    grant: Grant | None = None


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class GrantTable:
    """The active grants this service may enforce, indexed for a look-up per decision."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_request: dict[str, Grant] = {}
        self._by_person: dict[tuple[str, str], dict[str, Grant]] = {}
        self._ended: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_request)

    # -- changes ---------------------------------------------------------------------------

    def grant(self, grant: Grant) -> None:
        with self._lock:
            self._remove(grant.request_id)
            self._ended.pop(grant.request_id, None)
            self._by_request[grant.request_id] = grant
            for key in self._keys(grant):
                self._by_person.setdefault(key, {})[grant.request_id] = grant

    def end(self, request_id: str, reason: str) -> None:
        with self._lock:
            self._remove(request_id)
            self._ended[request_id] = reason
            while len(self._ended) > _ENDED_MEMORY:
                self._ended.popitem(last=False)

    def replace_all(self, grants: list[Grant]) -> None:
        """A fresh snapshot: exactly these grants, nothing else (what ended stays remembered)."""
        fresh = GrantTable()
        for g in grants:
            fresh.grant(g)
        with self._lock:
            self._by_request, self._by_person = fresh._by_request, fresh._by_person

    def _remove(self, request_id: str) -> None:
        old = self._by_request.pop(request_id, None)
        if old is None:
            return
        for key in self._keys(old):
            bucket = self._by_person.get(key)
            if bucket is not None:
                bucket.pop(request_id, None)
                if not bucket:
                    del self._by_person[key]

    @staticmethod
    def _keys(grant: Grant) -> list[tuple[str, str]]:
        people = [grant.engineer_id] + ([grant.engineer_email] if grant.engineer_email else [])
        return [(t, p) for t in {grant.tenant_id, grant.tenant} for p in people]

    # -- decisions -------------------------------------------------------------------------

    def decide(
        self,
        *,
        engineer: str,
        tenant: str,
        resource: str,
        action: str,
        now: datetime,
        request_id: str | None = None,
    ) -> Decision:
        """Bounded access, locally: the engineer's live grant on this tenant, before its
        deadline, naming the resource, at or above the level. Reasons match the online check."""
        wanted = _ACTIONS.get(action) if isinstance(action, str) else None
        if wanted is None:
            return Decision(False, "level_too_low")
        if not is_concrete(resource):
            # 'a/b/*' must not cover 'a/b/../secret' (a service that resolves paths).
            return Decision(False, "out_of_scope")
        if request_id is not None:
            one = self._by_request.get(request_id)
            if one is None:
                return Decision(False, self._ended.get(request_id, "no_request"))
            if not (one.names(engineer) and one.of(tenant)):
                return Decision(False, "no_request")
            return self._check(one, resource, wanted, now)
        bucket = self._by_person.get((tenant, engineer.lower())) or self._by_person.get(
            (tenant, engineer)
        )
        if not bucket:
            return Decision(False, "no_request")
        # A snapshot: the feed's thread may change the bucket while this one reads it.
        candidates = tuple(bucket.values())
        refusals = []
        for grant in candidates:
            answer = self._check(grant, resource, wanted, now)
            if answer.allowed:
                return answer
            refusals.append(answer)
        for reason in ("level_too_low", "out_of_scope", "expired"):
            for answer in refusals:
                if answer.reason == reason:
                    return answer
        return refusals[0]

    @staticmethod
    def _check(grant: Grant, resource: str, action: Action, now: datetime) -> Decision:
        if grant.access_deadline is not None and now >= grant.access_deadline:
            return Decision(False, "expired", grant)
        if grant.access_starts_at is not None and now < grant.access_starts_at:
            return Decision(False, "not_started", grant)
        if not in_scope(grant.resources, resource):
            return Decision(False, "out_of_scope", grant)
        if not level_permits(grant.access_level, action):
            return Decision(False, "level_too_low", grant)
        return Decision(True, "approved", grant)


_ACTIONS = {a.value: a for a in Action}


# -- following the feed --------------------------------------------------------------------


@dataclass
class _Sse:
    event: str = "message"
    id: str | None = None
    data: str = ""


def parse_sse(lines: Iterator[str]) -> Iterator[_Sse]:
    """Server-sent events from text lines (``event:``, ``id:``, ``data:``; blank = dispatch)."""
    current = _Sse()
    data: list[str] = []
    for line in lines:
        if line == "":
            if data or current.event != "message":
                current.data = "\n".join(data)
                yield current
            current, data = _Sse(), []
            continue
        if line.startswith(":"):
            continue  # a comment (keep-alive)
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            current.event = value
        elif name == "id":
            current.id = value
        elif name == "data":
            data.append(value)


class GrantFeed:
    """A background follower of ``/v1/access/feed`` keeping :attr:`table` current."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        table: GrantTable | None = None,
        stale_after: float = 15.0,
        connect_timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.table = table or GrantTable()
        self.stale_after = stale_after
        self.cursor: int | None = None
        self.events = 0
        self.connects = 0
        self._token = token
        self._connect_timeout = connect_timeout
        self._transport = transport
        self._monotonic = monotonic
        self._last_seen: float | None = None
        self._connected = False
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._staging: list[Grant] | None = None
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []

    # -- state -------------------------------------------------------------------------------

    def healthy(self) -> bool:
        """Connected, caught up once, and heard from within ``stale_after`` seconds."""
        return (
            self._connected
            and self._ready.is_set()
            and self._last_seen is not None
            and self._monotonic() - self._last_seen < self.stale_after
        )

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def on_event(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        """Call ``listener(kind, data)`` for every grant or end applied (metrics, tests)."""
        self._listeners.append(listener)

    # -- the thread ----------------------------------------------------------------------------

    def start(self) -> GrantFeed:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lockbox-feed", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                self._follow()
                delay = 0.2
            except (httpx.HTTPError, OSError, ValueError) as exc:
                log.warning("lockbox feed: %s; reconnecting", exc)
            finally:
                self._connected = False
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, 5.0)

    def _follow(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "text/event-stream"}
        if self.cursor is not None:
            headers["Last-Event-ID"] = str(self.cursor)
        timeout = httpx.Timeout(self._connect_timeout, read=self.stale_after)
        with (
            httpx.Client(
                base_url=self.base_url, transport=self._transport, timeout=timeout
            ) as http,
            http.stream("GET", "/v1/access/feed", headers=headers) as response,
        ):
            if response.status_code != 200:
                raise ValueError(f"the feed answered {response.status_code}")
            self.connects += 1
            self._connected = True
            for message in parse_sse(response.iter_lines()):
                if self._stop.is_set():
                    return
                self._apply(message)

    def _apply(self, message: _Sse) -> None:
        self._last_seen = self._monotonic()
        data: dict[str, Any] = json.loads(message.data) if message.data else {}
        kind = message.event
        if kind == "snapshot":
            self._staging = []
        elif kind == "grant":
            grant = Grant.from_event(data)
            if self._staging is not None:
                self._staging.append(grant)
            else:
                self.table.grant(grant)
        elif kind == "end":
            self.table.end(str(data["request_id"]), str(data.get("reason") or "ended"))
        elif kind == "ready":
            self.table.replace_all(self._staging or [])
            self._staging = None
            self._ready.set()
        elif kind == "heartbeat" and self.cursor is not None:
            self._ready.set()  # resumed from a cursor: caught up once the stream is live
        if message.id is not None and message.id.isdigit() and self._staging is None:
            self.cursor = int(message.id)
        if kind in ("grant", "end"):
            self.events += 1
            for listener in self._listeners:
                listener(kind, data)
