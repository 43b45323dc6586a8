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

import binascii
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import repeat
from types import TracebackType
from typing import Any, NamedTuple

import httpx
import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lockbox_sdk.claims import ALGORITHM, REQUIRED_CLAIMS
from lockbox_sdk.scope import in_scope, is_concrete, level_permits

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
        # 'a/b/*' must not cover 'a/b/../secret', 'a/b//x' or a literal 'a/b/*'.
        if not is_concrete(resource) or not in_scope(self.resources, resource):
            return "out_of_scope"
        return None if level_permits(self.access_level, action) else "level_too_low"


def _now() -> datetime:
    return datetime.now(UTC)


# -- the compact JWS, parsed strictly ------------------------------------------------------

MAX_TOKEN_LENGTH = 8192
DEFAULT_CACHE_SIZE = 1024
"""Verified tokens remembered by a :class:`TokenVerifier` (see its *Cache* section)."""

# Canonical encodings only: the unused low bits of the last character must be zero, so
# one byte string has exactly one encoding (a token cannot be re-spelled, e.g. to dodge
# the verified-token cache, without changing the signed bytes). Last character of a part
# of length 2 (mod 4): a multiple of 16; of length 3 (mod 4): a multiple of 4. (These
# characters are the same in the base64url and the standard alphabet.)
_LAST_OF_2 = frozenset(b"AQgw")
_LAST_OF_3 = frozenset(b"AEIMQUYcgkosw048")
_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _split(token: str) -> tuple[bytes, bytes, bytes, bytes]:
    """The signing input and the three parts of a compact JWS, the parts translated to the
    standard base64 alphabet (still encoded); ValueError unless there are exactly three
    parts of base64url characters: no '=' padding, no standard-alphabet '+' or '/' (they
    would pass for '-' and '_' once translated), nothing non-ASCII. Other characters,
    whitespace included, are refused by :func:`_b64`. Parts may be empty, so that, as
    before, 'alg: none' with an empty signature is refused for its algorithm."""
    raw = token.encode("ascii")
    if b"=" in raw or b"+" in raw or b"/" in raw:
        raise ValueError("not base64url")
    head, body, signature = raw.translate(_URLSAFE).split(b".")
    return raw[: len(head) + 1 + len(body)], head, body, signature


def _b64(part: bytes) -> bytes:
    """Decode one canonical unpadded base64 part (from :func:`_split`); ValueError if it
    holds anything but base64 characters or is not the canonical encoding."""
    rest = len(part) & 3
    if rest == 2:
        if part[-1] not in _LAST_OF_2:
            raise ValueError("non-canonical base64url")
        part += b"=="
    elif rest == 3:
        if part[-1] not in _LAST_OF_3:
            raise ValueError("non-canonical base64url")
        part += b"="
    elif rest == 1:
        raise ValueError("truncated base64url")
    return binascii.a2b_base64(part, strict_mode=True)


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Strict JSON: a member name twice (which one counts?) and NaN/Infinity are refused.
_JSON = json.JSONDecoder(object_pairs_hook=_json_object, parse_constant=_json_constant)


def _json(data: bytes) -> Any:
    """UTF-8 JSON (no BOM, no UTF-16/32 guessing), strictly; ValueError otherwise."""
    return _JSON.decode(data.decode("utf-8"))


@lru_cache(maxsize=32)
def _header(part: bytes) -> tuple[str, str]:
    """``("", kid)`` for an acceptable header part (from :func:`_split`), ``kid`` being ""
    when there is none, else ``(reason, "")``. Pure, and every token signed with one key
    has the same header, so the answers for the last few headers are kept."""
    try:
        header = _json(_b64(part))
    except (ValueError, RecursionError):
        return "malformed", ""
    if type(header) is not dict or "crit" in header or "b64" in header:
        # No extension is understood, so none may be critical; and b64 (RFC 7797) would
        # change what is signed.
        return "malformed", ""
    kid = header.get("kid", "")
    if type(kid) is not str:
        return "malformed", ""
    if header.get("alg") != ALGORITHM:
        return "unsupported_algorithm", ""
    return "", kid


def _instant(value: Any) -> datetime:
    """A NumericDate: a JSON number (not a string, not a boolean) of seconds since the epoch."""
    if type(value) is not int and type(value) is not float:
        raise TypeError("not a number")
    return datetime.fromtimestamp(value, tz=UTC)


def _access_claims(**values: Any) -> AccessClaims:
    """``AccessClaims(**values)`` without the frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field, on the path of every verification): every field
    is given, there is no ``__post_init__``, and the result compares equal."""
    claims: AccessClaims = object.__new__(AccessClaims)
    claims.__dict__.update(values)
    return claims


