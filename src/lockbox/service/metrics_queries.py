"""The numbers a metrics scrape reads from the database: outbox backlog, sweeper lag, sessions.

They describe the shared database, not one process, so they are computed when
scraped instead of being counted as things happen: any server process (or the
``--metrics-port`` listener) gives the same answer, and nothing drifts when a
worker dies. One read transaction of a few indexed aggregate queries
(``ix_outbox_status_due``, the ``(state, deadline)`` indexes of the sweeper).

No principal is checked here: the answer holds counts and ages only (no
tenant, person or request), and the adapter that exposes it is itself guarded
(a bearer token, or a loopback-only port).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, func, select

from lockbox.domain.lifecycle import State
from lockbox.metrics import ChannelBacklog, OperationalSnapshot
from lockbox.service.app import Lockbox
from lockbox.store import tables as t


def snapshot(app: Lockbox, *, session_idle: timedelta) -> OperationalSnapshot:
    """Outbox backlog by channel, the sweeper's lag and the active web sessions, now."""
    with app.read() as tx:
        lag, backlog = _sweeper(tx.conn, tx.now)
        return OperationalSnapshot(
            outbox=_outbox(tx.conn, tx.now),
            sweeper_lag=lag,
            sweeper_backlog=backlog,
            web_sessions_active=_sessions(tx.conn, tx.now, session_idle),
        )


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


def _outbox(conn: Connection, now: datetime) -> dict[str, ChannelBacklog]:
    o = t.outbox.c
    pending = {
        str(channel): int(count)
        for channel, count in conn.execute(
            select(o.channel, func.count()).where(o.status == "pending").group_by(o.channel)
        )
    }
    due: dict[str, tuple[int, datetime | None]] = {
        str(channel): (int(count), oldest)
        for channel, count, oldest in conn.execute(
            select(o.channel, func.count(), func.min(o.due_at))
            .where(o.status == "pending", o.due_at <= now)
            .group_by(o.channel)
        )
    }
    backlog = {}
    for channel, count in pending.items():
        due_count, oldest = due.get(channel, (0, None))
        backlog[channel] = ChannelBacklog(count, due_count, _age(now, oldest))
    return backlog


def _sweeper(conn: Connection, now: datetime) -> tuple[float, int]:
    """The oldest unrecorded passed deadline's age and how many there are.

    The same three conditions as :func:`lockbox.store.repositories.due_request_ids`, one
    query each so every one is answered from its ``(state, deadline)`` index.
    """
    c = t.access_requests.c
    oldest: datetime | None = None
    count = 0
    for state, deadline in (
        (State.PENDING_REVIEW, c.review_deadline),
        (State.PENDING_APPROVAL, c.approval_deadline),
        (State.APPROVED, c.access_deadline),
    ):
        row = conn.execute(
            select(func.count(), func.min(deadline)).where(
                and_(c.state == state.value, deadline <= now)
            )
        ).one()
        count += int(row[0])
        if row[1] is not None and (oldest is None or row[1] < oldest):
            oldest = row[1]
    return _age(now, oldest), count


def _sessions(conn: Connection, now: datetime, idle: timedelta) -> int:
    s = t.web_sessions.c
    query = select(func.count()).where(
        s.revoked_at.is_(None), s.expires_at > now, s.last_seen_at > now - idle
    )
    return int(conn.execute(query).scalar_one())
