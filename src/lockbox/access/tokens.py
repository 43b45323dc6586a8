"""Signed access tokens: compact JWTs (RFC 7519), EdDSA over Ed25519, ``kid`` in the header.

Claims (all required; the SDK's verifier refuses a token missing any):

========================  ===========================================================
``iss``                   the Lockbox issuer (``LOCKBOX_ISSUER``)
``sub``                   the engineer's user id
``aud``                   the resource service audience (``LOCKBOX_ACCESS_TOKEN_AUDIENCE``)
``tenant_id``             the tenant id (``ten_…``); ``tenant`` is its slug
``request_id``            the approved access request (``req_…``)
``resources``             the granted resource names / ``prefix/*`` patterns
``access_level``          ``read`` or ``read_write``
``iat`` ``nbf`` ``exp``   issued / valid from / expires (seconds since the epoch)
``jti``                   unique token id
========================  ===========================================================

``exp`` is ``min(now + ttl, access_deadline)``: a token never outlives the grant.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from lockbox.access.claims import ALGORITHM, TOKEN_TYPE
from lockbox.access.keys import SigningKey

#: Lifetimes allowed for ``LOCKBOX_ACCESS_TOKEN_TTL_SECONDS``: "a few minutes".
MIN_TTL = timedelta(seconds=30)
MAX_TTL = timedelta(minutes=15)


@dataclass(frozen=True)
class MintedToken:
    token: str
    kid: str
    claims: dict[str, Any]
    issued_at: datetime
    expires_at: datetime


def _epoch(value: datetime) -> int:
    return math.floor(value.timestamp())


def mint(
    key: SigningKey,
    *,
    issuer: str,
    audience: str,
    engineer_id: str,
    tenant_id: str,
    tenant_slug: str,
    request_id: str,
    resources: list[str],
    access_level: str,
    now: datetime,
    ttl: timedelta,
    access_deadline: datetime,
) -> MintedToken:
    """Sign a token for an approved request; it expires at the earlier of ttl and deadline."""
    expires = min(now + ttl, access_deadline)
    # Whole seconds, rounded *down* for exp so the token never outlives the deadline.
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": engineer_id,
        "aud": audience,
        "tenant_id": tenant_id,
        "tenant": tenant_slug,
        "request_id": request_id,
        "resources": list(resources),
        "access_level": access_level,
        "iat": _epoch(now),
        "nbf": _epoch(now),
        "exp": _epoch(expires),
        "jti": secrets.token_urlsafe(16),
    }
    token = jwt.encode(
        claims,
        key.private_key(),
        algorithm=ALGORITHM,
        headers={"kid": key.kid, "typ": TOKEN_TYPE},
    )
    return MintedToken(
        token=token,
        kid=key.kid,
        claims=claims,
        issued_at=now,
        expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC),
    )
