"""TokenVerifier key-set freshness: bounded trust after retirement, refresh ahead, single flight.

Pure unit tests: the JWK Set comes from an injected ``fetch_jwks`` and cache time
from an injected monotonic clock (``Source.t``). Nothing sleeps; a slow Lockbox is
a fetch blocked on an Event, and background refreshes are awaited with
``wait_idle()``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from lockbox.access import keys, tokens
from lockbox.sdk.verify import TokenError, TokenVerifier

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
WAIT = 10.0  # real seconds: only a safety net so a broken build fails instead of hanging


def mint(key: keys.SigningKey) -> str:
    return tokens.mint(
        key,
        issuer="lockbox",
        audience="mailstore",
        engineer_id="usr_1",
        tenant_id="ten_1",
        tenant_slug="contoso",
        request_id="req_1",
        resources=["exchange/mailbox/*"],
        access_level="read_write",
        now=NOW,
        ttl=timedelta(minutes=5),
        access_deadline=NOW + timedelta(hours=4),
    ).token


class Source:
    """Lockbox's JWKS endpoint as the test wants it: published keys, down or up, slow or not,
    plus the monotonic clock the verifier's cache runs on."""

    def __init__(self, *published: keys.SigningKey) -> None:
        self.published = list(published)
        self.t = 0.0
        self.down = False
        self.gate: threading.Event | None = None  # set: a fetch blocks until the gate opens
        self.entered = threading.Event()  # a fetch has started
        self.calls = 0
        self.done = 0
        self.threads: list[int] = []
        self._lock = threading.Lock()

    def fetch(self) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            self.threads.append(threading.get_ident())
            gate, down, published = self.gate, self.down, list(self.published)
        self.entered.set()
        try:
            if gate is not None and not gate.wait(WAIT):
                raise httpx.ReadTimeout("lockbox is slow")
            if down:
                raise httpx.ConnectError("lockbox is unreachable")
            return keys.jwks(published)
        finally:
            with self._lock:
                self.done += 1

    def verifier(self, **kw: Any) -> TokenVerifier:
        args: dict[str, Any] = {"min_refresh_interval": 10.0, "http_timeout": WAIT}
        args.update(kw)
        return TokenVerifier(
            audience="mailstore",
            fetch_jwks=self.fetch,
            clock=lambda: NOW,
            monotonic=lambda: self.t,
            **args,
        )


def reason(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenError) as err:
        verifier.verify(token)
    return err.value.reason


@pytest.mark.parametrize("knob", ["cache_ttl", "max_age"])
def test_retired_key_stops_verifying_within_max_age_even_if_every_refetch_fails(
    knob: str,
) -> None:
    old, new = keys.generate(NOW), keys.generate(NOW)
    lockbox = Source(old, new)
    v = lockbox.verifier(**{knob: 60.0})
    v.verify(mint(old))  # fetched at t=0: both keys published
    assert lockbox.calls == 1

    # `lockbox keys retire OLD`, and from now on Lockbox cannot be reached.
    lockbox.published = [new]
    lockbox.down = True
    lockbox.t = 45.0
    v.verify(mint(old))  # still within the bound; a refresh ahead is tried (and fails)

    for t in (60.0, 61.0, 75.0, 300.0, 3600.0):  # from F + max_age on: never again
        lockbox.t = t
        assert reason(v, mint(old)) == "jwks_unavailable"
        assert reason(v, mint(new)) == "jwks_unavailable"  # nothing is trusted past max_age
    assert lockbox.calls >= 2  # it did try to refresh

    lockbox.down = False  # Lockbox is back: the retirement is visible, the new key works
    lockbox.t = 4000.0
    v.verify(mint(new))
    assert reason(v, mint(old)) == "unknown_key"


def test_retired_key_stops_verifying_once_the_refresh_ahead_lands() -> None:
    old, new = keys.generate(NOW), keys.generate(NOW)
    lockbox = Source(old, new)
    with lockbox.verifier(max_age=60.0, refresh_ahead=0.5) as v:
        v.verify(mint(old))
        lockbox.published = [new]
        lockbox.t = 30.0
        v.verify(mint(old))  # served from the fresh cache; starts the background refresh
        assert v.wait_idle(WAIT)
        assert lockbox.calls == 2
        assert reason(v, mint(old)) == "unknown_key"
        v.verify(mint(new))


