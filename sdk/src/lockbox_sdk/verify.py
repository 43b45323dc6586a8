"""Verify Lockbox access tokens locally: cached JWKS, bounded clock skew, audience check.

::

    with TokenVerifier(jwks_url="https://lockbox.example/.well-known/jwks.json",
                       audience="mailstore") as verifier:
        claims = verifier.verify(token)          # raises TokenError(reason)
        reason = claims.denies("exchange/mailbox/alice@contoso.com", "read")  # None = allowed

The JWK Set is cached, but only for ``max_age`` (default 60 s): ``lockbox keys
retire`` unpublishes a key, and a key set older than that is never used, so a
retired key stops being trusted within a bounded time even when Lockbox cannot
be reached. To keep that from costing latency, the set is refreshed in the
background ahead of expiry; see :class:`TokenVerifier` for the exact rules.
A token naming an unknown key id triggers a refetch (a rotation happened), at
most once per ``min_refresh_interval`` so a flood of forged key ids cannot
hammer Lockbox. Time claims are checked against ``clock``: ``nbf`` with
``leeway`` (at most :data:`MAX_LEEWAY`) for clock skew, ``exp`` strictly,
because a token's expiry is never later than the access deadline and access
must not outlive that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import httpx
import jwt

from lockbox_sdk.claims import ALGORITHM, REQUIRED_CLAIMS
from lockbox_sdk.scope import (
    AccessLevel,
    Action,
    ScopeError,
    in_scope,
    level_allows,
    validate_resource,
)

log = logging.getLogger(__name__)

MAX_LEEWAY = timedelta(minutes=2)
DEFAULT_MAX_AGE = 60.0
"""Seconds a fetched JWK Set is trusted: the bound on how long a retired key verifies."""
DEFAULT_REFRESH_AHEAD = 0.5
"""Refresh in the background once the set is this fraction of ``max_age`` old."""


class TokenError(Exception):
    """The token is not acceptable; ``reason`` is machine-readable.

    Reasons: ``malformed``, ``unsupported_algorithm``, ``unknown_key``,
    ``bad_signature``, ``wrong_audience``, ``wrong_issuer``, ``missing_claim``,
    ``expired``, ``not_yet_valid``, ``jwks_unavailable``. ``jwks_unavailable``
    says the key set could not be fetched or has expired: Lockbox's problem, worth
    a retry, not proof that the token is bad (``unknown_key`` is that).
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
        except ScopeError:
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
    """Thread-safe verifier for Lockbox access tokens, with a bounded-staleness key cache.

    **Bound.** A retired key stops verifying within ``max_age`` (+ the refresh
    timeout) of ``lockbox keys retire``. Keys from a fetch started at monotonic
    time F are trusted only while ``now < F + max_age``; past that they are
    never used, whatever happens to later fetches. Because F is when the fetch
    was *started* (the response can only be newer), a slow fetch does not
    stretch the bound, so here it is in fact ``max_age`` itself; the refresh
    timeout (``http_timeout``) only bounds how long a verification waits for a
    fetch under way before refusing. (An HTTP cache between the verifier and
    Lockbox would add its own age; the verifier itself keeps none.) The
    default ``max_age`` is 60 s: short against the 5-minute token lifetime, so
    ``lockbox keys retire`` (a suspected compromise) means something in
    token-only mode, while one fetch per ``max_age * refresh_ahead`` (30 s)
    per verifier is no load on Lockbox. The price: if Lockbox stays unreachable for longer than the rest of
    a ``max_age`` window, tokens are refused with ``jwks_unavailable`` rather
    than verified with keys that might have been retired meanwhile.

    **Refresh ahead.** A verification that finds the cache older than
    ``refresh_ahead * max_age`` starts a refresh in a background thread and
    answers from the still-fresh cache at once, so steady traffic never waits
    on Lockbox. At most one fetch is in flight (single flight); a failing
    background refresh is retried no more than once per
    ``min_refresh_interval`` (keep it well under ``max_age * (1 - refresh_ahead)``
    so a blip gets several retries before the cache expires). Only a cold or expired cache, or a key id absent
    from the cache (rate-limited as above), fetches synchronously; a fetch
    already under way is joined rather than duplicated.

    **Reasons.** ``unknown_key`` only when the key id is absent from a fresh
    key set and the latest fetch attempt succeeded; when the set could not be
    fetched, has expired, or the fetch that could have brought a new key
    failed, the answer is ``jwks_unavailable``: a Lockbox outage, not a bad
    token, meant to be answered with 503 + Retry-After rather than 401.

    ``cache_ttl`` is the old name of ``max_age``. Call :meth:`close` (or use
    the verifier as a context manager) to stop refreshing in the background.
    """

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
        cache_ttl: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        http_timeout: float = 5.0,
        max_age: float | None = None,
        refresh_ahead: float = DEFAULT_REFRESH_AHEAD,
    ) -> None:
        if (jwks_url is None) == (fetch_jwks is None):
            raise ValueError("give exactly one of jwks_url and fetch_jwks")
        if leeway < timedelta(0) or leeway > MAX_LEEWAY:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY}")
        if max_age is not None and cache_ttl is not None and max_age != cache_ttl:
            raise ValueError("cache_ttl is an alias of max_age: give one of them")
        age = max_age if max_age is not None else cache_ttl
        age = DEFAULT_MAX_AGE if age is None else float(age)
        if not age > 0:  # also refuses NaN
            raise ValueError("max_age must be a positive number of seconds")
        if not 0 < refresh_ahead < 1:
            raise ValueError("refresh_ahead must be between 0 and 1 (a fraction of max_age)")
        if not min_refresh_interval >= 0 or not http_timeout >= 0:
            raise ValueError("min_refresh_interval and http_timeout must not be negative")
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.clock = clock
        self.min_refresh_interval = float(min_refresh_interval)
        self.max_age = age
        self.refresh_ahead = float(refresh_ahead)
        self._monotonic = monotonic
        self._jwks_url = jwks_url
        self._fetch_jwks = fetch_jwks
        self._http_timeout = float(http_timeout)
        # Everything below is guarded by _cond (its lock); fetches run outside it.
        self._cond = threading.Condition(threading.Lock())
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None  # start of the fetch that produced _keys
        self._attempted_at: float | None = None  # start of the latest fetch attempt
        self._last_error: str | None = None  # why the latest finished attempt failed
        self._in_flight = False
        self._completed = 0  # finished fetch attempts, so waiters can tell one ended
        self._worker: threading.Thread | None = None
        self._closed = False
        self.fetches = 0

    @property
    def cache_ttl(self) -> float:
        """The old name of :attr:`max_age`."""
        return self.max_age

    @cache_ttl.setter
    def cache_ttl(self, value: float) -> None:
        self.max_age = float(value)

    # -- JWKS cache -------------------------------------------------------------------

    def _download(self) -> dict[str, Any]:
        if self._fetch_jwks is not None:
            data: Any = self._fetch_jwks()
        elif self._jwks_url is not None:
            response = httpx.get(self._jwks_url, timeout=self._http_timeout)
            response.raise_for_status()
            data = response.json()
        else:  # pragma: no cover - the constructor requires one of them
            raise ValueError("no JWKS source")
        if not isinstance(data, dict) or not isinstance(data.get("keys", []), list):
            raise ValueError("the JWKS is not a JWK Set")
        return data

    @staticmethod
    def _parse(document: dict[str, Any]) -> dict[str, Any]:
        """Usable Ed25519 keys by kid; other or broken entries are skipped, not fatal."""
        keys: dict[str, Any] = {}
        for jwk in document.get("keys", []):
            if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or "kid" not in jwk:
                continue
            try:
                keys[str(jwk["kid"])] = jwt.PyJWK(jwk, algorithm=ALGORITHM).key
            except jwt.PyJWTError:
                continue
        return keys

    def _fresh_locked(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < self.max_age

    def _may_fetch_locked(self, now: float, *, fresh: bool) -> bool:
        """The rate limit. A fresh set (unknown kid, refresh ahead) is refetched at most once
        per ``min_refresh_interval``; an expired one at once, unless the latest attempt
        failed within the interval: then Lockbox is down and failing fast beats queueing
        every request behind another doomed fetch."""
        if self._attempted_at is None:
            return True
        if not fresh and self._last_error is None:
            return True
        return now - self._attempted_at >= self.min_refresh_interval

    def _begin_locked(self, now: float) -> None:
        self._in_flight = True
        self._attempted_at = now
        self.fetches += 1

    def _fetch(self, started: float) -> Exception | None:
        """Download without holding the lock (verifications of known keys go on), install
        the result stamped with ``started``, and end the flight whatever happened."""
        keys: dict[str, Any] | None = None
        error: Exception | None = None
        try:
            keys = self._parse(self._download())
        except Exception as exc:  # whatever the cause, the key set is unavailable
            error = exc
        finally:
            with self._cond:
                if keys is not None:
                    self._keys = keys
                    self._fetched_at = started
                    self._last_error = None
                else:
                    self._last_error = (
                        f"{type(error).__name__}: {error}" if error is not None else "interrupted"
                    )
                self._in_flight = False
                self._completed += 1
                self._cond.notify_all()
        return error

    def _refresh_in_background(self, started: float) -> None:
        error = self._fetch(started)
        if error is not None:
            log.warning("background JWKS refresh failed: %s", error)

    def _refresh_ahead_locked(self, now: float) -> None:
        if self._closed or self._in_flight or self._fetched_at is None:
            return
        if now - self._fetched_at < self.refresh_ahead * self.max_age:
            return
        if not self._may_fetch_locked(now, fresh=True):
            return
        self._begin_locked(now)
        worker = threading.Thread(
            target=self._refresh_in_background,
            args=(now,),
            name="lockbox-jwks-refresh",
            daemon=True,  # never keeps a process alive; close() joins it
        )
        try:
            worker.start()
        except RuntimeError as exc:  # e.g. interpreter shutdown: the cache just ages
            self._in_flight = False
            self._completed += 1
            self._last_error = f"cannot start the refresh thread: {exc}"
            self._cond.notify_all()
            return
        self._worker = worker

    def _wait_for_fetch_locked(self, timeout: float) -> bool:
        """Wait (real time, at most ``timeout``) until the fetch in flight finishes."""
        completed = self._completed
        return self._cond.wait_for(lambda: self._completed != completed, max(0.0, timeout))

    def _key(self, kid: str) -> Any:
        fetched = False  # this call saw a fetch finish (its own or one it joined)
        deadline: float | None = None  # real time: waiting for another thread's fetch
        with self._cond:
            while True:
                now = self._monotonic()
                fresh = self._fresh_locked(now)
                if fresh:
                    key = self._keys.get(kid)
                    if key is not None:
                        self._refresh_ahead_locked(now)
                        return key
                if self._in_flight:
                    # Single flight: join the fetch under way instead of starting another.
                    if deadline is None:
                        deadline = time.monotonic() + self._http_timeout
                    if not self._wait_for_fetch_locked(deadline - time.monotonic()):
                        raise TokenError(
                            "jwks_unavailable", "timed out waiting for the JWKS refresh"
                        )
                    fetched = True
                    continue
                if fetched or not self._may_fetch_locked(now, fresh=fresh):
                    break
                self._begin_locked(now)
                self._cond.release()
                try:
                    self._fetch(now)
                finally:
                    self._cond.acquire()
                fetched = True
            if fresh and self._last_error is None:
                raise TokenError("unknown_key", f"no published key {kid!r}")
            if self._last_error is not None:
                raise TokenError("jwks_unavailable", f"cannot fetch the JWKS: {self._last_error}")
            raise TokenError("jwks_unavailable", "the cached JWKS has expired")

    def refresh(self) -> None:
        """Fetch the JWK Set now (e.g. at start-up, to fail early), after any fetch under
        way; raises what the fetch raised."""
        with self._cond:
            self._cond.wait_for(lambda: not self._in_flight)
            now = self._monotonic()
            self._begin_locked(now)
        error = self._fetch(now)
        if error is not None:
            raise error

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no fetch is in flight; False on timeout. For tests and start-up:
        verification itself never needs this."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._in_flight, timeout=timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Stop refreshing in the background and wait (at most ``timeout``, by default the
        refresh timeout) for a refresh under way, which cannot be interrupted. Returns
        whether none is left running. The verifier still works afterwards, fetching
        synchronously when its cache expires. Idempotent."""
        with self._cond:
            self._closed = True
            worker = self._worker
        if worker is None or worker is threading.current_thread():
            return True
        worker.join(self._http_timeout if timeout is None else timeout)
        if worker.is_alive():
            return False
        with self._cond:
            if self._worker is worker:
                self._worker = None
        return True

    def __enter__(self) -> TokenVerifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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
