"""Verify Lockbox access tokens locally: cached JWKS, bounded clock skew, audience check.

::

    verifier = TokenVerifier(jwks_url="https://lockbox.example/.well-known/jwks.json",
                             audience="mailstore")
    claims = verifier.verify(token)          # raises TokenError(reason)
    reason = claims.denies("exchange/mailbox/alice@contoso.com", "read")  # None = allowed

The JWK Set is fetched once and cached; a token naming an unknown key id
triggers a refetch (a rotation happened), at most once per
``min_refresh_interval`` so a flood of forged key ids cannot hammer Lockbox.
Time claims are checked against ``clock``: ``nbf`` with ``leeway`` (at most
:data:`MAX_LEEWAY`) for clock skew, ``exp`` strictly, because a token's expiry
is never later than the access deadline and access must not outlive that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt

from lockbox.access.claims import ALGORITHM, REQUIRED_CLAIMS
from lockbox.domain.errors import ValidationError
from lockbox.domain.resources import (
    AccessLevel,
    Action,
    in_scope,
    level_allows,
    validate_resource,
)

MAX_LEEWAY = timedelta(minutes=2)


class TokenError(Exception):
    """The token is not acceptable; ``reason`` is machine-readable.

    Reasons: ``malformed``, ``unsupported_algorithm``, ``unknown_key``,
    ``bad_signature``, ``wrong_audience``, ``wrong_issuer``, ``missing_claim``,
    ``expired``, ``not_yet_valid``, ``jwks_unavailable``.
    """

    def __init__(self, reason: str, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message or reason)


@dataclass(frozen=True)
class AccessClaims:
    """What a verified token grants."""

    engineer: str
    tenant_id: str
    tenant: str | None
    request_id: str
    resources: tuple[str, ...]
    access_level: str
    audience: str
    issued_at: datetime
    expires_at: datetime
    jti: str
    kid: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def matches_tenant(self, tenant: str) -> bool:
        """Whether ``tenant`` (id or slug) is the token's tenant."""
        return tenant in (self.tenant_id, self.tenant)

    def denies(self, resource: str, action: str) -> str | None:
        """None if the token covers ``action`` on ``resource``, else the reason."""
        try:
            # 'a/b/*' must not cover 'a/b/../secret', 'a/b//x' or a literal 'a/b/*'.
            validate_resource(resource, "resource", pattern=False)
        except ValidationError:
            return "out_of_scope"
        if not in_scope(self.resources, resource):
            return "out_of_scope"
        try:
            level, wanted = AccessLevel(self.access_level), Action(action)
        except ValueError:
            return "level_too_low"
        return None if level_allows(level, wanted) else "level_too_low"


def _now() -> datetime:
    return datetime.now(UTC)


class TokenVerifier:
    """Thread-safe verifier for Lockbox access tokens."""

    def __init__(
        self,
        *,
        audience: str,
        issuer: str = "lockbox",
        jwks_url: str | None = None,
        fetch_jwks: Callable[[], dict[str, Any]] | None = None,
        leeway: timedelta = timedelta(seconds=30),
        clock: Callable[[], datetime] = _now,
        min_refresh_interval: float = 10.0,
        cache_ttl: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
        http_timeout: float = 5.0,
    ) -> None:
        if (jwks_url is None) == (fetch_jwks is None):
            raise ValueError("give exactly one of jwks_url and fetch_jwks")
        if leeway < timedelta(0) or leeway > MAX_LEEWAY:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY}")
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.clock = clock
        self.min_refresh_interval = min_refresh_interval
        self.cache_ttl = cache_ttl
        self._monotonic = monotonic
        self._jwks_url = jwks_url
        self._fetch_jwks = fetch_jwks
        self._http_timeout = http_timeout
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self.fetches = 0

    # -- JWKS cache -------------------------------------------------------------------

    def _download(self) -> dict[str, Any]:
        if self._fetch_jwks is not None:
            return self._fetch_jwks()
        assert self._jwks_url is not None
        response = httpx.get(self._jwks_url, timeout=self._http_timeout)
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise ValueError("the JWKS is not an object")
        return data

    def _refresh_locked(self) -> None:
        self._fetched_at = self._monotonic()  # also on failure: the rate limit holds
        self.fetches += 1
        document = self._download()
        keys: dict[str, Any] = {}
        for jwk in document.get("keys", []):
            if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or "kid" not in jwk:
                continue
            try:
                keys[str(jwk["kid"])] = jwt.PyJWK(jwk, algorithm=ALGORITHM).key
            except jwt.PyJWTError:
                continue
        self._keys = keys

    def _key(self, kid: str) -> Any:
        with self._lock:
            now = self._monotonic()
            stale = self._fetched_at is None or now - self._fetched_at >= self.cache_ttl
            may_refetch = (
                self._fetched_at is None or now - self._fetched_at >= self.min_refresh_interval
            )
            if stale or (kid not in self._keys and may_refetch):
                try:
                    self._refresh_locked()
                except (httpx.HTTPError, ValueError) as exc:
                    if not self._keys:
                        raise TokenError(
                            "jwks_unavailable", f"cannot fetch the JWKS: {exc}"
                        ) from exc
            key = self._keys.get(kid)
        if key is None:
            raise TokenError("unknown_key", f"no published key {kid!r}")
        return key

    def refresh(self) -> None:
        """Fetch the JWK Set now (e.g. at start-up)."""
        with self._lock:
            self._refresh_locked()

    # -- verification ------------------------------------------------------------------

    def verify(self, token: str) -> AccessClaims:
        if not isinstance(token, str) or not token or len(token) > 8192:
            raise TokenError("malformed")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed") from None
        if header.get("alg") != ALGORITHM:
            raise TokenError("unsupported_algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenError("unknown_key", "the token names no key")
        key = self._key(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "verify_exp": False,  # checked below against our clock
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise TokenError("bad_signature") from None
        except jwt.InvalidAudienceError:
            raise TokenError("wrong_audience") from None
        except jwt.InvalidIssuerError:
            raise TokenError("wrong_issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError("missing_claim", str(exc)) from None
        except jwt.PyJWTError:
            raise TokenError("malformed") from None
        return self._claims(claims, kid)

    def _claims(self, claims: dict[str, Any], kid: str) -> AccessClaims:
        try:
            exp = datetime.fromtimestamp(float(claims["exp"]), tz=UTC)
            nbf = datetime.fromtimestamp(float(claims["nbf"]), tz=UTC)
            iat = datetime.fromtimestamp(float(claims["iat"]), tz=UTC)
            resources = claims["resources"]
            if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
                raise TypeError("resources")
        except (TypeError, ValueError, OverflowError):
            raise TokenError("malformed") from None
        now = self.clock()
        # Skew is forgiven only where it makes a token valid *later* (nbf); expiry is
        # strict, so a token never grants access past the deadline it carries.
        if now >= exp:
            raise TokenError("expired")
        if now + self.leeway < nbf:
            raise TokenError("not_yet_valid")
        aud = claims["aud"]
        return AccessClaims(
            engineer=str(claims["sub"]),
            tenant_id=str(claims["tenant_id"]),
            tenant=str(claims["tenant"]) if claims.get("tenant") else None,
            request_id=str(claims["request_id"]),
            resources=tuple(resources),
            access_level=str(claims["access_level"]),
            audience=aud if isinstance(aud, str) else self.audience,
            issued_at=iat,
            expires_at=exp,
            jti=str(claims["jti"]),
            kid=kid,
            raw=claims,
        )