class _Verified(NamedTuple):
    """A verified token, as the cache keeps it: everything but the time and the key checks."""

    claims: AccessClaims
    not_before: datetime
    key: Ed25519PublicKey  # the key that verified the signature (the very object)
    audience: str  # what it was verified for
    issuer: str


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

    **Cache.** The last ``cache_size`` (default 1,024; 0 turns it off) tokens
    that verified are remembered, least recently used first out, keyed by the
    token string itself (so at most ``cache_size`` tokens of at most 8,192
    characters, with their claims, are held), and a repeated token skips the
    parsing and the signature check. Nothing else is skipped, and the answer is
    the one a verification from scratch would give at that instant:

    * its ``exp`` and ``nbf`` are compared with ``clock()`` (with ``leeway``)
      on every call, exactly as on the first, so a cached token is never
      accepted at or past its ``exp``;
    * the token's kid is looked up in the key set on every call, exactly as
      on the first (same freshness rule, refetches, refresh ahead and reasons),
      and the cached answer is used only if that lookup returns the very public
      key that verified the signature. A cached token therefore verifies only
      while a key set fetched less than ``max_age`` ago still publishes its
      key: it stops verifying within the same ``max_age`` bound after
      ``lockbox keys retire`` as an uncached token does, never later;
    * it is used only for the ``audience`` and ``issuer`` it was verified for.

    Only tokens that verified are cached: a forged or altered token is a
    different string and goes through the whole check. The cached
    :class:`AccessClaims` object (``raw`` included) is shared by the calls that
    get it: treat it as read-only. :meth:`clear_cache` empties the cache.

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
        cache_size: int = DEFAULT_CACHE_SIZE,
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
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError("cache_size must be a whole number of tokens, 0 or more")
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
        # Everything below is guarded by _lock (_cond's); fetches run outside it.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at: float | None = None  # start of the fetch that produced _keys
        self._attempted_at: float | None = None  # start of the latest fetch attempt
        self._last_error: str | None = None  # why the latest finished attempt failed
        self._in_flight = False
        self._completed = 0  # finished fetch attempts, so waiters can tell one ended
        self._worker: threading.Thread | None = None
        self._closed = False
        self.fetches = 0
        # Verified tokens, least recently used first; guarded by its own lock.
        self.cache_size = cache_size
        self._cache: OrderedDict[str, _Verified] = OrderedDict()
        self._cache_lock = threading.Lock()

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
    def _parse(document: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
        """Usable Ed25519 keys by kid; other or broken entries (Ed448 and X25519 keys
        included) are skipped, not fatal."""
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in document.get("keys", []):
            if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or "kid" not in jwk:
                continue
            try:
                key = jwt.PyJWK(jwk, algorithm=ALGORITHM).key
            except (jwt.PyJWTError, ValueError, TypeError):
                continue
            if isinstance(key, Ed25519PrivateKey):  # a private JWK: only its public half
                key = key.public_key()
            if isinstance(key, Ed25519PublicKey):
                keys[str(jwk["kid"])] = key
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
        keys: dict[str, Ed25519PublicKey] | None = None
        error: Exception | None = None
        try:
            keys = self._parse(self._download())
        except Exception as exc:  # whatever the cause, the key set is unavailable
            error = exc
        finally:
            with self._cond:
                if keys is not None:
                    # An unchanged key keeps its object, which verified-token cache
                    # entries are checked against (see the class docstring).
                    old = self._keys
                    for kid, key in keys.items():
                        previous = old.get(kid)
                        if previous is not None and previous == key:
                            keys[kid] = previous
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

    def _key(self, kid: str) -> Ed25519PublicKey:
        """The published key ``kid`` from a fresh set; raises ``unknown_key`` or
        ``jwks_unavailable``. May fetch (synchronously) or start a refresh ahead."""
        with self._lock:
            # The common case, decided as the first round of _key_slow's loop would decide
            # it: a fresh set holding the key, and no refresh ahead due yet.
            fetched_at = self._fetched_at
            if fetched_at is not None:
                age = self._monotonic() - fetched_at
                if age < self.max_age and age < self.refresh_ahead * self.max_age:
                    key = self._keys.get(kid)
                    if key is not None:
                        return key
        return self._key_slow(kid)

    def _key_slow(self, kid: str) -> Ed25519PublicKey:
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
        """The claims of ``token``, verified; raises :class:`TokenError`.

        The checks, in this order (the first that fails gives the reason):

        1. the token is a string of at most 8,192 characters, three parts of
           canonical unpadded base64url, the header a UTF-8 JSON object (no
           duplicate member names) with no ``crit`` or ``b64`` member and a string
           ``kid`` if any: ``malformed``;
        2. ``alg`` is ``EdDSA``: ``unsupported_algorithm``;
        3. the ``kid`` is non-empty and names a published Ed25519 key:
           ``unknown_key``, or ``jwks_unavailable`` (see the class docstring);
        4. the Ed25519 signature over the first two parts: ``bad_signature``;
        5. the payload is a UTF-8 JSON object: ``malformed``;
        6. every required claim is present and not null: ``missing_claim``;
        7. ``iss`` is the issuer: ``wrong_issuer``;
        8. ``aud`` is not empty (``missing_claim``) and is the audience or a list of
           strings holding it: ``wrong_audience``;
        9. ``sub`` and ``jti`` are strings, ``iat``, ``nbf`` and ``exp`` are numbers
           in range, ``resources`` is a list of strings: ``malformed``;
        10. ``clock()`` is before ``exp``: ``expired``; and not earlier than ``nbf``
            minus ``leeway``: ``not_yet_valid``.

        A token verified before (see *Cache* in the class docstring) skips 1, 2
        and 4 to 9, whose outcome cannot have changed.
        """
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("malformed")
        # Only exact str: a str subclass could make itself equal to a cached token.
        cache = self.cache_size > 0 and type(token) is str
        hit = self._cache.get(token) if cache else None  # one atomic look-up, no lock
        if hit is not None:
            cached = self._recheck(token, hit)
            if cached is not None:
                return cached

        try:
            signed, head, body, signature = _split(token)
            payload = _b64(body)
            signature = _b64(signature)
        except ValueError:
            raise TokenError("malformed") from None
        reason, kid = _header(head)
        if reason:
            raise TokenError(reason)
        if not kid:
            raise TokenError("unknown_key", "the token names no key")
        key = self._key(kid)
        try:
            key.verify(signature, signed)
        except InvalidSignature:
            raise TokenError("bad_signature") from None
        try:
            claims = _json(payload)
        except (ValueError, RecursionError):
            raise TokenError("malformed") from None
        if type(claims) is not dict:
            raise TokenError("malformed")
        verified = self._claims(claims, kid, key)
        if cache:
            with self._cache_lock:
                self._cache[token] = verified
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return verified.claims

    def _recheck(self, token: str, hit: _Verified) -> AccessClaims | None:
        """The cached claims if the token still verifies, None to verify it afresh; raises
        what a verification from scratch would raise at this instant (reasons 3 and 10)."""
        claims = hit.claims
        try:
            if hit.audience != self.audience or hit.issuer != self.issuer:
                self._forget(token, hit)
                return None
            # The very look-up of a first verification: freshness (max_age), refetches,
            # refresh ahead, unknown_key / jwks_unavailable.
            if self._key(claims.kid) is not hit.key:
                self._forget(token, hit)  # another key under this kid now: check afresh
                return None
            now = self.clock()
            if now >= claims.expires_at:
                raise TokenError("expired")
            if now + self.leeway < hit.not_before:
                raise TokenError("not_yet_valid")
        except TokenError:
            self._forget(token, hit)
            raise
        with self._cache_lock:
            if self._cache.get(token) is hit:
                self._cache.move_to_end(token)  # most recently used
        return claims

    def _forget(self, token: str, entry: _Verified) -> None:
        with self._cache_lock:
            if self._cache.get(token) is entry:
                del self._cache[token]

    def clear_cache(self) -> None:
        """Forget every verified token (the key set is kept)."""
        with self._cache_lock:
            self._cache.clear()

    def _claims(self, claims: dict[str, Any], kid: str, key: Ed25519PublicKey) -> _Verified:
        """Checks 6 to 10 of :meth:`verify` on a payload whose signature verified."""
        if None in map(claims.get, REQUIRED_CLAIMS):
            missing = next(name for name in REQUIRED_CLAIMS if claims.get(name) is None)
            raise TokenError("missing_claim", f'Token is missing the "{missing}" claim')
        iss = claims["iss"]
        if type(iss) is not str or iss != self.issuer:
            raise TokenError("wrong_issuer")
        aud = claims["aud"]
        if not aud:
            raise TokenError("missing_claim", 'Token is missing the "aud" claim')
        if type(aud) is str:
            if aud != self.audience:
                raise TokenError("wrong_audience")
        elif (
            type(aud) is not list
            or not all(type(a) is str for a in aud)
            or self.audience not in aud
        ):
            raise TokenError("wrong_audience")
        if type(claims["sub"]) is not str or type(claims["jti"]) is not str:
            raise TokenError("malformed")
        try:
            exp = _instant(claims["exp"])
            iat = _instant(claims["iat"])
            nbf = claims["nbf"]
            # Usually nbf is iat: the same number (both checked as numbers) is the same instant.
            nbf = (
                iat if nbf == claims["iat"] and type(nbf) is type(claims["iat"]) else _instant(nbf)
            )
        except (TypeError, ValueError, OverflowError, OSError):
            raise TokenError("malformed") from None
        resources = claims["resources"]
        # JSON makes no str subclasses: isinstance is the exact type check here, in C.
        if type(resources) is not list or not all(map(isinstance, resources, repeat(str))):
            raise TokenError("malformed")
        now = self.clock()
        # Skew is forgiven only where it makes a token valid *later* (nbf); expiry is
        # strict, so a token never grants access past the deadline it carries.
        if now >= exp:
            raise TokenError("expired")
        if now + self.leeway < nbf:
            raise TokenError("not_yet_valid")
        tenant = claims.get("tenant")
        access = _access_claims(
            engineer=claims["sub"],
            tenant_id=str(claims["tenant_id"]),
            tenant=str(tenant) if tenant else None,
            request_id=str(claims["request_id"]),
            resources=tuple(resources),
            access_level=str(claims["access_level"]),
            audience=aud if type(aud) is str else self.audience,
            issued_at=iat,
            expires_at=exp,
            jti=claims["jti"],
            kid=kid,
            raw=claims,
        )
        return _Verified(access, nbf, key, self.audience, self.issuer)
