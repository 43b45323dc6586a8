"""Secrets never leak: API tokens (``lbx_…``), webhook secrets (``whsec_…``), passwords,
the SMTP password and the JWT signing keys stay out of server and worker logs (the
subprocesses' stdout and stderr, uvicorn's access log included), problem+json bodies,
list answers, audit details, outbox payloads, e-mails and CLI listings — also when the
server fails with a 500 in the middle of storing one.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from lockbox.access.keys import SigningKey, generate
from lockbox.notify.render import build_email, render
from lockbox.service import tokens
from lockbox.store import tables as t
from lockbox.store.db import Database
from lockbox.store.outbox import WebhookRow
from tests.adversarial.server import LOCKBOX, MAILBOX, Server, new_request
from tests.conftest import World

SMTP_PASSWORD = "smtp-Pa55word-do-not-log-7Hq"
USER_PASSWORD = "correct horse battery staple 42"
SHORT_PASSWORD = "sh0rt-pw!"
WHO = (
    "engineer",
    "manager",
    "contoso_admin",
    "contoso_approver",
    "contoso_auditor",
    "service",
    "provider_admin",
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(world: World, tmp_path: Path) -> Iterator[Server]:
    clock_file = tmp_path / "clock-offset"
    clock_file.write_text("0")
    extra = {
        "LOCKBOX_SMTP_HOST": "127.0.0.1",
        "LOCKBOX_SMTP_PORT": str(_closed_port()),
        "LOCKBOX_SMTP_USERNAME": "lockbox",
        "LOCKBOX_SMTP_PASSWORD": SMTP_PASSWORD,
        "LOCKBOX_WEBHOOK_ALLOW_HTTP_LOOPBACK": "true",
        "LOCKBOX_OUTBOX_BACKOFF_BASE_SECONDS": "0.001",
    }
    srv = Server(world.app.db.url, clock_file, extra)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _fail_webhook_inserts(db: Database) -> None:
    """Make the next webhook INSERT fail inside the database (an unexpected error: a 500)."""
    with db.engine.begin() as conn:
        if db.is_sqlite:
            conn.execute(
                text(
                    "CREATE TRIGGER adversarial_boom BEFORE INSERT ON webhooks "
                    "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION adversarial_boom() RETURNS trigger AS "
                    "$$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER adversarial_boom BEFORE INSERT ON webhooks "
                    "FOR EACH ROW EXECUTE FUNCTION adversarial_boom()"
                )
            )


def _heal(db: Database) -> None:
    with db.engine.begin() as conn:
        if db.is_sqlite:
            conn.execute(text("DROP TRIGGER IF EXISTS adversarial_boom"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS adversarial_boom ON webhooks"))
            conn.execute(text("DROP FUNCTION IF EXISTS adversarial_boom()"))


#: Any token or webhook secret, including ones the test never saw (a failed insert's).
SECRET_SHAPES = re.compile(r"lbx_[A-Za-z0-9_-]{20,}|whsec_[A-Za-z0-9+/=]{20,}")


def _assert_clean(where: str, blob: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in blob, f"a secret ({secret[:8]}…) leaked into {where}"
    assert "PRIVATE KEY" not in blob, f"a private key leaked into {where}"
    found = SECRET_SHAPES.search(blob)
    assert found is None, f"a secret ({found.group()[:10]}…) leaked into {where}"


def test_no_secret_reaches_logs_bodies_audit_outbox_or_listings(
    server: Server, world: World, tmp_path: Path
) -> None:
    app = world.app
    issued = {w: tokens.create_token(app, getattr(world, w), name="s").secret for w in WHO}
    secrets: list[str] = [SMTP_PASSWORD, USER_PASSWORD, SHORT_PASSWORD, *issued.values()]
    reset_codes: list[str] = []  # only in the e-mail to the user (and its queued payload)
    c = {w: server.client(s) for w, s in issued.items()}
    try:
        # API tokens: shown once at creation, never listed.
        made = c["contoso_approver"].post("/v1/tokens", json={"name": "laptop"})
        assert made.status_code == 201
        fresh = made.json()["token"]
        assert fresh.startswith("lbx_")
        secrets.append(fresh)
        listed = c["contoso_approver"].get("/v1/tokens")
        assert listed.status_code == 200
        _assert_clean("GET /v1/tokens", listed.text, secrets)
        assert "token_hash" not in listed.text and tokens.digest(fresh) not in listed.text
        with httpx.Client(base_url=server.url, timeout=30) as anon:
            assert anon.get("/v1/me", headers={"Authorization": f"Bearer {fresh}"}).is_success
            wrong = fresh[:-4] + "AAAA"
            secrets.append(wrong)
            for header in (f"Bearer {wrong}", f"Basic {wrong}", wrong, f"Bearer {wrong} extra"):
                r = anon.get("/v1/me", headers={"Authorization": header})
                assert r.status_code == 401
                _assert_clean("a 401 body", r.text + str(r.headers), secrets)
        revoked = c["contoso_approver"].post(f"/v1/tokens/{made.json()['id']}/revoke")
        _assert_clean("a revoke answer", revoked.text, secrets)

        # Webhook secrets: shown once, never listed, never audited.
        hook = c["contoso_admin"].post(
            "/v1/webhooks", json={"url": f"http://127.0.0.1:{_closed_port()}/hook"}
        )
        assert hook.status_code == 201, hook.text
        whsec = hook.json()["secret"]
        assert whsec.startswith("whsec_")
        secrets.append(whsec)
        for url in ("/v1/webhooks", f"/v1/webhooks/{hook.json()['id']}"):
            r = c["contoso_admin"].get(url)
            assert r.status_code == 200
            _assert_clean(f"GET {url}", r.text, secrets)

        # Passwords: never echoed, also not when refused; an admin cannot choose one.
        refused = c["contoso_admin"].post(
            "/v1/users",
            json={
                "email": "pw@contoso.test",
                "roles": ["auditor"],
                "tenant": "contoso",
                "password": USER_PASSWORD,
            },
        )
        assert refused.status_code == 403, refused.text
        _assert_clean("a refused POST /v1/users", refused.text, secrets)
        user = c["contoso_admin"].post(
            "/v1/users",
            json={"email": "pw@contoso.test", "roles": ["auditor"], "tenant": "contoso"},
        )
        assert user.status_code == 201, user.text
        for bad in (SHORT_PASSWORD, SHORT_PASSWORD * 200):
            r = c["contoso_admin"].post(
                "/v1/users",
                json={"email": "pw2@contoso.test", "roles": ["auditor"], "password": bad},
            )
            assert r.status_code == 422, r.text
            _assert_clean("a 422 body", r.text, secrets)
        # A reset: the one-time code goes to the user's e-mail and nowhere else.
        started = c["contoso_admin"].post("/v1/users/pw@contoso.test/password-reset")
        assert started.status_code == 202, started.text
        with app.read() as tx:
            code = str(
                tx.conn.execute(
                    select(t.outbox.c.payload).where(t.outbox.c.topic == "password_reset")
                ).scalar_one()["secret_code"]
            )
        reset_codes.append(code)
        _assert_clean("the reset answer", started.text, [*secrets, code])
        for url in ("/v1/outbox", "/v1/outbox?status=pending"):
            listing = c["provider_admin"].get(url)
            assert listing.status_code == 200, listing.text
            _assert_clean(f"GET {url}", listing.text, [*secrets, code])
            for item in listing.json()["items"]:
                one = c["provider_admin"].get(f"/v1/outbox/{item['id']}")
                _assert_clean("GET /v1/outbox/{id}", one.text, [*secrets, code])
        done = httpx.post(
            f"{server.url}/v1/password-reset",
            json={"email": "pw@contoso.test", "code": code, "new_password": USER_PASSWORD},
        )
        assert done.status_code == 204, done.text

        # A request through its lifecycle queues e-mails and webhook deliveries.
        rid = new_request(c["engineer"], c["manager"])
        c["contoso_approver"].post(f"/v1/requests/{rid}/decide", json={"decision": "approve"})
        tok = c["engineer"].post("/v1/access/token", json={"request_id": rid})
        assert tok.status_code == 201, tok.text
        c["service"].post(
            "/v1/access/events",
            json={"events": [{"request_id": rid, "action": "read", "resource": MAILBOX}]},
        )
        c["engineer"].post(f"/v1/requests/{rid}/close", json={})

        # An unexpected database failure while a webhook secret is being stored: a 500
        # whose body and log line must not carry the secret (nor the SQL parameters).
        _fail_webhook_inserts(app.db)
        try:
            boom = c["contoso_admin"].post(
                "/v1/webhooks", json={"url": "https://hooks.example.com/x"}
            )
        finally:
            _heal(app.db)
        assert boom.status_code == 500
        assert boom.json()["detail"] == "an unexpected error occurred"
        with app.read() as tx:
            stored = [r.secret for r in tx.conn.execute(select(t.webhooks.c.secret))]
        secrets.extend(stored)
    finally:
        for client in c.values():
            client.close()

    # The worker delivers (the SMTP server and the webhook receiver are down: retries).
    env = server.env()
    worker = subprocess.run(
        [LOCKBOX, "worker", "--once"], env=env, capture_output=True, text=True, timeout=120
    )
    assert worker.returncode == 0, worker.stderr
    assert "outbox." in worker.stderr  # it did try (and logged it)
    _assert_clean("the worker's logs", worker.stdout + worker.stderr, [*secrets, *reset_codes])

    # Listings on the command line.
    for args in (
        ["--as", "paula@contoso.test", "--json", "token", "list"],
        ["--as", "paula@contoso.test", "token", "list"],
        ["--json", "keys", "list"],
        ["keys", "list"],
        ["--json", "webhook", "list"],
        ["webhook", "list"],
    ):
        out = subprocess.run([LOCKBOX, *args], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, (args, out.stderr)
        _assert_clean(
            f"lockbox {' '.join(args)}", out.stdout + out.stderr, [*secrets, *reset_codes]
        )

    # Stored audit details and outbox payloads, and the e-mails rendered from them.
    with app.read() as tx:
        audit = [str(r.details) for r in tx.conn.execute(select(t.audit_events.c.details))]
        rows = list(tx.conn.execute(select(t.outbox)).mappings())
    _assert_clean("the audit log", "\n".join(audit), [*secrets, *reset_codes])
    assert rows
    _assert_clean("outbox payloads", "\n".join(json.dumps(r["payload"]) for r in rows), secrets)
    for row in rows:
        if row["channel"] == "email":
            mail = build_email(
                row_id=row["id"],
                recipient=row["recipient"],
                sender="Lockbox <lockbox@lockbox.localhost>",
                rendered=render(row["topic"], row["payload"], app.now()),
                now=app.now(),
                domain="lockbox",
            )
            _assert_clean("an e-mail", mail.as_string(), secrets)

    server.stop()
    log = server.log()
    assert "Uvicorn running" in log and '"GET /v1/tokens HTTP/1.1" 200' in log  # access log on
    _assert_clean("the server's logs", log, [*secrets, *reset_codes])
    assert "Authorization" not in log and "Bearer" not in log


def test_secret_holding_objects_do_not_print_their_secrets() -> None:
    """A stray ``log.info("%s", row)`` or an assertion message must not dump a secret."""
    from datetime import UTC, datetime

    key: SigningKey = generate(datetime.now(UTC))
    assert "PRIVATE KEY" not in repr(key) and key.private_pem not in str(key)
    hook = WebhookRow(
        id="whk_1",
        tenant_id=None,
        url="https://x.example.com",
        secret="whsec_c2VjcmV0",
        events=["*"],
        active=True,
        created_at=datetime.now(UTC),
        created_by="u",
    )
    assert "whsec_" not in repr(hook)
