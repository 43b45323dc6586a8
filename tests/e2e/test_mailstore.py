"""The reference scenario's step 7 end to end: a real Lockbox server, the example mail
store on loopback, engineers' access tokens, and the customer's audit log."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lockbox.domain.audit import AuditRecord
from lockbox.domain.request import AccessRequest
from lockbox.sdk.client import LockboxClient
from lockbox.sdk.verify import TokenError, TokenVerifier
from lockbox.service import access, audit, cases, requests
from tests.e2e.conftest import Env, MailStore, free_port, stop, wait_until_up

ALICE = "exchange/mailbox/alice@contoso.com"
ALICE_PATH = "/mailboxes/contoso/alice@contoso.com"
BOB_PATH = "/mailboxes/contoso/bob@contoso.com"
FABRIKAM_PATH = "/mailboxes/fabrikam/alice@fabrikam.com"


def submit(env: Env, level: str = "read") -> AccessRequest:
    case = cases.open_case(env.lockbox, env.engineer, tenant="contoso", title="Mail does not sync")
    return requests.submit_request(
        env.lockbox,
        env.engineer,
        tenant="contoso",
        case_id=case.id,
        resources=[ALICE],
        access_level=level,
        justification="Inspect the sync state",
    )


def approve(env: Env, req: AccessRequest) -> AccessRequest:
    requests.review_request(env.lockbox, env.manager, req.id, approve=True)
    return requests.decide_request(env.lockbox, env.contoso_approver, req.id, approve=True)


def token_for(env: Env, request_id: str, audience: str | None = None) -> str:
    body: dict[str, Any] = {"request_id": request_id}
    if audience:
        body["audience"] = audience
    with env.api() as api:
        answer = api.post("/v1/access/token", json=body)
    assert answer.status_code == 201, answer.text
    token = answer.json()["token"]
    assert isinstance(token, str)
    return token


def reason(response: Any) -> str:
    detail = response.json()["detail"]
    assert isinstance(detail, dict), detail
    return str(detail["reason"])


def records(env: Env, tenant: str, request_id: str | None = None) -> list[AuditRecord]:
    auditor = env.contoso_auditor if tenant == "contoso" else env.fabrikam_auditor
    items = audit.query(env.lockbox, auditor, tenant, limit=1000)[0]
    return [r for r in items if request_id is None or r.request_id == request_id]


def reads(env: Env, tenant: str, request_id: str | None = None) -> list[AuditRecord]:
    return [
        r
        for r in records(env, tenant, request_id)
        if r.operation == "access.read" and r.details["outcome"] == "success"
    ]


def test_refused_before_approval_then_exactly_the_grant(
    env: Env, online_store: MailStore, token_store: MailStore
) -> None:
    req = submit(env)
    with env.api() as api:
        refused = api.post("/v1/access/token", json={"request_id": req.id})
    assert refused.status_code == 409
    for store in (online_store, token_store):
        response = store.get(ALICE_PATH, None)
        assert response.status_code == 401
        assert reason(response) == "missing_token"
    with env.api(env.service_token) as api:
        check = api.post(
            "/v1/access/check",
            json={
                "engineer": env.engineer.id,
                "tenant": "contoso",
                "resource": ALICE,
                "action": "read",
                "request_id": req.id,
            },
        ).json()
    assert (check["allowed"], check["reason"]) == (False, "not_approved")
    fabrikam_before = len(reads(env, "fabrikam"))

    approve(env, req)
    token = token_for(env, req.id)
    for store in (online_store, token_store):
        ok = store.get(ALICE_PATH, token)
        assert ok.status_code == 200, ok.text
        assert ok.json()["messages"][0]["subject"] == "Quarterly numbers"
        other_box = store.get(BOB_PATH, token)
        assert (other_box.status_code, reason(other_box)) == (403, "out_of_scope")
        other_tenant = store.get(FABRIKAM_PATH, token)
        assert (other_tenant.status_code, reason(other_tenant)) == (403, "wrong_tenant")
        write = store.post(f"{ALICE_PATH}/messages", token, {"from": "x@y.z", "subject": "hi"})
        assert (write.status_code, reason(write)) == (403, "level_too_low")
        store.flush()

    allowed = reads(env, "contoso", req.id)
    assert len(allowed) == 2  # one per mail store, each allowed read exactly once
    assert {r.details["resource"] for r in allowed} == {ALICE}
    assert all("flag" not in r.details for r in allowed)
    assert allowed[0].details["first_use"] is True
    denied = [r for r in records(env, "contoso", req.id) if r.details.get("outcome") == "denied"]
    assert len(denied) == 4  # bob read and alice write, per store, flagged
    assert len(reads(env, "fabrikam")) == fabrikam_before
    assert not [r for r in records(env, "fabrikam") if r.request_id == req.id]
    assert all(report.ok for report in audit.verify(env.lockbox, env.admin))


def test_write_with_read_write_access(env: Env, online_store: MailStore) -> None:
    req = approve(env, submit(env, level="read_write"))
    token = token_for(env, req.id)
    added = online_store.post(f"{ALICE_PATH}/messages", token, {"from": "x@y.z", "subject": "t"})
    assert added.status_code == 201, added.text
    online_store.flush()
    writes = [r for r in records(env, "contoso", req.id) if r.operation == "access.write"]
    assert writes[-1].details["detail"].startswith("added message")


def test_close_revoke_and_access_window(
    env: Env, online_store: MailStore, token_store: MailStore
) -> None:
    closed = approve(env, submit(env))
    token = token_for(env, closed.id)
    assert online_store.get(ALICE_PATH, token).status_code == 200
    requests.close_request(env.lockbox, env.engineer, closed.id)
    after_close = online_store.get(ALICE_PATH, token)
    assert (after_close.status_code, reason(after_close)) == (403, "closed")
    # Token mode: the old token is bounded by its few minutes; no new token is issued.
    assert token_store.get(ALICE_PATH, token).status_code == 200
    with env.api() as api:
        assert api.post("/v1/access/token", json={"request_id": closed.id}).status_code == 409
    env.shift(300)  # the token's lifetime is over
    expired = token_store.get(ALICE_PATH, token)
    assert (expired.status_code, reason(expired)) == (401, "expired")
    env.shift(0)

    revoked = approve(env, submit(env))
    token = token_for(env, revoked.id)
    requests.revoke_request(env.lockbox, env.contoso_approver, revoked.id, comment="enough")
    after_revoke = online_store.get(ALICE_PATH, token)
    assert (after_revoke.status_code, reason(after_revoke)) == (403, "revoked")

    windowed = approve(env, submit(env))
    assert windowed.access_deadline is not None
    env.shift(4 * 3600 - 60)  # one minute before the access window ends
    late = token_for(env, windowed.id)
    claims = jwt.decode(late, options={"verify_signature": False})
    assert claims["exp"] <= windowed.access_deadline.timestamp()
    assert online_store.get(ALICE_PATH, late).status_code == 200
    env.shift(4 * 3600 + 1)
    for store in (online_store, token_store):
        ended = store.get(ALICE_PATH, late)
        assert (ended.status_code, reason(ended)) == (401, "expired")
    with env.api(env.service_token) as api:
        check = api.post(
            "/v1/access/check",
            json={
                "engineer": env.engineer.id,
                "tenant": "contoso",
                "resource": ALICE,
                "action": "read",
                "request_id": windowed.id,
            },
        ).json()
    assert (check["allowed"], check["reason"]) == (False, "expired")
    with env.api() as api:
        assert api.post("/v1/access/token", json={"request_id": windowed.id}).status_code == 409


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_bad_tokens_are_refused(env: Env, online_store: MailStore, token_store: MailStore) -> None:
    req = approve(env, submit(env))
    good = token_for(env, req.id)
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "key_forged"}
    )
    header, _payload, signature = good.split(".")
    wider = _b64({**claims, "resources": ["exchange/mailbox/*"]})
    tampered = f"{header}.{wider}.{signature}"
    other_audience = token_for(env, req.id, audience="filestore")
    for store in (online_store, token_store):
        for bad, why in (
            (forged, "unknown_key"),
            (tampered, "bad_signature"),
            (other_audience, "wrong_audience"),
            ("not-a-token", "malformed"),
        ):
            response = store.get(ALICE_PATH, bad)
            assert (response.status_code, reason(response)) == (401, why), why
        assert store.get(ALICE_PATH, good).status_code == 200
    env.shift(360)
    for store in (online_store, token_store):
        response = store.get(ALICE_PATH, good)
        assert (response.status_code, reason(response)) == (401, "expired")


def test_key_rotation(env: Env, token_store: MailStore) -> None:
    req = approve(env, submit(env))
    before = token_for(env, req.id)
    access.rotate_keys(env.lockbox, env.admin)
    after = token_for(env, req.id)
    kid_before = jwt.get_unverified_header(before)["kid"]
    kid_after = jwt.get_unverified_header(after)["kid"]
    assert kid_before != kid_after
    # The mail store learns the new key on first sight (refetch on unknown kid).
    assert token_store.get(ALICE_PATH, before).status_code == 200
    assert token_store.get(ALICE_PATH, after).status_code == 200
    with LockboxClient(env.url) as client:
        kids = {k["kid"] for k in client.jwks()["keys"]}
    assert {kid_before, kid_after} <= kids

    def fresh() -> TokenVerifier:
        return TokenVerifier(
            audience="lockbox-resource",
            jwks_url=f"{env.url}/.well-known/jwks.json",
            clock=env.lockbox.clock.now,
        )

    fresh().verify(before)
    access.retire_key(env.lockbox, env.admin, kid_before)
    verifier = fresh()
    verifier.verify(after)
    with pytest.raises(TokenError) as err:
        verifier.verify(before)
    assert err.value.reason == "unknown_key"


def test_mailstore_command_flushes_reports_on_shutdown(env: Env) -> None:
    req = approve(env, submit(env))
    token = token_for(env, req.id)
    port = free_port()
    environ = {
        **os.environ,
        "LOCKBOX_URL": env.url,
        "MAILSTORE_LOCKBOX_TOKEN": env.service_token,
        "LOCKBOX_TEST_CLOCK_FILE": str(env.clock_file),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.mailstore", "--port", str(port), "--log-level", "warning"],
        env=environ,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    try:
        store_url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{store_url}/healthz", proc)
        response = httpx.get(
            f"{store_url}{ALICE_PATH}", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert response.status_code == 200, response.text
    finally:
        stop(proc)
    assert proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after its shutdown
    assert len(reads(env, "contoso", req.id)) == 1


def _chain_text(env: Env, tenant: str) -> str:
    return json.dumps([r.as_dict() for r in records(env, tenant)])


def test_every_refusal_lands_in_the_chain_of_the_tenant_asked_about(
    env: Env, online_store: MailStore, token_store: MailStore
) -> None:
    req = approve(env, submit(env))
    token = token_for(env, req.id)
    before = len(records(env, "fabrikam"))
    hostile = "/mailboxes/contoso/bad name\u202e@contoso.com"
    for store in (online_store, token_store):
        assert store.get(FABRIKAM_PATH, token).status_code == 403
        assert store.get(FABRIKAM_PATH, None).status_code == 401
        assert store.get(hostile, token).status_code == 403
        store.flush()
    fabrikam = records(env, "fabrikam")[before:]
    wrong_tenant = [r for r in fabrikam if r.details.get("reason") == "wrong_tenant"]
    assert len(wrong_tenant) == 2
    for record in wrong_tenant:
        assert record.details["outcome"] == "denied"
        assert record.details["engineer"] == env.engineer.id
        assert record.details["flag"] == "grant_of_another_tenant"
        assert record.request_id is None
        assert record.details["resource"] == "exchange/mailbox/alice@fabrikam.com"
    anonymous = [r for r in fabrikam if r.details.get("reason") == "missing_token"]
    assert len(anonymous) == 2 and all(r.details["engineer"] is None for r in anonymous)
    # Fabrikam's auditor learns nothing of Contoso's request.
    assert req.id not in _chain_text(env, "fabrikam")
    assert env.contoso not in _chain_text(env, "fabrikam")
    # A name Lockbox cannot parse is kept, escaped, on the refusal instead of being lost.
    raw = [r for r in records(env, "contoso", req.id) if "resource_raw" in r.details]
    assert len(raw) == 2
    assert raw[0].details["resource_raw"] == "exchange/mailbox/bad name\\u202e@contoso.com"
    assert raw[0].details["outcome"] == "denied"
    assert all(report.ok for report in audit.verify(env.lockbox, env.admin))


def test_one_bad_event_never_costs_its_batch(env: Env) -> None:
    from lockbox.sdk.reporter import EventReporter

    req = approve(env, submit(env))
    with LockboxClient(env.url, env.service_token) as client:
        reporter = EventReporter(client.report_events, linger=5.0)
        reporter.report(request_id=req.id, action="read", resource=ALICE, detail="first")
        reporter.report(request_id=None, tenant="no-such-tenant", action="read", resource=ALICE)
        reporter.report(request_id=req.id, action="read", resource=ALICE, detail="third")
        assert reporter.close(timeout=30)
    assert reporter.stats["rejected"] == 1 and reporter.stats["failed"] == 0
    details = [r.details.get("detail") for r in reads(env, "contoso", req.id)]
    assert details == ["first", "third"]


def test_retiring_a_key_ends_its_tokens_at_once_in_online_mode(
    env: Env, online_store: MailStore, token_store: MailStore
) -> None:
    req = approve(env, submit(env))
    old = token_for(env, req.id)
    assert online_store.get(ALICE_PATH, old).status_code == 200
    assert token_store.get(ALICE_PATH, old).status_code == 200  # its key set is now cached
    access.rotate_keys(env.lockbox, env.admin)
    access.retire_key(env.lockbox, env.admin, jwt.get_unverified_header(old)["kid"])
    refused = online_store.get(ALICE_PATH, old)
    assert (refused.status_code, reason(refused)) == (403, "key_retired")
    fresh = token_for(env, req.id)
    assert online_store.get(ALICE_PATH, fresh).status_code == 200
    # Token-only mode trusts its cached key set for at most its max_age (documented bound).
    assert token_store.app.state.verifier.max_age <= 60


def test_a_ticket_closed_in_the_help_desk_ends_access_at_the_mail_store(
    env: Env, online_store: MailStore
) -> None:
    """The help desk opens the case and, when its ticket closes, closes it through a signed
    event to the running server: the engineer's access ends at once at the mail store."""
    from datetime import UTC, datetime

    from lockbox.sdk.webhooks import sign
    from lockbox.service import helpdesk

    created = helpdesk.create_integration(env.lockbox, env.admin, name="Zendesk e2e")
    path = f"/v1/integrations/{created.row.id}/events"

    def deliver(kind: str, msg_id: str) -> dict[str, Any]:
        ticket = {
            "id": "ZD-77",
            "title": "Alice's mailbox does not sync",
            "tenant": "contoso",
            "engineer": "erin@provider.test",
            "updated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        body = json.dumps({"type": kind, "ticket": ticket}).encode()
        stamp = int(datetime.now(UTC).timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(created.secret, msg_id, stamp, body),
        }
        with httpx.Client(base_url=env.url, timeout=10) as client:
            answer = client.post(path, content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    opened = deliver("ticket.opened", "msg_e2e_open")
    case_id = opened["case_id"]
    req = requests.submit_request(
        env.lockbox,
        env.engineer,
        tenant="contoso",
        case_id=case_id,
        resources=[ALICE],
        access_level="read",
        justification="Ticket ZD-77",
    )
    approve(env, req)
    token = token_for(env, req.id)
    assert online_store.get(ALICE_PATH, token).status_code == 200
    assert deliver("ticket.closed", "msg_e2e_close")["case_id"] == case_id
    refused = online_store.get(ALICE_PATH, token)
    assert (refused.status_code, reason(refused)) == (403, "closed")
    assert deliver("ticket.closed", "msg_e2e_close")["outcome"] == "duplicate"  # a replay
