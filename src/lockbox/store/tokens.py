"""API token rows. Only a SHA-256 digest of each token is stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select, update

from lockbox.store import tables as t


@dataclass(frozen=True)
class TokenRow:
    id: str
    user_id: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    token_hash: str = ""


def _row(r: object) -> TokenRow:
    m = r._mapping  # type: ignore[attr-defined]
    return TokenRow(
        id=m["id"],
        user_id=m["user_id"],
        name=m["name"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        revoked_at=m["revoked_at"],
        last_used_at=m["last_used_at"],
        token_hash=m["token_hash"],
    )


def insert_token(conn: Connection, row: TokenRow) -> None:
    conn.execute(
        insert(t.api_tokens).values(
            id=row.id,
            user_id=row.user_id,
            name=row.name,
            token_hash=row.token_hash,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )
    )


_BY_HASH = select(t.api_tokens).where(t.api_tokens.c.token_hash == bindparam("token_hash"))
_TOUCH = (
    update(t.api_tokens)
    .where(t.api_tokens.c.id == bindparam("token_id"))
    .values(last_used_at=bindparam("at"))
)


def by_hash(conn: Connection, token_hash: str) -> TokenRow | None:
    r = conn.execute(_BY_HASH, {"token_hash": token_hash}).first()
    return _row(r) if r else None


def by_id(conn: Connection, token_id: str) -> TokenRow | None:
    r = conn.execute(select(t.api_tokens).where(t.api_tokens.c.id == token_id)).first()
    return _row(r) if r else None


def for_user(conn: Connection, user_id: str) -> list[TokenRow]:
    rows = conn.execute(
        select(t.api_tokens)
        .where(t.api_tokens.c.user_id == user_id)
        .order_by(t.api_tokens.c.created_at)
    )
    return [_row(r) for r in rows]


def revoke(conn: Connection, token_id: str, at: datetime) -> bool:
    """Revoke a live token; True only for the call that revoked it (concurrent ones: False)."""
    result = conn.execute(
        update(t.api_tokens)
        .where(t.api_tokens.c.id == token_id, t.api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return result.rowcount == 1


def touch(conn: Connection, token_id: str, at: datetime) -> None:
    conn.execute(_TOUCH, {"token_id": token_id, "at": at})
