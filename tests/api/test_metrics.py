"""``/metrics``: hidden without its setting, a bearer token when set, counters that move,
route labels that are templates, gauges computed from the database, the loopback listener.

Counters live in the process-wide registry and other tests move them too, so every
assertion compares a scrape before and after, never an absolute count.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import cast

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from lockbox import metrics
from lockbox.api.app import create_app
from lockbox.api.server import METRICS_HOST, start_metrics_server
from lockbox.config import Settings
from lockbox.domain.roles import Principal
from lockbox.service import cases, passwords, requests, sessions
from lockbox.service.denials import DenialRecorder
from tests.api.conftest import auth, token_for
from tests.conftest import World
from tests.e2e.conftest import free_port

TOKEN = "metrics-token-for-the-tests-0123456789"
MAILBOX = "exchange/mailbox/alice@contoso.com"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def web(world: World) -> Iterator[TestClient]:
    app = create_app(world.app)
    app.state.settings = Settings(metrics_token=TOKEN)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def scrape(client: TestClient) -> tuple[Samples, str]:
    r = client.get("/metrics", headers=auth(TOKEN))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["cache-control"] == "no-store"
    return parse(r.text), r.text


def approved(world: World) -> str:
    case = cases.open_case(world.app, world.engineer, tenant="contoso", title="Mailbox")
    req = requests.submit_request(
        world.app,
        world.engineer,
        tenant="contoso",
        case_id=case.id,
        resources=[MAILBOX],
        access_level="read",
        justification="Inspect the sync state",
    )
    requests.review_request(world.app, world.manager, req.id, approve=True)
    requests.decide_request(world.app, world.contoso_approver, req.id, approve=True)
    return req.id


def test_without_the_setting_metrics_is_indistinguishable_from_a_missing_path(
    world: World,
) -> None:
    app = create_app(world.app)
    app.state.settings = Settings(metrics_token=None)
    with TestClient(app) as client:
        for method in ("GET", "HEAD", "POST", "DELETE"):
            hidden = client.request(method, "/metrics", headers=auth(TOKEN))
            missing = client.request(method, "/no-such-thing", headers=auth(TOKEN))
            assert hidden.status_code == missing.status_code == 404, method
            assert hidden.headers["content-type"] == missing.headers["content-type"]
            assert hidden.content.replace(b"/metrics", b"") == missing.content.replace(
                b"/no-such-thing", b""
            )
    assert "/metrics" not in client.get("/openapi.json").text


def test_the_metrics_token_is_required_and_compared_exactly(web: TestClient, world: World) -> None:
    for headers in (
        {},
        auth(TOKEN + "x"),
        auth(TOKEN[:-1]),
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        auth(""),
    ):
        r = web.get("/metrics", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer"
        assert "lockbox_http" not in r.text
    assert web.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    # Only GET and HEAD scrape (a page path: the app's 405 page answers, as a 403).
    refused = web.post("/metrics", headers=auth(TOKEN))
    assert refused.status_code in (403, 405) and "lockbox_http" not in refused.text
    # An API token is not the metrics token.
    r = web.get("/metrics", headers=auth(token_for(world.app, world.provider_admin)))
    assert r.status_code == 401
    # OpenMetrics when the scraper asks for it.
    r = web.get(
        "/metrics", headers={**auth(TOKEN), "Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


def test_checks_move_the_decision_and_denial_audit_counters(web: TestClient, world: World) -> None:
    rid = approved(world)
    service = auth(token_for(world.app, world.service))
    before, _ = scrape(web)
    body = {"engineer": world.engineer.id, "tenant": "contoso", "resource": MAILBOX}
    for _ in range(2):
        r = web.post("/v1/access/check", headers=service, json={**body, "action": "read"})
        assert r.json()["allowed"] is True
    r = web.post("/v1/access/check", headers=service, json={**body, "action": "write"})
    assert (r.json()["allowed"], r.json()["reason"]) == (False, "level_too_low")
    r = web.post(
        "/v1/access/check",
        headers=service,
        json={**body, "action": "read", "engineer": "nobody@provider.test"},
    )
    assert r.json()["reason"] == "no_request"
    recorder = cast(FastAPI, web.app).state.lockbox.denials
    assert isinstance(recorder, DenialRecorder)
    assert recorder.flush(10)
    after, _ = scrape(web)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    decisions = "lockbox_access_decisions_total"
    assert moved(decisions, outcome="allowed", reason="approved") == 2
    assert moved(decisions, outcome="denied", reason="level_too_low") == 1
    assert moved(decisions, outcome="denied", reason="no_request") == 1
    assert moved("lockbox_denied_check_audit_total", stage="queued") == 2
    assert moved("lockbox_denied_check_audit_total", stage="written") == 2
    assert moved("lockbox_denied_check_audit_total", stage="dropped") == 0
    assert moved("lockbox_denied_check_audit_records_total") == 2
    checks = {"route": "/v1/access/check", "method": "POST", "status": "2xx"}
    assert moved("lockbox_http_request_duration_seconds_count", **checks) == 4
    assert rid


def test_route_labels_are_templates_never_raw_paths(web: TestClient, world: World) -> None:
    rid = approved(world)
    engineer = auth(token_for(world.app, world.engineer))
    before, _ = scrape(web)
    assert web.get(f"/v1/requests/{rid}", headers=engineer).status_code == 200
    # A malformed id (too short for a request id) is refused before any lookup: 422.
    assert web.get("/v1/requests/req_0123456789abcdefghij", headers=engineer).status_code == 422
    assert web.get("/no/such/place/zq81x").status_code == 404
    big = {"tenant": "contoso", "title": "x" * 70_000}
    assert web.post("/v1/cases", headers=engineer, json=big).status_code == 413
    assert web.request("BREW", "/v1/cases", headers=engineer).status_code in (404, 405)
    after, text = scrape(web)

    def moved(**labels: str) -> float:
        name = "lockbox_http_request_duration_seconds_count"
        return value(after, name, **labels) - value(before, name, **labels)

    one = "/v1/requests/{request_id}"
    assert moved(route=one, method="GET", status="2xx") == 1
    assert moved(route=one, method="GET", status="4xx") == 1
    assert moved(route=metrics.UNMATCHED, method="GET", status="4xx") == 1
    # Refused before routing (too large): no route chose it, and no raw path stands in.
    assert moved(route=metrics.UNMATCHED, method="POST", status="4xx") == 1
    assert moved(route="/v1/cases", method="OTHER", status="4xx") == 1
    for raw in (rid, "req_0123456789abcdefghij", "zq81x", "BREW"):
        assert raw not in text
    routes = {dict(labels)["route"] for _name, labels in after if "route" in dict(labels)}
    assert all(r == metrics.UNMATCHED or r.startswith("/") for r in routes)


def test_outbox_sweeper_and_session_gauges_come_from_the_database(
    web: TestClient, world: World
) -> None:
    snap, _ = scrape(web)
    assert value(snap, "lockbox_metrics_database_up") == 1
    assert value(snap, "lockbox_outbox_pending", channel="email") == 0
    assert value(snap, "lockbox_sweeper_lag_seconds") == 0
    assert value(snap, "lockbox_web_sessions_active") == 0

    case = cases.open_case(world.app, world.engineer, tenant="contoso", title="Mailbox")
    requests.submit_request(
        world.app,
        world.engineer,
        tenant="contoso",
        case_id=case.id,
        resources=[MAILBOX],
        access_level="read",
        justification="Inspect",
    )
    snap, _ = scrape(web)
    pending = value(snap, "lockbox_outbox_pending", channel="email")
    assert pending >= 1  # the managers hear about the request
    assert value(snap, "lockbox_outbox_due", channel="email") >= 1
    assert value(snap, "lockbox_outbox_oldest_due_age_seconds", channel="email") == 0
    assert value(snap, "lockbox_outbox_pending", channel="webhook") == 0

    # Nobody reviews it: a day later the review deadline is long past, unrecorded.
    world.clock.advance(timedelta(days=1))
    snap, _ = scrape(web)
    lag = value(snap, "lockbox_sweeper_lag_seconds")
    assert 0 < lag < timedelta(days=1).total_seconds()
    assert value(snap, "lockbox_sweeper_backlog") == 1
    assert value(snap, "lockbox_outbox_oldest_due_age_seconds", channel="email") >= 86_400

    passwords.set_password(
        world.app, Principal.operator(), world.contoso_approver.id, "a long passphrase"
    )
    signed = sessions.sign_in(world.app, "paula@contoso.test", "a long passphrase", client_ip=None)
    assert value(scrape(web)[0], "lockbox_web_sessions_active") == 1
    world.clock.advance(timedelta(hours=2))  # idle for longer than the 30 minutes
    assert value(scrape(web)[0], "lockbox_web_sessions_active") == 0
    assert signed.session.id


def test_a_database_failure_leaves_the_process_metrics_and_says_so(world: World) -> None:
    def broken() -> metrics.OperationalSnapshot:
        raise RuntimeError("database gone")

    body, _ = metrics.render(metrics.LockboxCollector(broken), None)
    samples = parse(body.decode())
    assert value(samples, "lockbox_metrics_database_up") == 0
    assert ("lockbox_outbox_pending", frozenset({("channel", "email")})) not in samples
    assert any(name == "lockbox_grant_feed_subscribers" for name, _ in samples)


def test_the_metrics_port_serves_on_loopback_without_a_token(world: World) -> None:
    port = free_port()
    server, thread = start_metrics_server(port, world.app, Settings(metrics_token=None))
    try:
        assert server.server_address[0] == METRICS_HOST == "127.0.0.1"
        r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert r.status_code == 200
        samples = parse(r.text)
        assert value(samples, "lockbox_metrics_database_up") == 1
        assert any(name == "lockbox_http_request_duration_seconds_count" for name, _ in samples)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_dead_workers_live_gauges_are_forgotten_but_their_counts_kept(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for kind in ("gauge_livesum", "counter", "histogram"):
        (tmp_path / f"{kind}_{gone.pid}.db").write_bytes(b"")
    metrics.forget_dead_processes(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"counter_{gone.pid}.db",
        f"histogram_{gone.pid}.db",
    ]


def test_settings_refuse_weak_tokens_and_misspelt_proxies() -> None:
    assert Settings(metrics_token="").metrics_token is None
    with pytest.raises(ValidationError, match="at least 16"):
        Settings(metrics_token="short")
    assert Settings(forwarded_allow_ips=" 10.0.0.1, 192.168.0.0/16 ").forwarded_allow_ips == (
        "10.0.0.1,192.168.0.0/16"
    )
    assert Settings(forwarded_allow_ips="*").forwarded_allow_ips == "*"
    with pytest.raises(ValidationError, match="not an IP address"):
        Settings(forwarded_allow_ips="10.0.0.1,proxy.internal")
