"""One-time password-reset codes: only an Argon2id hash of each code is stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from lockbox.store import tables as t


@dataclass(frozen=True)
class ResetRow:
    id: str
    user_id: str
    code_hash: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    attempts: int
    created_by: str


def insert_reset(conn: Connection, row: ResetRow) -> None:
    conn.execute(
        insert(t.password_resets).values(
            {name: getattr(row, name) for name in ResetRow.__dataclass_fields__}
        )
    )


def cancel_open(conn: Connection, user_id: str, now: datetime) -> int:
    """Use up every outstanding code of a user (a new one replaces them; a reset ends them)."""
    r = t.password_resets.c
    result = conn.execute(
        update(t.password_resets)
        .where(r.user_id == user_id, r.used_at.is_(None), r.expires_at > now)
        .values(used_at=now)
    )
    return result.rowcount


def latest_open(conn: Connection, user_id: str, now: datetime) -> ResetRow | None:
    """The newest unused, unexpired code of a user, row-locked so two tries cannot both use it."""
    r = t.password_resets.c
    row = (
        conn.execute(
            select(t.password_resets)
            .where(r.user_id == user_id, r.used_at.is_(None), r.expires_at > now)
            .order_by(r.created_at.desc(), r.id.desc())
            .limit(1)
            .with_for_update()
        )
        .mappings()
        .first()
    )
    return ResetRow(**{k: row[k] for k in ResetRow.__dataclass_fields__}) if row else None


def count_attempt(conn: Connection, reset_id: str, *, exhaust_at: int, now: datetime) -> None:
    """One more wrong guess; the code is used up when the guesses reach ``exhaust_at``."""
    r = t.password_resets.c
    conn.execute(update(t.password_resets).where(r.id == reset_id).values(attempts=r.attempts + 1))
    conn.execute(
        update(t.password_resets)
        .where(r.id == reset_id, r.attempts >= exhaust_at, r.used_at.is_(None))
        .values(used_at=now)
    )


def mark_used(conn: Connection, reset_id: str, now: datetime) -> bool:
    r = t.password_resets.c
    result = conn.execute(
        update(t.password_resets).where(r.id == reset_id, r.used_at.is_(None)).values(used_at=now)
    )
    return result.rowcount == 1
