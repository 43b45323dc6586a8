"""SDK pieces without a server: JWKS cache and refetch limits, the background reporter."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from lockbox.access import keys, tokens
from lockbox.sdk.client import LockboxAPIError
from lockbox.sdk.reporter import EventReporter
from lockbox.sdk.verify import TokenError, TokenVerifier

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def mint(key: keys.SigningKey, **kw: Any) -> str:
    args: dict[str, Any] = {
        "issuer": "lockbox",
        "audience": "mailstore",
        "engineer_id": "usr_1",
        "tenant_id": "ten_1",
        "tenant_slug": "contoso",
        "request_id": "req_1",
        "resources": ["exchange/mailbox/*"],
        "access_level": "read_write",
        "now": NOW,
        "ttl": timedelta(minutes=5),
        "access_deadline": NOW + timedelta(hours=4),
    }
    args.update(kw)
    return tokens.mint(key, **args).token


class Fake:
    """A JWKS source and a monotonic clock the test controls."""

    def __init__(self, *published: keys.SigningKey) -> None:
        self.published = list(published)
        self.calls = 0
        self.t = 0.0

    def fetch(self) -> dict[str, Any]:
        self.calls += 1
        return keys.jwks(self.published)

    def verifier(self, **kw: Any) -> TokenVerifier:
        return TokenVerifier(
            audience="mailstore",
            fetch_jwks=self.fetch,
            clock=lambda: NOW,
            monotonic=lambda: self.t,
            **kw,
        )


def test_unknown_kid_refetches_at_most_once_per_interval() -> None:
    k1, k2 = keys.generate(NOW), keys.generate(NOW)
    fake = Fake(k1)
    v = fake.verifier(min_refresh_interval=10, cache_ttl=300)
    v.verify(mint(k1))
    assert fake.calls == 1
    v.verify(mint(k1))
    assert fake.calls == 1  # cached
    forged = mint(keys.generate(NOW))
    fake.t = 5
    with pytest.raises(TokenError) as err:
        v.verify(forged)
    assert err.value.reason == "unknown_key"
    assert fake.calls == 1  # within the interval: no refetch
    fake.published.append(k2)
    fake.t = 11
    v.verify(mint(k2))  # rotation seen on the next allowed refetch
    assert fake.calls == 2
    for _ in range(20):
        with pytest.raises(TokenError):
            v.verify(forged)
    assert fake.calls == 2  # a flood of unknown kids does not hammer Lockbox
    fake.t = 400
    v.verify(mint(k1))
    assert fake.calls == 3  # cache expiry


def test_claims_time_and_audience_checks() -> None:
    key = keys.generate(NOW)
    fake = Fake(key)
    v = fake.verifier(leeway=timedelta(seconds=30))
    with pytest.raises(TokenError) as err:
        v.verify(mint(key, audience="other"))
    assert err.value.reason == "wrong_audience"
    with pytest.raises(TokenError) as err:
        v.verify(mint(key, issuer="evil"))
    assert err.value.reason == "wrong_issuer"
    v.verify(mint(key, now=NOW + timedelta(seconds=30)))  # issuer clock ahead: within leeway
    with pytest.raises(TokenError) as err:
        v.verify(mint(key, now=NOW + timedelta(seconds=31)))
    assert err.value.reason == "not_yet_valid"
    with pytest.raises(TokenError) as err:
        v.verify(mint(key, now=NOW - timedelta(minutes=5)))
    assert err.value.reason == "expired"
    short = mint(key, access_deadline=NOW, now=NOW - timedelta(seconds=1))
    with pytest.raises(TokenError):
        v.verify(short)  # exp == deadline == NOW: expired at the instant
    with pytest.raises(ValueError, match="leeway"):
        fake.verifier(leeway=timedelta(minutes=10))
    with pytest.raises(TokenError) as err:
        v.verify("a.b.c")
    assert err.value.reason == "malformed"


def test_hs256_and_none_tokens_are_refused() -> None:
    import jwt

    key = keys.generate(NOW)
    v = Fake(key).verifier()
    claims = {"sub": "x", "aud": "mailstore", "iss": "lockbox"}
    hs = jwt.encode(
        claims, "secret-secret-secret-secret-32by", algorithm="HS256", headers={"kid": key.kid}
    )
    with pytest.raises(TokenError) as err:
        v.verify(hs)
    assert err.value.reason == "unsupported_algorithm"
    none = jwt.encode(claims, None, algorithm="none", headers={"kid": key.kid})
    with pytest.raises(TokenError):
        v.verify(none)


class FlakySender:
    def __init__(self, failures: list[Exception | None]) -> None:
        self.failures = failures
        self.batches: list[list[dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, batch: list[dict[str, Any]]) -> None:
        with self.lock:
            failure = self.failures.pop(0) if self.failures else None
            if failure is not None:
                raise failure
            self.batches.append(batch)


def event(i: int) -> dict[str, Any]:
    return {"request_id": f"req_{i}", "action": "read", "resource": "a/b"}


def test_reporter_batches_and_retries_with_backoff() -> None:
    sender = FlakySender([httpx.ConnectError("down"), LockboxAPIError(503, {}), None])
    reporter = EventReporter(sender, backoff_base=0.001, batch_size=100, linger=0.05)
    for i in range(10):
        assert reporter.put(event(i))
    assert reporter.close(timeout=10)
    sent = [e for b in sender.batches for e in b]
    assert [e["request_id"] for e in sent] == [f"req_{i}" for i in range(10)]
    assert reporter.stats["sent"] == 10
    assert reporter.stats["retries"] >= 2
    assert not reporter.put(event(99))  # closed
    assert reporter.stats["dropped"] == 1


def test_reporter_salvages_a_batch_with_one_bad_event() -> None:
    class Picky:
        sent: list[str] = []

        def __call__(self, batch: list[dict[str, Any]]) -> None:
            if any(e["request_id"] == "req_bad" for e in batch):
                raise LockboxAPIError(422, {"detail": "no such request"})
            self.sent.extend(e["request_id"] for e in batch)

    picky = Picky()
    reporter = EventReporter(picky, linger=0.05)
    for rid in ("req_1", "req_bad", "req_2"):
        reporter.put({"request_id": rid, "action": "read", "resource": "a/b"})
    assert reporter.flush(timeout=10)
    assert sorted(picky.sent) == ["req_1", "req_2"]
    assert reporter.stats["failed"] == 1
    reporter.close()


def test_reporter_queue_is_bounded_and_never_blocks() -> None:
    gate = threading.Event()

    def blocked(_batch: list[dict[str, Any]]) -> None:
        gate.wait(10)

    reporter = EventReporter(blocked, max_queue=3, batch_size=1, linger=0)
    results = [reporter.put(event(i)) for i in range(20)]
    assert results.count(False) >= 16  # at most 3 queued + 1 in flight
    assert reporter.stats["dropped"] == results.count(False)
    gate.set()
    assert reporter.close(timeout=10)


def test_reporter_gives_up_after_max_attempts() -> None:
    sender = FlakySender([httpx.ConnectError("down")] * 10)
    reporter = EventReporter(sender, max_attempts=3, backoff_base=0.001)
    reporter.put(event(1))
    assert reporter.flush(timeout=10)
    assert reporter.stats["failed"] == 1 and reporter.stats["sent"] == 0
    reporter.close()
