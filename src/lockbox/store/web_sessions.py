"""Rows of admin-center sessions and of the sign-in throttle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from lockbox.store import tables as t


@dataclass(frozen=True)
class SessionRow:
    id: str
    token_hash: str
    user_id: str
    csrf_secret: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    authenticated_at: datetime
    auth_method: str
    revoked_at: datetime | None
    client_ip: str | None
    user_agent: str | None
    flash: list[Any] | None
    auth_provider: str | None = None
    stage: str | None = None  # None: a full session; "second_factor" | "enrol": not yet
    pending_action: dict[str, Any] | None = None

    def __repr__(self) -> str:  # the digest and CSRF secret stay out of logs and tracebacks
        return f"SessionRow(id={self.id!r}, user_id={self.user_id!r})"


def _row(mapping: Any) -> SessionRow:
    return SessionRow(**{c.name: mapping[c.name] for c in t.web_sessions.columns})


def insert_session(conn: Connection, row: SessionRow) -> None:
    conn.execute(
        insert(t.web_sessions).values(
            {c.name: getattr(row, c.name) for c in t.web_sessions.columns}
        )
    )


def by_hash(conn: Connection, token_hash: str) -> SessionRow | None:
    found = (
        conn.execute(select(t.web_sessions).where(t.web_sessions.c.token_hash == token_hash))
        .mappings()
        .first()
    )
    return _row(found) if found else None


def by_id(conn: Connection, session_id: str) -> SessionRow | None:
    found = (
        conn.execute(select(t.web_sessions).where(t.web_sessions.c.id == session_id))
        .mappings()
        .first()
    )
    return _row(found) if found else None


def for_user(conn: Connection, user_id: str) -> list[SessionRow]:
    s = t.web_sessions.c
    rows = conn.execute(
        select(t.web_sessions).where(s.user_id == user_id).order_by(s.created_at.desc())
    ).mappings()
    return [_row(r) for r in rows]


def touch(conn: Connection, session_id: str, at: datetime) -> None:
    conn.execute(
        update(t.web_sessions).where(t.web_sessions.c.id == session_id).values(last_seen_at=at)
    )


def set_flash(conn: Connection, session_id: str, flash: list[Any] | None) -> None:
    conn.execute(
        update(t.web_sessions).where(t.web_sessions.c.id == session_id).values(flash=flash)
    )


def revoke(conn: Connection, session_id: str, at: datetime) -> bool:
    s = t.web_sessions.c
    result = conn.execute(
        update(t.web_sessions)
        .where(s.id == session_id, s.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return result.rowcount == 1


def revoke_for_user(
    conn: Connection, user_id: str, at: datetime, *, keep: str | None = None
) -> int:
    s = t.web_sessions.c
    query = update(t.web_sessions).where(s.user_id == user_id, s.revoked_at.is_(None))
    if keep is not None:
        query = query.where(s.id != keep)
    return conn.execute(query.values(revoked_at=at)).rowcount


def purge_ended(conn: Connection, before: datetime) -> int:
    """Forget sessions that ended (revoked or past their lifetime) before ``before``."""
    s = t.web_sessions.c
    return conn.execute(delete(t.web_sessions).where(s.expires_at < before)).rowcount


# -- sign-in throttle ----------------------------------------------------------------------


@dataclass(frozen=True)
class ThrottleRow:
    key: str
    failures: int
    window_started_at: datetime
    locked_until: datetime | None


def throttle_rows(
    conn: Connection, keys: list[str], *, lock: bool = False
) -> dict[str, ThrottleRow]:
    query = select(t.signin_throttle).where(t.signin_throttle.c.key.in_(keys))
    if lock:
        query = query.order_by(t.signin_throttle.c.key).with_for_update()
    return {
        r["key"]: ThrottleRow(r["key"], r["failures"], r["window_started_at"], r["locked_until"])
        for r in conn.execute(query).mappings()
    }


def put_throttle(conn: Connection, row: ThrottleRow, *, exists: bool) -> None:
    values = {
        "failures": row.failures,
        "window_started_at": row.window_started_at,
        "locked_until": row.locked_until,
    }
    if exists:
        conn.execute(
            update(t.signin_throttle).where(t.signin_throttle.c.key == row.key).values(**values)
        )
        return
    try:
        with conn.begin_nested():
            conn.execute(insert(t.signin_throttle).values(key=row.key, **values))
    except IntegrityError:  # a concurrent first failure inserted it: count on top of it
        conn.execute(
            update(t.signin_throttle)
            .where(t.signin_throttle.c.key == row.key)
            .values(failures=t.signin_throttle.c.failures + 1)
        )


def purge_throttle(conn: Connection, before: datetime) -> int:
    """Forget counters whose window started before ``before`` and that lock nothing now."""
    s = t.signin_throttle.c
    return conn.execute(
        delete(t.signin_throttle).where(
            s.window_started_at < before, (s.locked_until.is_(None)) | (s.locked_until < before)
        )
    ).rowcount


def clear_throttle(conn: Connection, key: str) -> None:
    conn.execute(delete(t.signin_throttle).where(t.signin_throttle.c.key == key))
