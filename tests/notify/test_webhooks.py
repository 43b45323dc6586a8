"""Webhook endpoints and signed deliveries, verified by the SDK helper (and cross-checked)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from lockbox.domain.errors import NotFound, PermissionDenied, ValidationError
from lockbox.notify.dispatcher import Dispatcher
from lockbox.sdk.webhooks import WebhookVerificationError, sign, verify
from lockbox.service import audit, requests, webhooks
from tests.conftest import World
from tests.notify.helpers import WebhookReceiver, rows, smtp_settings, submit


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


class NoMail:
    def send(self, message: object) -> None:
        pass

    def close(self) -> None:
        pass


def test_register_checks_the_url() -> None:
    assert webhooks.check_url("https://hooks.example/x") == "https://hooks.example/x"
    for bad in (
        "http://hooks.example/x",
        "ftp://hooks.example/x",
        "https://user:pw@hooks.example/x",
        "https:///nohost",
        "https://hooks.example/x#frag",
        "https://hooks.example/a b",
        "",
    ):
        with pytest.raises(ValidationError) as err:
            webhooks.check_url(bad)
        assert err.value.field == "url"
    with pytest.raises(ValidationError):
        webhooks.check_url("http://127.0.0.1:9/x")  # loopback http only when allowed
    assert webhooks.check_url("http://127.0.0.1:9/x", allow_http_loopback=True)
    assert webhooks.check_url("http://localhost:9/x", allow_http_loopback=True)
    with pytest.raises(ValidationError):
        webhooks.check_url("http://10.0.0.1/x", allow_http_loopback=True)


def test_who_may_manage_which_endpoints(world: World) -> None:
    app = world.app
    created = webhooks.register(app, world.contoso_admin, url="https://hooks.contoso.example/l")
    assert created.secret.startswith("whsec_")
    assert len(base64.b64decode(created.secret.removeprefix("whsec_"))) == 32
    assert created.row.tenant_id == world.contoso  # a tenant admin's default: their tenant
    provider = webhooks.register(app, world.provider_admin, url="https://ops.provider.example/l")
    assert provider.row.tenant_id is None
    with pytest.raises(NotFound):
        webhooks.register(app, world.contoso_admin, url="https://x.example/", tenant="fabrikam")
    with pytest.raises(PermissionDenied):
        webhooks.register(app, world.contoso_approver, url="https://x.example/")
    with pytest.raises(PermissionDenied):
        webhooks.register(app, world.engineer, url="https://x.example/")
    with pytest.raises(ValidationError):
        webhooks.register(app, world.contoso_admin, url="https://x.example/", events=["nope"])
    mine = webhooks.list_webhooks(app, world.contoso_admin)
    assert [h.id for h in mine] == [created.row.id]
    assert "secret" not in webhooks.view(mine[0])
    assert {h.id for h in webhooks.list_webhooks(app, world.provider_admin)} == {
        created.row.id,
        provider.row.id,
    }
    assert webhooks.list_webhooks(app, world.fabrikam_admin) == []
    with pytest.raises(NotFound):
        webhooks.delete_webhook(app, world.fabrikam_admin, created.row.id)
    with pytest.raises(NotFound):
        webhooks.delete_webhook(app, world.contoso_admin, provider.row.id)
    webhooks.delete_webhook(app, world.contoso_admin, created.row.id)
    assert webhooks.list_webhooks(app, world.contoso_admin) == []
    ops = [r.operation for r in audit.query(app, world.contoso_auditor, "contoso")[0]]
    assert ops[-2:] == ["webhook.create", "webhook.delete"]


def test_deliveries_are_signed_and_verifiable(world: World, receiver: WebhookReceiver) -> None:
    app = world.app
    hook = webhooks.register(
        app,
        world.contoso_admin,
        url=receiver.url,
        events=["request.submit", "request.approve"],
        allow_http_loopback=True,
    )
    other = webhooks.register(app, world.fabrikam_admin, url=receiver.url, allow_http_loopback=True)
    req_id = submit(app, world.engineer)
    requests.review_request(app, world.manager, req_id, approve=True)  # not subscribed
    requests.decide_request(app, world.contoso_approver, req_id, approve=True)
    dispatcher = Dispatcher(app, smtp_settings(1), mailer=NoMail())
    dispatcher.dispatch_due()
    assert [r.recipient for r in rows(app) if r.channel == "webhook"] == [hook.row.id] * 2
    assert len(receiver.hits) == 2
    webhook_rows = {r.id: r for r in rows(app, "sent") if r.channel == "webhook"}
    types = []
    for hit in receiver.hits:
        event = verify(hit.body, hit.headers, hook.secret)
        types.append(event["type"])
        assert event["data"]["request_id"] == req_id
        assert event["data"]["tenant_id"] == world.contoso
        assert hit.headers["webhook-id"] in webhook_rows
        assert hit.headers["webhook-signature"].startswith("v1,")
        with pytest.raises(WebhookVerificationError):
            verify(hit.body, hit.headers, other.secret)  # wrong secret
        with pytest.raises(WebhookVerificationError):
            verify(hit.body + b" ", hit.headers, hook.secret)  # tampered body
        with pytest.raises(WebhookVerificationError):
            verify(hit.body, hit.headers, hook.secret, now=time.time() + 301)  # too old
        forged = {**hit.headers, "webhook-id": "msg_other"}
        with pytest.raises(WebhookVerificationError):
            verify(hit.body, forged, hook.secret)
    assert sorted(types) == ["request.approve", "request.submit"]


def test_sdk_agrees_with_the_standard_webhooks_reference() -> None:
    standardwebhooks = pytest.importorskip("standardwebhooks")
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = json.dumps({"type": "request.submit", "data": {"x": 1}}).encode()
    now = int(time.time())
    ours = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(secret, "msg_1", now, body),
    }
    reference = standardwebhooks.Webhook(secret)
    assert reference.verify(body, ours) == json.loads(body)
    from datetime import UTC, datetime

    theirs_sig = reference.sign("msg_2", datetime.fromtimestamp(now, UTC), body.decode())
    theirs = {"webhook-id": "msg_2", "webhook-timestamp": str(now), "webhook-signature": theirs_sig}
    assert verify(body, theirs, secret) == json.loads(body)
    old = now - 600
    stale = {
        "webhook-id": "msg_3",
        "webhook-timestamp": str(old),
        "webhook-signature": sign(secret, "msg_3", old, body),
    }
    with pytest.raises(WebhookVerificationError):
        verify(body, stale, secret)
    with pytest.raises(WebhookVerificationError):
        verify(body, {**ours, "webhook-signature": "v1,AAAA"}, secret)
    with pytest.raises(WebhookVerificationError):
        verify(body, {"webhook-id": "x"}, secret)


def test_failing_endpoint_is_retried_and_a_deleted_one_skipped(world: World) -> None:
    app = world.app
    answers = iter([500, 503, 204])
    receiver = WebhookReceiver(answer=lambda _hit: next(answers)).start()
    try:
        hook = webhooks.register(
            app, world.provider_admin, url=receiver.url, allow_http_loopback=True
        )
        settings = smtp_settings(1, outbox_backoff_max_seconds=60)
        dispatcher = Dispatcher(app, settings, mailer=NoMail())
        submit(app, world.engineer)
        assert dispatcher.dispatch_due().retried == 1
        world.clock.advance(timedelta(seconds=60))
        assert dispatcher.dispatch_due().retried == 1
        world.clock.advance(timedelta(seconds=60))
        assert dispatcher.dispatch_due().sent == 1
        ids = {h.headers["webhook-id"] for h in receiver.hits}
        assert len(receiver.hits) == 3 and len(ids) == 1  # same webhook-id on every retry
        webhooks.delete_webhook(app, world.provider_admin, hook.row.id)
        submit(app, world.engineer)
        assert dispatcher.dispatch_due().skipped == 0  # deleted: no row was even queued
        hook2 = webhooks.register(
            app, world.provider_admin, url=receiver.url, allow_http_loopback=True
        )
        submit(app, world.engineer)
        webhooks.delete_webhook(app, world.provider_admin, hook2.row.id)
        assert dispatcher.dispatch_due().skipped == 1  # queued, then deleted
        assert len(receiver.hits) == 3
    finally:
        receiver.stop()
