"""Signing-key rows: which key signs now, which are still published, rotation and retirement.

Keys themselves (generation, JWK form) live in :mod:`lockbox.access.keys`; this
module only stores and selects them. Every function works on the keys of one
purpose (``access`` unless told otherwise), so a token key never signs a
checkpoint and an audit key never verifies a token.

Audit keys partition time: a key signs statements dated from its creation until
its retirement, and a rotation makes the old key's ``retired_at`` and the new
key's ``created_at`` the same instant, later than anything the old key signed.
On PostgreSQL a transaction that signs chooses its key with ``FOR SHARE`` and so
holds the key row until it commits, and a rotation locks the active rows ``FOR NO
KEY UPDATE`` (both oldest first) before it picks the instant, so no statement can be signed by a key that a
committed rotation says was already retired (:func:`audit_key_at`,
:func:`lock_current_audit_key`; their place in the lock order is in
docs/architecture.md). SQLite serialises writers anyway.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from lockbox.access.keys import ACCESS, AUDIT, SigningKey, generate
from lockbox.domain.errors import InvalidTransition, NotFound
from lockbox.store import tables as t

_TICK = timedelta(microseconds=1)


def _key(row: RowMapping) -> SigningKey:
    return SigningKey(
        kid=row["kid"],
        algorithm=row["algorithm"],
        private_pem=row["private_pem"],
        public_jwk=dict(row["public_jwk"]),
        created_at=row["created_at"],
        retired_at=row["retired_at"],
        publish_until=row["publish_until"],
        purpose=row["purpose"],
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
            purpose=key.purpose,
        )
    )


def all_keys(conn: Connection, purpose: str | None = ACCESS) -> list[SigningKey]:
    """The keys of ``purpose`` (None: every purpose), newest first."""
    c = t.signing_keys.c
    query = select(t.signing_keys).order_by(c.created_at.desc(), c.kid.desc())
    if purpose is not None:
        query = query.where(c.purpose == purpose)
    return [_key(r) for r in conn.execute(query).mappings()]


def get_key(conn: Connection, kid: str) -> SigningKey | None:
    row = conn.execute(select(t.signing_keys).where(t.signing_keys.c.kid == kid)).mappings().first()
    return _key(row) if row else None


def current_key(conn: Connection, purpose: str = ACCESS) -> SigningKey | None:
    """The key that signs: the newest one not retired."""
    c = t.signing_keys.c
    row = (
        conn.execute(
            select(t.signing_keys)
            .where(c.retired_at.is_(None), c.purpose == purpose)
            .order_by(c.created_at.desc(), c.kid.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return _key(row) if row else None


def published_keys(conn: Connection, now: datetime, purpose: str = ACCESS) -> list[SigningKey]:
    c = t.signing_keys.c
    rows = conn.execute(
        select(t.signing_keys)
        .where(c.purpose == purpose, or_(c.publish_until.is_(None), c.publish_until > now))
        .order_by(c.created_at.desc(), c.kid.desc())
    )
    return [_key(r) for r in rows.mappings()]


def is_published(conn: Connection, kid: str, now: datetime) -> bool:
    """Whether tokens signed by ``kid`` may still verify (it is in the JWKS now).

    Only access keys count: an audit key in a token's header verifies nothing.
    """
    c = t.signing_keys.c
    row = conn.execute(
        select(c.kid).where(
            c.kid == kid,
            c.purpose == ACCESS,
            or_(c.publish_until.is_(None), c.publish_until > now),
        )
    ).first()
    return row is not None


def ensure_key(conn: Connection, now: datetime, purpose: str = ACCESS) -> SigningKey:
    """The signing key, created on first use."""
    key = current_key(conn, purpose)
    if key is None:
        key = generate(now, purpose)
        insert_key(conn, key)
    return key


def rotate(
    conn: Connection,
    now: datetime,
    max_token_ttl: timedelta | None,
    *,
    purpose: str = ACCESS,
    not_before: datetime | None = None,
) -> SigningKey:
    """Add a new signing key; older signing keys stop signing at the same instant.

    Access keys stay published for ``max_token_ttl`` (the longest lifetime a token
    they signed can have left); audit keys (``max_token_ttl`` None) stay published
    for good. ``not_before``: the instant must be later than this (the last
    statement the old audit key signed), so nothing it signed is dated after its
    retirement.
    """
    c = t.signing_keys.c
    # Newer than anything stored, even if the clock stands still (tests) or went back.
    newest = conn.execute(
        select(c.created_at).where(c.purpose == purpose).order_by(c.created_at.desc()).limit(1)
    ).scalar()
    boundary = now if newest is None or newest < now else newest + _TICK
    if not_before is not None and boundary <= not_before:
        boundary = not_before + _TICK
    retire_at = now if purpose == ACCESS else boundary  # access keys: as before issue #12
    conn.execute(
        update(t.signing_keys)
        .where(c.retired_at.is_(None), c.purpose == purpose)
        .values(
            retired_at=retire_at,
            publish_until=retire_at + max_token_ttl if max_token_ttl is not None else None,
        )
    )
    key = generate(boundary, purpose)
    insert_key(conn, key)
    return key


def lock_current_audit_key(conn: Connection) -> SigningKey | None:
    """The audit key that signs now, row-locked until commit: a rotation waits here for every
    transaction still signing with it, then picks its instant (PostgreSQL).

    Every signing key row is locked in one order, oldest first (as :func:`audit_key_at`
    does), so a rotation and the signers never wait for each other in a circle, even
    while two keys are active (two transactions created the first one at once).
    ``FOR NO KEY UPDATE``: the foreign keys of checkpoints and receipts on the key are
    not blocked.
    """
    c = t.signing_keys.c
    rows = conn.execute(
        select(t.signing_keys)
        .where(c.retired_at.is_(None), c.purpose == AUDIT)
        .order_by(c.created_at, c.kid)
        .with_for_update(key_share=True)
    ).mappings()
    active = [_key(r) for r in rows]
    return active[-1] if active else None


def audit_key_at(conn: Connection, at: datetime) -> SigningKey | None:
    """The audit key that signs statements dated ``at``, share-locked until commit: not
    retired by then, and the newest created by then (else the oldest such key: a
    transaction that began just before the first key was created).

    One statement on the hot path. If a rotation committed while this waited for the
    row, the row no longer qualifies and the rotation's new key is not in this
    statement's snapshot, so a second look finds it.
    """
    for _attempt in range(2):
        c = t.signing_keys.c
        rows = conn.execute(
            select(t.signing_keys)
            .where(c.purpose == AUDIT, or_(c.retired_at.is_(None), c.retired_at > at))
            .order_by(c.created_at, c.kid)
            .with_for_update(read=True)
        ).mappings()
        candidates = [_key(r) for r in rows]
        started = [k for k in candidates if k.created_at <= at]
        if started:
            return started[-1]
        if candidates:
            return candidates[0]
    return None


def last_signed_at(conn: Connection, kid: str) -> datetime | None:
    """The latest date of anything ``kid`` signed (checkpoints and receipts)."""
    found = [
        conn.execute(select(func.max(table.c.at)).where(table.c.kid == kid)).scalar()
        for table in (t.audit_checkpoints, t.decision_receipts)
    ]
    dates = [d for d in found if isinstance(d, datetime)]
    return max(dates) if dates else None


def retire(conn: Connection, kid: str, now: datetime, *, unpublish: bool = True) -> SigningKey:
    """Stop a key signing now; with ``unpublish`` also drop it from the JWKS now
    (every token it signed stops verifying). The current key cannot be retired
    this way: rotate first. Audit keys are never unpublished (their signatures
    must stay verifiable), so they cannot be retired this way at all."""
    c = t.signing_keys.c
    row = conn.execute(select(t.signing_keys).where(c.kid == kid)).mappings().first()
    if row is None:
        raise NotFound("signing key not found")
    key = _key(row)
    if key.purpose == AUDIT:
        raise InvalidTransition(
            "audit keys stay published for good, so every checkpoint and receipt they signed "
            "stays verifiable; rotate (`lockbox keys rotate --purpose audit`) to stop one signing",
            state=key.status(now),
        )
    current = current_key(conn, key.purpose)
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
