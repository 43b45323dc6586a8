"""Races, killed processes and a moved clock, against a real ``lockbox serve`` process.

Each test runs on SQLite and on PostgreSQL (the ``world`` fixture). Many
clients hit one request at the same instant over HTTP: exactly one wins, the
losers get a clear 409 (412 for a stale ``If-Match``), nothing answers 500,
and the tenant's audit chain still verifies with exactly one decision record.
The server is SIGKILLed in the middle of a burst of writes and restarted: no
half-written change survives. The server clock is moved with
``LOCKBOX_TEST_CLOCK_FILE``; no test sleeps for time to pass.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from lockbox.clock import OffsetFileClock
from lockbox.domain.lifecycle import State
from lockbox.service import sweeper, tokens
from lockbox.service.app import Lockbox
from lockbox.store import tables as t
from lockbox.store.db import Database
from tests.adversarial.server import MAILBOX, Server, audit_ops, chain_ok, new_request, race
from tests.api.conftest import Api
from tests.conftest import World

N = 12
WHO = (
    "engineer",
    "manager",
    "manager2",
    "contoso_admin",
    "contoso_approver",
    "contoso_approver2",
    "contoso_auditor",
    "provider_admin",
    "service",
)
DECISIONS = {
    "request.approve",
    "request.deny",
    "request.expire",
    "request.close",
    "request.revoke",
    "request.end_access",
    "request.cancel",
}


class Env:
    def __init__(self, server: Server, world: World, secrets: dict[str, str]) -> None:
        self.server = server
        self.world = world
        self.secrets = secrets
        self.clients: dict[str, httpx.Client] = {}

    def __call__(self, who: str) -> httpx.Client:
        if who not in self.clients:
            self.clients[who] = self.server.client(self.secrets[who])
        return self.clients[who]

    def fresh(self, who: str) -> httpx.Client:
        """A client of its own (httpx clients are shared safely, but one per racer is realistic)."""
        return self.server.client(self.secrets[who])

    def close(self) -> None:
        for c in self.clients.values():
            c.close()


@pytest.fixture
def env(world: World, tmp_path: Path) -> Iterator[Env]:
    secrets = {
        who: tokens.create_token(world.app, getattr(world, who), name="race").secret for who in WHO
    }
    clock_file = tmp_path / "clock-offset"
    clock_file.write_text("0")
    server = Server(world.app.db.url, clock_file)
    server.start()
    e = Env(server, world, secrets)
    try:
        yield e
    finally:
        e.close()
        server.stop()
        log = server.log()
        assert "Traceback" not in log, log
        assert " 500 " not in log, log


def _statuses(responses: list[httpx.Response]) -> list[int]:
    return [r.status_code for r in responses]


def _assert_one_winner(
    responses: list[httpx.Response], loser: frozenset[int] = frozenset({409})
) -> httpx.Response:
    codes = _statuses(responses)
    assert 500 not in codes, [r.text for r in responses if r.status_code >= 500]
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, codes
    for r in responses:
        if r.status_code != 200:
            assert r.status_code in loser, (r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["detail"]
    return winners[0]


def _call(
    client: httpx.Client, method: str, url: str, **kw: object
) -> Callable[[], httpx.Response]:
    return lambda: client.request(method, url, **kw)  # type: ignore[arg-type]


def _approve_vs_deny_over_http(env: Env) -> None:
    rid = new_request(env("engineer"), env("manager"))
    deciders = ("contoso_approver", "contoso_approver2", "contoso_admin")
    clients = [env.fresh(deciders[i % 3]) for i in range(N)]
    try:
        calls = [
            _call(
                c,
                "POST",
                f"/v1/requests/{rid}/decide",
                json={"decision": "approve" if i % 2 else "deny"},
            )
            for i, c in enumerate(clients)
        ]
        winner = _assert_one_winner(race(calls))
    finally:
        for c in clients:
            c.close()
    state = env("engineer").get(f"/v1/requests/{rid}").json()["state"]
    assert state == winner.json()["state"] and state in ("approved", "denied")
    ops = [op for op in audit_ops(env("contoso_auditor"), rid) if op in DECISIONS]
    assert ops == ["request.approve" if state == "approved" else "request.deny"]
    assert chain_ok(env("contoso_auditor"))["ok"]
    with env.world.app.read() as tx:
        rows = tx.conn.execute(
            select(t.request_decisions).where(t.request_decisions.c.request_id == rid)
        ).all()
    assert len(rows) == 1


def _revoke_vs_close_over_http(env: Env) -> None:
    rid = new_request(env("engineer"), env("manager"))
    r = env("contoso_approver").post(f"/v1/requests/{rid}/decide", json={"decision": "approve"})
    assert r.json()["state"] == "approved"
    actors = ("contoso_approver", "contoso_admin", "engineer", "manager")
    actions = {"contoso_approver": "revoke", "contoso_admin": "revoke", "engineer": "close"}
    clients = [(actors[i % 4], env.fresh(actors[i % 4])) for i in range(N)]
    try:
        calls = [
            _call(c, "POST", f"/v1/requests/{rid}/{actions.get(who, 'close')}", json={})
            for who, c in clients
        ]
        _assert_one_winner(race(calls))
    finally:
        for _who, c in clients:
            c.close()
    ops = [op for op in audit_ops(env("contoso_auditor"), rid) if op in DECISIONS]
    assert ops[0] == "request.approve"
    assert len(ops) == 2 and ops[1] in ("request.revoke", "request.close"), ops
    assert chain_ok(env("contoso_auditor"))["ok"]


def _approve_vs_expiry(env: Env) -> None:
    """Approvers race the clock moving past the approval deadline and a sweeper recording it."""
    rid = new_request(env("engineer"), env("manager"))
    clients = [env.fresh(("contoso_approver", "contoso_approver2")[i % 2]) for i in range(N)]
    sweeper_app = Lockbox(Database(env.world.app.db.url), OffsetFileClock(env.server.clock_file))

    def expire() -> httpx.Response:
        env.server.shift(12 * 3600 + 1)  # just past the approval window
        sweeper.sweep_deadlines(sweeper_app)
        return httpx.Response(299)

    try:
        calls = [
            _call(c, "POST", f"/v1/requests/{rid}/decide", json={"decision": "approve"})
            for c in clients
        ]
        responses = race([*calls, expire])
    finally:
        for c in clients:
            c.close()
        sweeper_app.db.dispose()
    responses = responses[:-1]
    codes = _statuses(responses)
    assert 500 not in codes
    assert all(c in (200, 409) for c in codes), codes
    assert codes.count(200) <= 1
    ops = [op for op in audit_ops(env("contoso_auditor"), rid) if op in DECISIONS]
    if codes.count(200) == 1:
        # approved before the deadline; the sweeper may then record the end of access? No:
        # access lasts 4 h from approval, and the clock moved 12 h: it is over, so recorded.
        assert ops[0] == "request.approve" and "request.expire" not in ops, ops
    else:
        assert ops == ["request.expire"], ops
    assert chain_ok(env("contoso_auditor"))["ok"]


def _parallel_writes_on_many_requests_keep_one_chain(env: Env) -> None:
    """Different requests of one tenant, written at once: the audit chain must not fork."""
    rids = [new_request(env("engineer"), env("manager")) for _ in range(6)]
    clients = [env.fresh(w) for w in ("contoso_approver", "contoso_admin", "service")]
    try:
        calls: list[Callable[[], httpx.Response]] = []
        for i, rid in enumerate(rids):
            calls.append(
                _call(
                    clients[i % 2],
                    "POST",
                    f"/v1/requests/{rid}/decide",
                    json={"decision": "approve"},
                )
            )
            calls.append(
                _call(
                    clients[2],
                    "POST",
                    "/v1/access/check",
                    json={
                        "engineer": "erin@provider.test",
                        "tenant": "contoso",
                        "resource": "exchange/mailbox/bob@contoso.com",
                        "action": "read",
                    },
                )
            )
        responses = race(calls)
    finally:
        for c in clients:
            c.close()
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    report = chain_ok(env("contoso_auditor"))
    assert report["ok"], report
    seqs = [
        item["seq"]
        for item in env("contoso_auditor")
        .get("/v1/tenants/contoso/audit", params={"limit": 1000})
        .json()["items"]
    ]
    assert seqs == list(range(1, len(seqs) + 1))


def _policy_changes_with_the_same_if_match(env: Env) -> None:
    admin = env("contoso_admin")
    tag = admin.get("/v1/tenants/contoso/policy").headers["ETag"]
    clients = [env.fresh("contoso_admin") for _ in range(N)]
    try:
        calls = [
            _call(
                c,
                "PATCH",
                "/v1/tenants/contoso/policy",
                json={"required_approvals": 2 + i % 2},
                headers={"If-Match": tag},
            )
            for i, c in enumerate(clients)
        ]
        _assert_one_winner(race(calls), loser=frozenset({412}))
    finally:
        for c in clients:
            c.close()
    ops = [
        i["operation"]
        for i in env("contoso_auditor")
        .get("/v1/tenants/contoso/audit", params={"operation": "policy.", "limit": 1000})
        .json()["items"]
    ]
    assert len(ops) == 1, ops
    assert chain_ok(env("contoso_auditor"))["ok"]


def _concurrent_token_creation_and_revocation(env: Env) -> None:
    admin = env("contoso_auditor")
    creators = [env.fresh("contoso_approver") for _ in range(N)]
    try:
        created = race(
            [_call(c, "POST", "/v1/tokens", json={"name": f"t{i}"}) for i, c in enumerate(creators)]
        )
        assert all(r.status_code == 201 for r in created), [r.text for r in created]
        secrets = {r.json()["token"] for r in created}
        ids = {r.json()["id"] for r in created}
        assert len(secrets) == N and len(ids) == N
        victim = created[0].json()["id"]
        revoked = race([_call(c, "POST", f"/v1/tokens/{victim}/revoke") for c in creators])
        assert all(r.status_code == 200 for r in revoked), [r.text for r in revoked]
    finally:
        for c in creators:
            c.close()
    # One revocation happened, so the customer's audit log says so once.
    items = admin.get(
        "/v1/tenants/contoso/audit", params={"operation": "token.revoked", "limit": 1000}
    ).json()["items"]
    assert [i["details"]["token_id"] for i in items] == [victim]
    assert chain_ok(env("contoso_auditor"))["ok"]
    with httpx.Client(base_url=env.server.url, timeout=30) as anon:
        dead = anon.get("/v1/me", headers={"Authorization": f"Bearer {created[0].json()['token']}"})
        assert dead.status_code == 401
        live = anon.get("/v1/me", headers={"Authorization": f"Bearer {created[1].json()['token']}"})
        assert live.status_code == 200


def _concurrent_webhook_deletes_audit_once(env: Env) -> None:
    admin = env("contoso_admin")
    hook = admin.post("/v1/webhooks", json={"url": "https://hooks.example.com/lockbox"})
    assert hook.status_code == 201, hook.text
    hid = hook.json()["id"]
    clients = [env.fresh("contoso_admin") for _ in range(N)]
    try:
        responses = race([_call(c, "DELETE", f"/v1/webhooks/{hid}") for c in clients])
    finally:
        for c in clients:
            c.close()
    codes = _statuses(responses)
    assert codes.count(204) == 1 and codes.count(404) == N - 1, codes
    items = (
        env("contoso_auditor")
        .get("/v1/tenants/contoso/audit", params={"operation": "webhook.delete", "limit": 1000})
        .json()["items"]
    )
    assert len(items) == 1, items
    assert chain_ok(env("contoso_auditor"))["ok"]


# -- killed processes ---------------------------------------------------------------------


def test_sigkill_in_a_burst_of_writes_leaves_nothing_half_written(env: Env) -> None:
    world = env.world
    rids = [new_request(env("engineer"), env("manager")) for _ in range(4)]
    stop = threading.Event()

    def burst(who: str, job: Callable[[httpx.Client, int], object]) -> None:
        with env.fresh(who) as c:
            i = 0
            while not stop.is_set():
                try:
                    job(c, i)
                except httpx.HTTPError:
                    return  # the server died under us
                i += 1

    def submit(c: httpx.Client, i: int) -> object:
        case = c.post("/v1/cases", json={"tenant": "contoso", "title": f"burst {i}"})
        if case.status_code != 201:
            return None
        return c.post(
            "/v1/requests",
            json={
                "tenant": "contoso",
                "case_id": case.json()["id"],
                "resources": [MAILBOX],
                "justification": "burst",
            },
        )

    def decide(c: httpx.Client, i: int) -> object:
        return c.post(f"/v1/requests/{rids[i % len(rids)]}/decide", json={"decision": "approve"})

    def check(c: httpx.Client, i: int) -> object:
        return c.post(
            "/v1/access/check",
            json={
                "engineer": "erin@provider.test",
                "tenant": "contoso",
                "resource": f"exchange/mailbox/x{i}@contoso.com",
                "action": "read",
            },
        )

    jobs = [
        ("engineer", submit),
        ("contoso_approver", decide),
        ("service", check),
        ("service", check),
    ]
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(burst, who, job) for who, job in jobs]
        # Let the burst get going: wait (bounded) until the audit log has grown.
        with world.app.read() as tx:
            start = len(list(tx.conn.execute(select(t.audit_events.c.id))))
        grown = threading.Event()
        for _ in range(600):
            with world.app.read() as tx:
                if len(list(tx.conn.execute(select(t.audit_events.c.id)))) > start + 30:
                    grown.set()
                    break
            grown.wait(0.02)
        env.server.kill()
        stop.set()
        for f in futures:
            f.result(timeout=60)
    env.server.lines.clear()
    env.server.start()  # restart on the same database
    env.clients.clear()
    assert chain_ok(env("contoso_auditor"))["ok"]
    app = world.app
    with app.read() as tx:
        requests = list(tx.conn.execute(select(t.access_requests)).mappings())
        events = list(tx.conn.execute(select(t.audit_events)).mappings())
        outbox = list(tx.conn.execute(select(t.outbox)).mappings())
    by_request: dict[str, list[dict[str, object]]] = {}
    for e in sorted(events, key=lambda e: (e["tenant_id"], e["seq"])):
        if e["request_id"]:
            by_request.setdefault(e["request_id"], []).append(dict(e))
    import json

    for req in requests:
        history = [
            e for e in by_request.get(req["id"], []) if str(e["operation"]).startswith("request.")
        ]
        assert history and history[0]["operation"] == "request.submit", req["id"]
        last = json.loads(str(history[-1]["details"]))
        assert last["to"] == req["state"], (req["id"], req["state"], history)
        assert req["version"] == len(history)
        # Every state change queued its notifications in the same transaction.
    for row in outbox:
        assert row["status"] in ("pending", "sent", "failed", "skipped")
        assert isinstance(row["payload"], dict) and row["payload"]
        if row["request_id"]:
            assert any(r["id"] == row["request_id"] for r in requests)
    approved = [r for r in requests if r["state"] == State.APPROVED.value]
    for r in approved:
        assert any(o["request_id"] == r["id"] for o in outbox), "approval lost its notification"
    # And the restarted server still takes writes.
    assert new_request(env("engineer"), env("manager"))


# -- the clock moved -----------------------------------------------------------------------


def _check(env: Env, rid: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "engineer": "erin@provider.test",
        "tenant": "contoso",
        "resource": MAILBOX,
        "action": "read",
    }
    if rid:
        body["request_id"] = rid
    r = env("service").post("/v1/access/check", json=body)
    assert r.status_code == 200, r.text
    result: dict[str, object] = r.json()
    return result


def _clock_forward_ends_access_at_once_without_a_worker(env: Env) -> None:
    rid = new_request(env("engineer"), env("manager"))
    env("contoso_approver").post(f"/v1/requests/{rid}/decide", json={"decision": "approve"})
    assert _check(env, rid)["allowed"] is True
    tok = env("engineer").post("/v1/access/token", json={"request_id": rid})
    assert tok.status_code in (200, 201), tok.text
    env.server.shift(4 * 3600 + 1)
    assert _check(env, rid)["allowed"] is False
    assert _check(env)["allowed"] is False
    again = env("engineer").post("/v1/access/token", json={"request_id": rid})
    assert again.status_code == 409, again.text
    assert env("engineer").get(f"/v1/requests/{rid}").json()["state"] == "access_ended"
    # A decision on the (effectively) ended request is refused with a clear conflict.
    late = env("contoso_approver").post(f"/v1/requests/{rid}/revoke", json={})
    assert late.status_code == 409, late.text


def _clock_backwards_never_reopens_a_recorded_expiry(env: Env) -> None:
    env.server.shift(0)
    pending = new_request(env("engineer"), env("manager"))
    granted = new_request(env("engineer"), env("manager"))
    env("contoso_approver").post(f"/v1/requests/{granted}/decide", json={"decision": "approve"})
    env.server.shift(13 * 3600)
    sweeper_app = Lockbox(Database(env.world.app.db.url), OffsetFileClock(env.server.clock_file))
    try:
        assert sweeper.sweep_deadlines(sweeper_app).expired >= 2
    finally:
        sweeper_app.db.dispose()
    env.server.shift(-3600)  # the clock goes back, before approval even
    r = env("contoso_approver").post(f"/v1/requests/{pending}/decide", json={"decision": "approve"})
    assert r.status_code == 409, r.text
    assert _check(env, granted)["allowed"] is False
    assert _check(env)["allowed"] is False
    tok = env("engineer").post("/v1/access/token", json={"request_id": granted})
    assert tok.status_code == 409, tok.text
    assert chain_ok(env("contoso_auditor"))["ok"]


def _clock_backwards_after_approval_keeps_the_stored_deadline(env: Env) -> None:
    rid = new_request(env("engineer"), env("manager"))
    approved = env("contoso_approver").post(
        f"/v1/requests/{rid}/decide", json={"decision": "approve"}
    )
    deadline = approved.json()["access_deadline"]
    start = float(env.server.clock_file.read_text())
    env.server.shift(start - 2 * 3600)
    got = env("engineer").get(f"/v1/requests/{rid}").json()
    assert got["access_deadline"] == deadline
    # Before the approval instant the stored deadline still bounds everything: a token is
    # issued (the grant is approved and its deadline ahead), and it ends by that deadline.
    tok = env("engineer").post("/v1/access/token", json={"request_id": rid})
    assert tok.status_code == 201, tok.text
    assert tok.json()["expires_at"] <= deadline
    env.server.shift(start + 4 * 3600 + 1)
    assert _check(env, rid)["allowed"] is False


# -- SQLite: a lock held past busy_timeout -----------------------------------------------


def test_sqlite_database_locked_is_a_503_not_a_500(api: Api) -> None:
    """A writer that cannot get SQLite's lock within busy_timeout gets a retryable 503."""
    app = api.world.app
    if not app.db.is_sqlite:
        pytest.skip("SQLite only")

    @event.listens_for(app.db.engine, "connect")
    def _impatient(dbapi_conn: Any, _record: Any) -> None:  # after the 30 s default
        dbapi_conn.execute("PRAGMA busy_timeout=50")

    app.db.engine.dispose()  # new connections get the short timeout
    blocker = sqlite3.connect(str(app.db.engine.url.database), isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        r = api.call("engineer", "POST", "/v1/cases", json={"tenant": "contoso", "title": "locked"})
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["Retry-After"] == "1"
    finally:
        blocker.rollback()
        blocker.close()
        event.remove(app.db.engine, "connect", _impatient)
    app.db.engine.dispose()
    r = api.call("engineer", "POST", "/v1/cases", json={"tenant": "contoso", "title": "free"})
    assert r.status_code == 201, r.text


# -- the tests: one server per test (starting one takes seconds), several scenarios each ----


# Each scenario is its own test with its own server, so one failure hides no other.
SCENARIOS = {
    "approve_vs_deny": _approve_vs_deny_over_http,
    "revoke_vs_close": _revoke_vs_close_over_http,
    "parallel_writes_one_chain": _parallel_writes_on_many_requests_keep_one_chain,
    "token_create_and_revoke": _concurrent_token_creation_and_revocation,
    "webhook_deletes_audit_once": _concurrent_webhook_deletes_audit_once,
    "policy_changes_same_if_match": _policy_changes_with_the_same_if_match,
    "approve_vs_expiry": _approve_vs_expiry,
    "clock_forward_ends_access": _clock_forward_ends_access_at_once_without_a_worker,
    "clock_backwards_keeps_expiry": _clock_backwards_never_reopens_a_recorded_expiry,
    "clock_backwards_keeps_deadline": _clock_backwards_after_approval_keeps_the_stored_deadline,
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_over_http(env: Env, scenario: str) -> None:
    SCENARIOS[scenario](env)
