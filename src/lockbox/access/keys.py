"""Ed25519 signing keys: their material, public JWK form and published entries.

Keys have a purpose. ``access`` keys sign access tokens (below). ``audit`` keys
sign checkpoints of the audit chains and decision receipts (issue #12): their
signatures must stay verifiable for as long as anyone keeps what they signed,
so a retired audit key stops signing but is never unpublished; its validity
period (``valid_from`` = creation, ``valid_until`` = retirement) is published
with it and a statement dated at or after ``valid_until`` is refused.

Storage, rotation and retirement of the rows are in :mod:`lockbox.store.keys`.

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
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lockbox.access.claims import ALGORITHM
from lockbox.domain.ids import new_id
from lockbox.domain.instants import format_instant, format_optional

ACCESS = "access"
AUDIT = "audit"
PURPOSES = (ACCESS, AUDIT)
#: The published audit keys document (``/.well-known/lockbox-audit-keys.json``).
AUDIT_KEYS_TYPE = "lockbox.audit-keys"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private_pem: str = field(repr=False)  # never in a log line or traceback
    public_jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None = None
    publish_until: datetime | None = None
    purpose: str = ACCESS

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
        if not isinstance(key, Ed25519PrivateKey):
            raise TypeError(f"signing key {self.kid} is not an Ed25519 key")
        return key

    def summary(self, now: datetime) -> dict[str, Any]:
        """What may be shown: never the private key."""
        return {
            "kid": self.kid,
            "purpose": self.purpose,
            "algorithm": self.algorithm,
            "status": self.status(now),
            "created_at": _iso(self.created_at),
            "retired_at": _iso(self.retired_at),
            "publish_until": _iso(self.publish_until),
        }

    def public_raw(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return base64.urlsafe_b64decode(str(self.public_jwk["x"]) + "==")

    def public_pem(self) -> str:
        """The public key as SubjectPublicKeyInfo PEM (what ``openssl pkeyutl -pubin`` reads)."""
        public = self.private_key().public_key()
        return public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def published_entry(self) -> dict[str, Any]:
        """One key of the audit keys document: everything a verifier needs, and nothing else."""
        return {
            "kid": self.kid,
            "alg": "Ed25519",
            "public_key_pem": self.public_pem(),
            "x": self.public_jwk["x"],
            "valid_from": format_instant(self.created_at),
            "valid_until": _iso(self.retired_at),
            "status": "active" if self.signs() else "retired",
        }


_iso = format_optional


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def generate(now: datetime, purpose: str = ACCESS) -> SigningKey:
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
    return SigningKey(
        kid=kid,
        algorithm=ALGORITHM,
        private_pem=pem,
        public_jwk=jwk,
        created_at=now,
        purpose=purpose,
    )


# -- store ---------------------------------------------------------------------------


def jwks(keys: list[SigningKey]) -> dict[str, Any]:
    """The JWK Set document for ``keys`` (public halves only)."""
    return {"keys": [dict(k.public_jwk) for k in keys]}


def audit_keys_document(keys: list[SigningKey]) -> dict[str, Any]:
    """Every audit key, current and retired, with its validity period (docs/audit.md)."""
    ordered = sorted(keys, key=lambda k: (k.created_at, k.kid))
    return {"type": AUDIT_KEYS_TYPE, "v": 1, "keys": [k.published_entry() for k in ordered]}
