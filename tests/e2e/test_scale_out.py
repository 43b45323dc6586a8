"""Scale-out on one PostgreSQL schema: three ``lockbox serve`` processes (A, B, and C with
``--workers 2``) and two ``lockbox worker`` processes, all real subprocesses.

* the reference scenario hops between servers (submit on A, review and approve on B, the
  token from A, checks on B and C, close on A): any process answers for every other;
* grant-feed followers of B and of C see a grant approved on A start and end;
* the workers deliver every outbox row exactly once between them (SMTP and webhooks);
* ``/metrics``: token-protected on B and C, hidden on A, the loopback ``--metrics-port``
  without a token, and C's two workers add up to one set of numbers;
* forwarded headers are believed only by the server told to trust the proxy.

PostgreSQL is required (skipped when unreachable, a failure with
``LOCKBOX_TEST_POSTGRES=required``); the schema is created fresh and dropped at the end.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select, text

from lockbox.domain.roles import Principal
from lockbox.sdk.feed import GrantFeed
from lockbox.service import passwords, resource_services, tenants, tokens, users, webhooks
from lockbox.service.app import Lockbox
from lockbox.store import outbox as outbox_store
from lockbox.store import tables as t
from lockbox.store.db import Database, upgrade
from tests.conftest import PG_BASE, PG_REQUIRED, pg_url
from tests.e2e.conftest import VENV_BIN, free_port, stop, wait_until_up
from tests.notify.helpers import SmtpServer, WebhookReceiver

MAILBOX = "exchange/mailbox/alice@contoso.com"
METRICS_TOKEN = "scale-out-metrics-token-0123456789"
PASSWORD = "paula's long passphrase"


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    metrics_url: str | None = None  # the loopback --metrics-port listener


@dataclass
class Cluster:
    db_url: str
    lockbox: Lockbox
    a: Server
    b: Server
    c: Server
    workers: list[subprocess.Popen[bytes]]
    worker_env: dict[str, str]
    logs: Path
    smtp: SmtpServer
    hooks: WebhookReceiver
    engineer: Principal
    service: Principal
    secrets: dict[str, str] = field(default_factory=dict)

    def call(self, server: Server, who: str, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.secrets[who]}"}
        return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=15, **kw)

    def worker(self, *args: str) -> subprocess.Popen[bytes]:
        log = self.logs / f"worker-{len(list(self.logs.glob('worker-*')))}.log"
        with log.open("wb") as handle:
            return subprocess.Popen(
                [str(VENV_BIN / "lockbox"), "worker", *args],
                env=self.worker_env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )


def _start_server(
    name: str, logs: Path, env: dict[str, str], *args: str, metrics_port: int | None = None
) -> Server:
    port = free_port()
    log = logs / f"server-{name}.log"
    command = [str(VENV_BIN / "lockbox"), "serve", "--port", str(port), "--log-level", "warning"]
    if metrics_port is not None:
        command += ["--metrics-port", str(metrics_port)]
    with log.open("wb") as handle:
        proc = subprocess.Popen([*command, *args], env=env, stdout=handle, stderr=handle)
    server = Server(name, f"http://127.0.0.1:{port}", proc, log)
    if metrics_port is not None:
        server.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    return server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    schema = f"lockbox_scale_{os.getpid()}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    try:
        admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:
        if PG_REQUIRED:
            pytest.fail(f"PostgreSQL is required (LOCKBOX_TEST_POSTGRES=required): {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    logs = tmp_path_factory.mktemp("scale-out")
    db_url = pg_url(schema)
    db = Database(db_url)
    started: list[subprocess.Popen[bytes]] = []
    smtp = SmtpServer().start()
    hooks = WebhookReceiver().start()
    try:
        upgrade(db)
        lb = Lockbox(db)
        op = Principal.operator()
        tenants.create_tenant(lb, op, slug="contoso", name="Contoso Ltd")

        def mk(email: str, role: str, tenant: str | None = None) -> Principal:
            return users.create_user(lb, op, email=email, roles=[role], tenant=tenant).principal()

        engineer = mk("erin@provider.test", "engineer")
        manager = mk("mark@provider.test", "manager")
        approver = mk("paula@contoso.test", "approver", "contoso")
        admin_user = mk("ines@contoso.test", "tenant_admin", "contoso")
        service = mk("mailstore@provider.test", "resource_service")
        resource_services.register(
            lb,
            op,
            service.id,
            tenants=["contoso"],
            prefixes=["exchange/"],
            audience="lockbox-resource",
        )
        webhooks.register(lb, admin_user, url=hooks.url, allow_http_loopback=True)
        passwords.set_password(lb, op, approver.id, PASSWORD)
        secrets = {
            name: tokens.create_token(lb, op, user=who.id, name="scale-out").secret
            for name, who in (
                ("engineer", engineer),
                ("manager", manager),
                ("approver", approver),
                ("service", service),
            )
        }
        base_env = {
            **os.environ,
            "LOCKBOX_DATABASE_URL": db_url,
            "LOCKBOX_FEED_HEARTBEAT_SECONDS": "0.5",
            "LOCKBOX_COOKIE_SECURE": "auto",
        }
        for name in ("LOCKBOX_METRICS_TOKEN", "LOCKBOX_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS"):
            base_env.pop(name, None)
        with_token = {**base_env, "LOCKBOX_METRICS_TOKEN": METRICS_TOKEN}
        # A: migrates (a no-op at head), trusts the loopback proxy, metrics only on its port.
        a = _start_server(
            "a", logs, base_env, "--forwarded-allow-ips", "127.0.0.1", metrics_port=free_port()
        )
        # B: one process, /metrics behind the token. C: two workers, both kinds of metrics.
        b = _start_server("b", logs, with_token, "--no-migrate")
        c = _start_server(
            "c", logs, with_token, "--no-migrate", "--workers", "2", metrics_port=free_port()
        )
        started += [a.proc, b.proc, c.proc]
        for server in (a, b, c):
            try:
                wait_until_up(f"{server.url}/readyz", server.proc, limit=60)
            except RuntimeError as exc:
                raise RuntimeError(
                    f"server {server.name}: {exc}\n{server.log.read_text()}"
                ) from None
        worker_env = {
            **base_env,
            "LOCKBOX_SMTP_HOST": "127.0.0.1",
            "LOCKBOX_SMTP_PORT": str(smtp.port),
            "LOCKBOX_SMTP_SECURITY": "none",
            "LOCKBOX_MAIL_FROM": "Lockbox <lockbox@provider.test>",
            "LOCKBOX_WEBHOOK_ALLOW_HTTP_LOOPBACK": "true",
            "LOCKBOX_WORKER_BATCH_SIZE": "3",  # small batches: the two workers interleave
        }
        cluster = Cluster(
            db_url=db_url,
            lockbox=lb,
            a=a,
            b=b,
            c=c,
            workers=[],
            worker_env=worker_env,
            logs=logs,
            smtp=smtp,
            hooks=hooks,
            engineer=engineer,
            service=service,
            secrets=secrets,
        )
        cluster.workers = [cluster.worker("--interval", "0.2") for _ in range(2)]
        started += cluster.workers
        yield cluster
    finally:
        for proc in started:
            stop(proc)
        smtp.stop()
        hooks.stop()
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def _logs(cluster: Cluster) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(cluster.logs.iterdir())
    )


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``condition`` until it holds (a bounded wait for another process, not for time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def samples(body: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def scrape(server: Server, *, port: bool = False) -> dict[tuple[str, frozenset[Any]], float]:
    if port:
        assert server.metrics_url is not None
        r = httpx.get(server.metrics_url, timeout=10)
    else:
        headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        r = httpx.get(f"{server.url}/metrics", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return samples(r.text)


def metric(snapshot: dict[tuple[str, frozenset[Any]], float], name: str, **labels: str) -> float:
    return snapshot.get((name, frozenset(labels.items())), 0.0)


def submit(cluster: Cluster, server: Server) -> str:
    r = cluster.call(
        server, "engineer", "POST", "/v1/cases", json={"tenant": "contoso", "title": "Sync"}
    )
    assert r.status_code == 201, r.text
    r = cluster.call(
        server,
        "engineer",
        "POST",
        "/v1/requests",
        json={
            "tenant": "contoso",
            "case_id": r.json()["id"],
            "resources": [MAILBOX],
            "access_level": "read",
            "justification": "Inspect the sync state",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "pending_review"
    return str(r.json()["id"])


def approve(cluster: Cluster, server: Server, rid: str) -> None:
    r = cluster.call(
        server, "manager", "POST", f"/v1/requests/{rid}/review", json={"decision": "approve"}
    )
    assert r.status_code == 200 and r.json()["state"] == "pending_approval", r.text
    r = cluster.call(
        server, "approver", "POST", f"/v1/requests/{rid}/decide", json={"decision": "approve"}
    )
    assert r.status_code == 200 and r.json()["state"] == "approved", r.text


def close(cluster: Cluster, server: Server, rid: str) -> None:
    r = cluster.call(
        server, "engineer", "POST", f"/v1/requests/{rid}/close", json={"comment": "done"}
    )
    assert r.status_code == 200 and r.json()["state"] == "closed", r.text


def check(cluster: Cluster, server: Server, rid: str, kid: str | None = None) -> dict[str, Any]:
    body = {
        "engineer": cluster.engineer.id,
        "tenant": "contoso",
        "resource": MAILBOX,
        "action": "read",
        "request_id": rid,
    }
    if kid:
        body["kid"] = kid
    r = cluster.call(server, "service", "POST", "/v1/access/check", json=body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def test_the_reference_scenario_hops_between_servers(cluster: Cluster) -> None:
    a, b, c = cluster.a, cluster.b, cluster.c
    before_b = scrape(b)
    rid = submit(cluster, a)
    r = cluster.call(
        b, "manager", "POST", f"/v1/requests/{rid}/review", json={"decision": "approve"}
    )
    assert r.status_code == 200 and r.json()["state"] == "pending_approval", r.text
    r = cluster.call(b, "approver", "GET", "/v1/requests?state=pending_approval")
    assert rid in [item["id"] for item in r.json()["items"]]
    r = cluster.call(
        b, "approver", "POST", f"/v1/requests/{rid}/decide", json={"decision": "approve"}
    )
    assert r.status_code == 200 and r.json()["state"] == "approved", r.text
    r = cluster.call(a, "engineer", "POST", "/v1/access/token", json={"request_id": rid})
    assert r.status_code == 201, r.text
    kid = r.json()["kid"]
    # The key that signed on A is published by every server (it lives in the database).
    for server in (a, b, c):
        keys = httpx.get(f"{server.url}/.well-known/jwks.json", timeout=10).json()["keys"]
        assert kid in [k["kid"] for k in keys]
    assert (check(cluster, b, rid, kid)["allowed"], check(cluster, c, rid, kid)["allowed"]) == (
        True,
        True,
    )
    close(cluster, a, rid)
    for server in (b, c):
        answer = check(cluster, server, rid, kid)
        assert (answer["allowed"], answer["reason"]) == (False, "closed")
    after_b = scrape(b)
    decisions = "lockbox_access_decisions_total"
    assert (
        metric(after_b, decisions, outcome="allowed", reason="approved")
        - metric(before_b, decisions, outcome="allowed", reason="approved")
        == 1
    )
    assert (
        metric(after_b, decisions, outcome="denied", reason="closed")
        - metric(before_b, decisions, outcome="denied", reason="closed")
        == 1
    )
    route = {"route": "/v1/requests/{request_id}/decide", "method": "POST", "status": "2xx"}
    assert metric(after_b, "lockbox_http_request_duration_seconds_count", **route) >= 1


def test_grant_feed_followers_of_b_and_c_see_a_grant_made_and_ended_on_a(cluster: Cluster) -> None:
    token = cluster.secrets["service"]
    followers = [
        GrantFeed(cluster.b.url, token, stale_after=5.0).start(),
        GrantFeed(cluster.c.url, token, stale_after=5.0).start(),
    ]
    try:
        assert all(f.wait_ready(20) for f in followers)
        assert wait_for(lambda: metric(scrape(cluster.b), "lockbox_grant_feed_subscribers") == 1)
        # C's two workers hold one stream between them: the gauge adds them up.
        assert wait_for(
            lambda: metric(scrape(cluster.c, port=True), "lockbox_grant_feed_subscribers") == 1
        )
        ended: dict[str, str] = {}
        for follower in followers:
            follower.on_event(lambda kind, data: _note(kind, data, ended))
        rid = submit(cluster, cluster.a)
        approve(cluster, cluster.a, rid)
        for follower in followers:
            assert wait_for(partial(holds, follower, rid)), follower.base_url
            assert follower.table._by_request[rid].resources == (MAILBOX,)
        close(cluster, cluster.a, rid)
        for follower in followers:
            assert wait_for(partial(released, follower, rid)), follower.base_url
        assert ended.get(rid) == "closed"
    finally:
        for follower in followers:
            follower.stop()
    # The servers notice the streams ended (at the next heartbeat at the latest).
    assert wait_for(lambda: metric(scrape(cluster.b), "lockbox_grant_feed_subscribers") == 0)
    assert wait_for(lambda: metric(scrape(cluster.c), "lockbox_grant_feed_subscribers") == 0)


def holds(follower: GrantFeed, request_id: str) -> bool:
    return request_id in follower.table._by_request


def released(follower: GrantFeed, request_id: str) -> bool:
    return not holds(follower, request_id)


def _note(kind: str, data: dict[str, Any], ended: dict[str, str]) -> None:
    if kind == "end":
        ended[data["request_id"]] = data["reason"]


def test_metrics_are_hidden_token_protected_or_on_the_loopback_port(cluster: Cluster) -> None:
    a, b, c = cluster.a, cluster.b, cluster.c
    # A has no token setting: /metrics does not exist there; its port needs no token.
    assert httpx.get(f"{a.url}/metrics", timeout=10).status_code == 404
    assert (
        httpx.get(
            f"{a.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
        ).status_code
        == 404
    )
    assert metric(scrape(a, port=True), "lockbox_metrics_database_up") == 1
    for server in (b, c):
        assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer " + "x" * len(METRICS_TOKEN)}
        assert httpx.get(f"{server.url}/metrics", headers=wrong, timeout=10).status_code == 401
        assert metric(scrape(server), "lockbox_metrics_database_up") == 1
    # The database gauges are the same whichever process answers.
    gauges = ("lockbox_sweeper_backlog", "lockbox_web_sessions_active")
    assert [metric(scrape(b), g) for g in gauges] == [
        metric(scrape(a, port=True), g) for g in gauges
    ]


def test_the_workers_of_one_server_add_up_to_one_set_of_numbers(cluster: Cluster) -> None:
    c = cluster.c
    route = {"route": "/readyz", "method": "GET", "status": "2xx"}
    name = "lockbox_http_request_duration_seconds_count"
    before = metric(scrape(c, port=True), name, **route)
    for _ in range(30):  # a new connection each: the kernel spreads them over the workers
        assert httpx.get(f"{c.url}/readyz", timeout=10).status_code == 200
    assert metric(scrape(c, port=True), name, **route) - before == 30
    # The token route, answered by whichever worker, shows the same total.
    for _ in range(4):
        assert metric(scrape(c), name, **route) - before == 30


def test_forwarded_headers_are_believed_only_from_the_configured_proxy(cluster: Cluster) -> None:
    def failed_sign_in(server: Server, client_ip: str) -> None:
        forwarded = {"X-Forwarded-For": client_ip}
        with httpx.Client(base_url=server.url, headers=forwarded, timeout=10) as client:
            form = client.get("/signin")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token, form.text[:300]
            wrong = {"email": "paula@contoso.test", "password": "wrong", "csrf_token": token[1]}
            assert client.post("/signin", data=wrong).status_code in (200, 401)

    failed_sign_in(cluster.a, "203.0.113.7")
    failed_sign_in(cluster.b, "203.0.113.8")
    with cluster.lockbox.read() as tx:
        keys = set(tx.conn.execute(select(t.signin_throttle.c.key)).scalars())
    # A trusts its (loopback) proxy: throttled per real client. B ignores the header.
    assert "ip:203.0.113.7" in keys
    assert "ip:203.0.113.8" not in keys and "ip:127.0.0.1" in keys
    # X-Forwarded-Proto: https makes A's cookies Secure with the __Host- prefix; not B's.
    https = {"X-Forwarded-Proto": "https"}
    cookie_a = httpx.get(f"{cluster.a.url}/signin", headers=https, timeout=10).headers["set-cookie"]
    cookie_b = httpx.get(f"{cluster.b.url}/signin", headers=https, timeout=10).headers["set-cookie"]
    assert cookie_a.startswith("__Host-") and "secure" in cookie_a.lower()
    assert not cookie_b.startswith("__Host-") and "secure" not in cookie_b.lower()


def test_two_workers_deliver_every_outbox_row_exactly_once(cluster: Cluster) -> None:
    """Last: the earlier tests queued the e-mails and webhooks the workers deliver."""
    for _ in range(3):  # more traffic while both workers loop
        approve(cluster, cluster.b, submit(cluster, cluster.a))

    def due_pending() -> list[outbox_store.OutboxRow]:
        with cluster.lockbox.read() as tx:
            rows = outbox_store.list_rows(tx.conn, status="pending", limit=10_000)
            return [r for r in rows if r.due_at <= tx.now]

    assert wait_for(lambda: not due_pending(), timeout=60), _logs(cluster)
    for proc in cluster.workers:
        stop(proc)
    # Then two single rounds at once, for anything that fell due meanwhile.
    once = [cluster.worker("--once") for _ in range(2)]
    for proc in once:
        assert proc.wait(timeout=60) == 0, _logs(cluster)
    with cluster.lockbox.read() as tx:
        rows = outbox_store.list_rows(tx.conn, limit=10_000)
        now: datetime = tx.now
    by_status = Counter(r.status for r in rows)
    assert by_status["failed"] == 0, _logs(cluster)
    assert all(r.due_at > now for r in rows if r.status == "pending")  # later reminders only
    sent = [r for r in rows if r.status == "sent"]
    mails = Counter(m.message_id for m in cluster.smtp.collector.snapshot())
    hits = Counter(h.headers["webhook-id"] for h in cluster.hooks.hits)
    assert sent and mails and hits
    assert max(mails.values()) == 1 and max(hits.values()) == 1  # nothing twice
    assert len(mails) + len(hits) == len(sent)  # and nothing missing
    assert {r.channel for r in sent} == {"email", "webhook"}
    assert set(hits) == {r.id for r in sent if r.channel == "webhook"}