def test_known_key_keeps_verifying_while_a_slow_background_refresh_is_in_flight() -> None:
    key = keys.generate(NOW)
    lockbox = Source(key)
    with lockbox.verifier(max_age=60.0, refresh_ahead=0.5) as v:
        v.verify(mint(key))
        assert lockbox.calls == 1
        gate = threading.Event()
        lockbox.gate = gate
        lockbox.entered.clear()
        lockbox.t = 30.0
        v.verify(mint(key))  # returns at once; the refresh runs in the background
        assert lockbox.entered.wait(WAIT)
        for t in range(30, 60):  # the whole rest of the fresh window, refresh still stuck
            lockbox.t = float(t)
            for _ in range(5):
                v.verify(mint(key))
        assert not gate.is_set()
        assert lockbox.calls == 2 and lockbox.done == 1  # one refresh, still in flight
        assert lockbox.threads[1] != threading.get_ident()

        gate.set()
        assert v.wait_idle(WAIT)
        assert lockbox.calls == 2
        lockbox.t = 89.0  # fresh until 30 + 60: the refresh counts from when it started
        lockbox.gate = None
        v.verify(mint(key))


def test_expired_cache_with_a_stuck_refresh_is_refused_not_served() -> None:
    key = keys.generate(NOW)
    lockbox = Source(key)
    with lockbox.verifier(max_age=60.0, refresh_ahead=0.5, http_timeout=0.0) as v:
        v.verify(mint(key))
        gate = threading.Event()
        lockbox.gate = gate
        lockbox.t = 30.0
        v.verify(mint(key))
        assert lockbox.entered.wait(WAIT)
        lockbox.t = 60.0  # the cache expires while the refresh is still stuck
        assert reason(v, mint(key)) == "jwks_unavailable"
        assert lockbox.calls == 2  # joined the refresh in flight, did not start another
        gate.set()
        assert v.wait_idle(WAIT)
        v.verify(mint(key))  # the refresh landed: fresh again (until 90)


def test_cold_cache_fetch_failure_is_jwks_unavailable() -> None:
    key = keys.generate(NOW)
    lockbox = Source(key)
    lockbox.down = True
    v = lockbox.verifier(min_refresh_interval=10.0)
    assert reason(v, mint(key)) == "jwks_unavailable"
    assert lockbox.calls == 1
    lockbox.t = 5.0
    assert reason(v, mint(key)) == "jwks_unavailable"  # fails fast: no retry storm
    assert lockbox.calls == 1
    lockbox.down = False
    lockbox.t = 10.0
    v.verify(mint(key))
    assert lockbox.calls == 2


def test_new_key_while_lockbox_is_unreachable_is_jwks_unavailable_not_unknown_key() -> None:
    old, new = keys.generate(NOW), keys.generate(NOW)
    lockbox = Source(old)
    v = lockbox.verifier(max_age=60.0, min_refresh_interval=10.0)
    v.verify(mint(old))
    lockbox.published = [old, new]  # `lockbox keys rotate`: NEW signs from now on
    lockbox.down = True
    lockbox.t = 10.0
    assert reason(v, mint(new)) == "jwks_unavailable"  # the set could not be refetched
    lockbox.t = 12.0
    assert reason(v, mint(new)) == "jwks_unavailable"  # rate-limited, still not unknown_key
    assert lockbox.calls == 2
    v.verify(mint(old))  # the cache is fresh: the known key is unaffected
    lockbox.down = False
    lockbox.t = 20.0
    v.verify(mint(new))


def test_unknown_kid_in_a_fresh_set_is_unknown_key_and_refetched_once_per_interval() -> None:
    key = keys.generate(NOW)
    lockbox = Source(key)
    v = lockbox.verifier(max_age=60.0, min_refresh_interval=10.0)
    v.verify(mint(key))
    forged = mint(keys.generate(NOW))
    lockbox.t = 1.0
    assert reason(v, forged) == "unknown_key"
    assert lockbox.calls == 1  # the set is 1 s old: no refetch
    lockbox.t = 10.0
    assert reason(v, forged) == "unknown_key"
    assert lockbox.calls == 2
    for i in range(50):
        lockbox.t = 10.0 + i * 0.19
        assert reason(v, forged) == "unknown_key"
    assert lockbox.calls == 2  # a flood of unknown kids does not hammer Lockbox
    lockbox.t = 20.0
    assert reason(v, forged) == "unknown_key"
    assert lockbox.calls == 3


