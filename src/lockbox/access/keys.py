"""Ed25519 signing keys for access tokens: generate, store, rotate, retire, publish.

Exactly one key signs at a time (the newest one that is not retired). Rotation
adds a new key and retires the previous ones *for signing* while keeping them
published in the JWKS until ``publish_until`` = rotation time + the longest
token lifetime, so every token signed before the rotation still verifies until
it expires. Retiring a key "now" (a suspected compromise) unpublishes it at
once, which makes every token it signed fail verification.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from lockbox.access.claims import ALGORITHM
from lockbox.domain.errors import InvalidTransition, NotFound
from lockbox.domain.ids import new_id
from lockbox.store import tables as t


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private_pem: str = field(repr=False)  # never in a log line or traceback
    public_jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None = None
    publish_until: datetime | None = None

    def signs(self) -> bool:
        return self.retired_at is None

    def published(self, now: datetime) -> bool:
        return self.publish_until is None or now < self.publish_until

    def status(self, now: datetime) -> str:
        if self.signs():
            return "active"
        return "published" if self.published(now) else "retired"

    def private_key(self) -> Ed25519PrivateKey:
        key = serialization.load_pem_private_key(self.private_pem.encode("ascii"), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return key

    def summary(self, now: datetime) -> dict[str, Any]:
        """What may be shown: never the private key."""
        return {
            "kid": self.kid,
            "algorithm": self.algorithm,
            "status": self.status(now),
            "created_at": _iso(self.created_at),
            "retired_at": _iso(self.retired_at),
            "publish_until": _iso(self.publish_until),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def generate(now: datetime) -> SigningKey:
    """A fresh Ed25519 key with its public half as a JWK (RFC 8037)."""
    private = Ed25519PrivateKey.generate()
    kid = new_id("key")
    raw_public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(raw_public),
        "kid": kid,
        "alg": ALGORITHM,
        "use": "sig",
    }
    return SigningKey(kid=kid, algorithm=ALGORITHM, private_pem=pem, public_jwk=jwk, created_at=now)


# -- store ---------------------------------------------------------------------------


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
    row = conn.execute(select(t.signing_keys).where(c.kid == kid)).mappings().first()
    assert row is not None
    return _key(row)


def jwks(keys: list[SigningKey]) -> dict[str, Any]:
    """The JWK Set document for ``keys`` (public halves only)."""
    return {"keys": [dict(k.public_jwk) for k in keys]}
