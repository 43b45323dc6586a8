"""Signing-key rows: which key signs now, which are still published, rotation and retirement.

Keys themselves (generation, JWK form) live in :mod:`lockbox.access.keys`; this
module only stores and selects them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from lockbox.access.keys import SigningKey, generate
from lockbox.domain.errors import InvalidTransition, NotFound
from lockbox.store import tables as t


def _key(row: RowMapping) -> SigningKey:
    return SigningKey(
        kid=row["kid"],
        algorithm=row["algorithm"],
        private_pem=row["private_pem"],
        public_jwk=dict(row["public_jwk"]),
        created_at=row["created_at"],
        retired_at=row["retired_at"],
        publish_until=row["publish_until"],
    )


def insert_key(conn: Connection, key: SigningKey) -> None:
    conn.execute(
        insert(t.signing_keys).values(
            kid=key.kid,
            algorithm=key.algorithm,
            private_pem=key.private_pem,
            public_jwk=key.public_jwk,
            created_at=key.created_at,
            retired_at=key.retired_at,
            publish_until=key.publish_until,
        )
    )


def all_keys(conn: Connection) -> list[SigningKey]:
    c = t.signing_keys.c
    rows = conn.execute(select(t.signing_keys).order_by(c.created_at.desc(), c.kid.desc()))
    return [_key(r) for r in rows.mappings()]


def current_key(conn: Connection) -> SigningKey | None:
    """The key that signs: the newest one not retired."""
    c = t.signing_keys.c
    row = (
        conn.execute(
            select(t.signing_keys)
            .where(c.retired_at.is_(None))
            .order_by(c.created_at.desc(), c.kid.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return _key(row) if row else None


def published_keys(conn: Connection, now: datetime) -> list[SigningKey]:
    c = t.signing_keys.c
    rows = conn.execute(
        select(t.signing_keys)
        .where(or_(c.publish_until.is_(None), c.publish_until > now))
        .order_by(c.created_at.desc(), c.kid.desc())
    )
    return [_key(r) for r in rows.mappings()]


def is_published(conn: Connection, kid: str, now: datetime) -> bool:
    """Whether tokens signed by ``kid`` may still verify (it is in the JWKS now)."""
    c = t.signing_keys.c
    row = conn.execute(
        select(c.kid).where(c.kid == kid, or_(c.publish_until.is_(None), c.publish_until > now))
    ).first()
    return row is not None


def ensure_key(conn: Connection, now: datetime) -> SigningKey:
    """The signing key, created on first use."""
    key = current_key(conn)
    if key is None:
        key = generate(now)
        insert_key(conn, key)
    return key


def rotate(conn: Connection, now: datetime, max_token_ttl: timedelta) -> SigningKey:
    """Add a new signing key; older signing keys stop signing and stay published for
    ``max_token_ttl`` (the longest lifetime a token they signed can have left)."""
    c = t.signing_keys.c
    conn.execute(
        update(t.signing_keys)
        .where(c.retired_at.is_(None))
        .values(retired_at=now, publish_until=now + max_token_ttl)
    )
    # Newer than anything stored, even if the clock stands still (tests) or went back.
    newest = conn.execute(select(c.created_at).order_by(c.created_at.desc()).limit(1)).scalar()
    created = now if newest is None or newest < now else newest + timedelta(microseconds=1)
    key = generate(created)
    insert_key(conn, key)
    return key


def retire(conn: Connection, kid: str, now: datetime, *, unpublish: bool = True) -> SigningKey:
    """Stop a key signing now; with ``unpublish`` also drop it from the JWKS now
    (every token it signed stops verifying). The current key cannot be retired
    this way: rotate first."""
    c = t.signing_keys.c
    row = conn.execute(select(t.signing_keys).where(c.kid == kid)).mappings().first()
    if row is None:
        raise NotFound("signing key not found")
    key = _key(row)
    current = current_key(conn)
    if current is not None and current.kid == kid:
        raise InvalidTransition(
            "this key is the one that signs; rotate first, then retire it", state="active"
        )
    values: dict[str, Any] = {"retired_at": key.retired_at or now}
    if unpublish and (key.publish_until is None or key.publish_until > now):
        values["publish_until"] = now
    conn.execute(update(t.signing_keys).where(c.kid == kid).values(**values))
    row = conn.execute(select(t.signing_keys).where(c.kid == kid)).mappings().one()
    return _key(row)