def test_refresh_ahead_means_steady_traffic_never_fetches_synchronously() -> None:
    key = keys.generate(NOW)
    lockbox = Source(key)
    me = threading.get_ident()
    with lockbox.verifier(max_age=60.0, refresh_ahead=0.5, min_refresh_interval=10.0) as v:
        v.verify(mint(key))  # cold cache: the one synchronous fetch
        for t in range(1, 601):
            lockbox.t = float(t)
            v.verify(mint(key))
            assert v.wait_idle(WAIT)
        assert lockbox.threads[0] == me
        assert all(thread != me for thread in lockbox.threads[1:])
        assert 10 <= lockbox.calls <= 21  # about one refresh every max_age * refresh_ahead


def test_single_flight_concurrent_cold_verifies_fetch_once() -> None:
    key = keys.generate(NOW)
    lockbox = Source(key)
    gate = threading.Event()
    lockbox.gate = gate
    v = lockbox.verifier()
    token = mint(key)
    results: list[str] = []
    lock = threading.Lock()

    def verify() -> None:
        try:
            outcome = v.verify(token).kid
        except TokenError as exc:
            outcome = exc.reason
        with lock:
            results.append(outcome)

    first = threading.Thread(target=verify)
    first.start()
    assert lockbox.entered.wait(WAIT)  # the first verify is now fetching
    others = [threading.Thread(target=verify) for _ in range(8)]
    for thread in others:
        thread.start()
    assert results == []  # nobody verifies against a cold cache
    gate.set()
    for thread in [first, *others]:
        thread.join(WAIT)
    assert results == [key.kid] * 9
    assert lockbox.calls == 1


def test_single_flight_concurrent_verifies_start_one_refresh_ahead() -> None:
    key = keys.generate(NOW)
    lockbox = Source(key)
    with lockbox.verifier(max_age=60.0, refresh_ahead=0.5) as v:
        v.verify(mint(key))
        gate = threading.Event()
        lockbox.gate = gate
        lockbox.t = 45.0
        threads = [threading.Thread(target=v.verify, args=(mint(key),)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert not any(thread.is_alive() for thread in threads)  # none waited on the refresh
        assert lockbox.calls == 2
        gate.set()
        assert v.wait_idle(WAIT)


def test_close_stops_refreshing_ahead_and_is_idempotent() -> None:
    key = keys.generate(NOW)
    lockbox = Source(key)
    v = lockbox.verifier(max_age=60.0, refresh_ahead=0.5)
    v.verify(mint(key))
    gate = threading.Event()
    lockbox.gate = gate
    lockbox.t = 30.0
    v.verify(mint(key))
    assert lockbox.entered.wait(WAIT)
    assert v.close(timeout=0.0) is False  # the refresh in flight cannot be interrupted
    gate.set()
    assert v.close() is True
    assert v.close() is True
    lockbox.gate = None
    lockbox.t = 80.0  # fetched at 30: old enough to refresh ahead, but the verifier is closed
    v.verify(mint(key))
    assert v.wait_idle(WAIT)
    assert lockbox.calls == 2
    lockbox.t = 95.0
    v.verify(mint(key))  # past max_age a closed verifier fetches synchronously
    assert lockbox.calls == 3
    assert lockbox.threads[-1] == threading.get_ident()


def test_settings_cache_ttl_is_an_alias_of_max_age() -> None:
    lockbox = Source(keys.generate(NOW))
    assert lockbox.verifier().max_age == 60.0  # the documented default
    assert lockbox.verifier(cache_ttl=300).max_age == 300.0
    assert lockbox.verifier(max_age=30).cache_ttl == 30.0
    assert lockbox.verifier(max_age=30, cache_ttl=30).max_age == 30.0
    with pytest.raises(ValueError, match="alias"):
        lockbox.verifier(max_age=30, cache_ttl=300)
    with pytest.raises(ValueError, match="max_age"):
        lockbox.verifier(max_age=0)
    with pytest.raises(ValueError, match="refresh_ahead"):
        lockbox.verifier(refresh_ahead=1.0)
