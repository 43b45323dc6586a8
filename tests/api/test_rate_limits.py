"""Rate limits: separate budgets per token and per client address, 429 with the standard fields.

The fields are those of draft-ietf-httpapi-ratelimit-headers-06: ``RateLimit-Limit``,
``RateLimit-Remaining``, ``RateLimit-Reset`` and ``RateLimit-Policy``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lockbox.api import ratelimit
from lockbox.api.app import create_app
from lockbox.cli.http_backend import error_from_problem
from lockbox.config import Settings
from lockbox.domain.errors import RateLimited
from tests.access.helpers import ALICE, approved
from tests.api.conftest import PRINCIPALS, auth, token_for
from tests.conftest import World

PROBLEM = "application/problem+json"
FIELDS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "ratelimit-policy")
GENEROUS = "10000/minute"
#: Tight limits count per day: the sliding window weighs the previous window by the time
#: left in it, so a small per-minute budget could gain a unit when a test straddles the
#: minute. A day boundary inside a one-second test is (practically) never met.


def limits(**chosen: str) -> Settings:
    """Settings where every budget is generous except the ones a test sets."""
    values: dict[str, Any] = {
        "cookie_secure": "false",
        "rate_limit_signin": GENEROUS,
        "rate_limit_token_issue": GENEROUS,
        "rate_limit_token_issue_per_address": GENEROUS,
        "rate_limit_decisions": GENEROUS,
        "rate_limit_decisions_per_address": GENEROUS,
        "rate_limit_default": GENEROUS,
        "rate_limit_default_per_address": GENEROUS,
    }
    values.update(chosen)
    return Settings(**values)


class Limited:
    """An app with chosen limits, a client per address, and a token per world principal."""

    def __init__(self, world: World, settings: Settings) -> None:
        self.world = world
        self.app: FastAPI = create_app(world.app)
        self.app.state.settings = settings
        self.tokens = {name: token_for(world.app, getattr(world, name)) for name in PRINCIPALS}
        self._clients: dict[str, TestClient] = {}

    def client(self, address: str = "198.51.100.7") -> TestClient:
        # The address is only the ASGI scope's "client" value: nothing is sent anywhere.
        if address not in self._clients:
            self._clients[address] = TestClient(
                self.app, client=(address, 50000), raise_server_exceptions=False
            )
        return self._clients[address]

    def call(self, who: str | None, method: str, url: str, **kw: Any) -> Any:
        address = kw.pop("address", "198.51.100.7")
        headers = dict(kw.pop("headers", {}) or {})
        if who is not None:
            headers.update(auth(self.tokens[who]))
        return self.client(address).request(method, url, headers=headers, **kw)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


@pytest.fixture
def make(world: World) -> Iterator[Any]:
    made: list[Limited] = []

    def build(**chosen: str) -> Limited:
        limited = Limited(world, limits(**chosen))
        made.append(limited)
        return limited

    yield build
    for limited in made:
        limited.close()


def check_body(engineer: str) -> dict[str, str]:
    return {"engineer": engineer, "tenant": "contoso", "resource": ALICE, "action": "read"}


def test_a_spent_budget_is_429_with_retry_after_and_the_ratelimit_fields(make: Any) -> None:
    api = make(rate_limit_default="5/day")
    remaining = []
    for _ in range(5):
        r = api.call("engineer", "GET", "/v1/me")
        assert r.status_code == 200, r.text
        assert all(f in r.headers for f in FIELDS), r.headers  # on successful answers too
        assert r.headers["ratelimit-limit"] == "5"
        assert r.headers["ratelimit-policy"].startswith("5;w=86400")
        remaining.append(int(r.headers["ratelimit-remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    refused = api.call("engineer", "GET", "/v1/me")
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith(PROBLEM)
    body = refused.json()
    assert body["type"] == "urn:lockbox:problem:rate_limited"
    assert body["budget"] == "default"
    assert "this token or session" in body["detail"]
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 86400
    assert body["retry_after"] == wait
    assert refused.headers["ratelimit-limit"] == "5"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert 1 <= int(refused.headers["ratelimit-reset"]) <= 86400
    assert refused.headers["ratelimit-policy"].startswith("5;w=86400")
    assert "at most 5 per day" in body["detail"]
    # The CLI's server mode reads it back as the same domain error, with the wait.
    error = error_from_problem(429, body)
    assert isinstance(error, RateLimited) and error.retry_after == wait
    assert api.app.state.rate_limiter.refused["default"] == 1


def test_one_tokens_burst_leaves_other_tokens_and_other_budgets_untouched(
    make: Any, world: World
) -> None:
    approved(world)  # something for the service to be allowed
    api = make(rate_limit_default="3/day", rate_limit_decisions="3/day")
    for _ in range(3):
        assert api.call("engineer", "GET", "/v1/requests").status_code == 200
    assert api.call("engineer", "GET", "/v1/requests").status_code == 429
    # Same client address, other tokens: their own budgets.
    assert api.call("manager", "GET", "/v1/requests").status_code == 200
    # The resource service's decisions are a separate budget, keyed by its own token.
    for _ in range(3):
        r = api.call("service", "POST", "/v1/access/check", json=check_body("erin@provider.test"))
        assert r.status_code == 200, r.text
        assert r.json()["allowed"] is True
    assert api.call("service", "GET", "/v1/me").status_code == 200  # its default budget: untouched
    assert (
        api.call(
            "service", "POST", "/v1/access/check", json=check_body("erin@provider.test")
        ).status_code
        == 429
    )
    # And the engineer's token-issue budget was never touched by its burst elsewhere.
    r = api.call("engineer", "POST", "/v1/access/token", json={"request_id": "req_x"})
    assert r.status_code != 429


def test_decisions_are_not_throttled_by_a_burst_on_the_same_address(make: Any) -> None:
    api = make(rate_limit_default_per_address="4/day", rate_limit_decisions="1000/day")
    for who in ("engineer", "manager", "contoso_admin", "engineer"):
        assert api.call(who, "GET", "/v1/me").status_code == 200
    refused = api.call("contoso_approver", "GET", "/v1/me")
    assert refused.status_code == 429
    assert "this client address" in refused.json()["detail"]
    r = api.call("service", "POST", "/v1/access/check", json=check_body("erin@provider.test"))
    assert r.status_code == 200, r.text
    # Another address has its own budget.
    assert api.call("contoso_approver", "GET", "/v1/me", address="203.0.113.9").status_code == 200


def test_made_up_tokens_do_not_mint_fresh_budgets(make: Any) -> None:
    api = make(rate_limit_default="100/day", rate_limit_default_per_address="5/day")
    statuses = [
        api.call(None, "GET", "/v1/me", headers=auth(f"lbx_guess{n}")).status_code for n in range(7)
    ]
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429, 429]


def test_signin_has_its_own_budget_per_address(make: Any) -> None:
    api = make(rate_limit_signin="3/day")
    reset = {"email": "paula@contoso.test", "code": "WRONG-CODE", "new_password": "x" * 16}
    for _ in range(3):
        r = api.call(None, "POST", "/v1/password-reset", json=reset)
        assert r.status_code != 429, r.text
        assert r.headers["ratelimit-limit"] == "3"
    refused = api.call(None, "POST", "/v1/password-reset", json=reset)
    assert refused.status_code == 429
    assert refused.json()["budget"] == "signin"
    assert "this client address" in refused.json()["detail"]
    # The page form of sign-in shares the budget, and answers people with a page.
    page = api.call(None, "POST", "/signin", data={"email": "a@b.test", "password": "x"})
    assert page.status_code == 429
    assert page.headers["content-type"].startswith("text/html")
    assert "Too many requests" in page.text and int(page.headers["retry-after"]) >= 1
    assert page.headers.get("content-security-policy")  # still a page: the page headers
    # Another address, and everything that is not sign-in, are unaffected.
    other = api.call(None, "POST", "/v1/password-reset", json=reset, address="203.0.113.20")
    assert other.status_code != 429
    assert api.call("engineer", "GET", "/v1/me").status_code == 200


def test_token_issue_is_its_own_budget(make: Any) -> None:
    api = make(rate_limit_token_issue="2/day")
    for n in range(2):
        r = api.call("engineer", "POST", "/v1/tokens", json={"name": f"t{n}"})
        assert r.status_code == 201, r.text
    refused = api.call("engineer", "POST", "/v1/tokens", json={"name": "t3"})
    assert refused.status_code == 429 and refused.json()["budget"] == "token_issue"
    assert api.call("engineer", "GET", "/v1/tokens").status_code == 200


def test_sessions_are_keyed_by_their_cookie(make: Any) -> None:
    api = make(rate_limit_default="2/day")
    cookie = {"cookie": "lockbox_session=not-a-real-session-secret"}
    codes = [
        api.call(None, "GET", "/account", headers=cookie, follow_redirects=False).status_code
        for _ in range(3)
    ]
    assert codes[2] == 429 and 429 not in codes[:2]
    other = {"cookie": "lockbox_session=another-session-secret"}
    r = api.call(None, "GET", "/account", headers=other, follow_redirects=False)
    assert r.status_code != 429


def test_the_limiter_never_keeps_a_raw_credential(make: Any) -> None:
    api = make()
    secret = api.tokens["engineer"]
    api.call("engineer", "GET", "/v1/me")
    api.call(None, "GET", "/account", headers={"cookie": "lockbox_session=cookie-secret-value"})
    storage = api.app.state.rate_limiter.storage
    keys = " ".join(str(k) for k in vars(storage).get("storage", {}))
    assert keys and secret not in keys and "cookie-secret-value" not in keys


def test_probes_and_static_files_are_not_counted(make: Any) -> None:
    api = make(rate_limit_default_per_address="1/day")
    for _ in range(3):
        r = api.call(None, "GET", "/healthz")
        assert r.status_code == 200 and "ratelimit-limit" not in r.headers


def test_limits_can_be_switched_off(world: World) -> None:
    app = create_app(world.app)
    app.state.settings = Settings(rate_limit_enabled=False, rate_limit_default="1/minute")
    with TestClient(app) as client:
        secret = token_for(world.app, world.engineer)
        for _ in range(3):
            r = client.get("/v1/me", headers=auth(secret))
            assert r.status_code == 200 and "ratelimit-limit" not in r.headers


def test_refusals_are_counted_for_the_metrics_module(make: Any) -> None:
    prometheus = pytest.importorskip("prometheus_client")
    if ratelimit._RATE_LIMITED is None:
        pytest.skip("no metrics module in this build")

    def count() -> float:
        value = prometheus.REGISTRY.get_sample_value(
            "lockbox_rate_limited_total", {"budget": "decisions"}
        )
        return float(value or 0.0)

    before = count()
    api = make(rate_limit_decisions="1/day")
    for _ in range(3):
        api.call("service", "POST", "/v1/access/check", json=check_body("erin@provider.test"))
    assert count() - before == 2


def test_which_budget_each_route_draws_from() -> None:
    assert ratelimit.budget_for("POST", "/signin") == "signin"
    assert ratelimit.budget_for("POST", "/reset") == "signin"
    assert ratelimit.budget_for("POST", "/v1/password-reset") == "signin"
    assert ratelimit.budget_for("POST", "/v1/access/token") == "token_issue"
    assert ratelimit.budget_for("POST", "/v1/tokens") == "token_issue"
    assert ratelimit.budget_for("POST", "/v1/access/check") == "decisions"
    assert ratelimit.budget_for("POST", "/v1/access/events") == "decisions"
    assert ratelimit.budget_for("GET", "/v1/access/feed") == "decisions"
    assert ratelimit.budget_for("GET", "/signin") == "default"
    assert ratelimit.budget_for("GET", "/v1/tokens") == "default"
    assert ratelimit.budget_for("GET", "/healthz") is None
    assert ratelimit.budget_for("GET", "/static/lockbox.css") is None


def test_a_misspelt_limit_stops_the_configuration() -> None:
    with pytest.raises(ValueError, match="rate limit"):
        Settings(rate_limit_decisions="lots per minute")
    with pytest.raises(ValueError, match="storage URI"):
        Settings(rate_limit_storage="redis")
