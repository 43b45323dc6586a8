"""Webhook endpoints: register (secret shown once), list, delete.

A tenant admin manages their tenant's endpoints; the provider admin manages
provider-level endpoints (which hear every tenant's events) and any tenant's.
Who may do it is the permission matrix (``webhook.manage``); a tenant the
caller cannot see answers *not found*.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from lockbox.config import get_settings
from lockbox.domain.errors import NotFound, PermissionDenied, ValidationError
from lockbox.domain.ids import new_id
from lockbox.domain.instants import format_instant
from lockbox.domain.lifecycle import Event
from lockbox.domain.permissions import Intent, Scope, allows, authorize, scopes
from lockbox.domain.roles import Principal, Side
from lockbox.sdk.webhooks import SECRET_PREFIX
from lockbox.service.app import Lockbox, Tx
from lockbox.service.tenants import load_tenant
from lockbox.store import outbox as store
from lockbox.store.outbox import WebhookRow

#: Event types an endpoint can subscribe to ("*" = all).
EVENT_TYPES = tuple(sorted({f"request.{e.value}" for e in Event} | {"request.first_use"}))
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
MAX_URL = 2048


@dataclass(frozen=True)
class RegisteredWebhook:
    """A new endpoint; ``secret`` is shown to the caller once and never again."""

    row: WebhookRow
    secret: str


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def check_url(url: object, *, allow_http_loopback: bool = False) -> str:
    """HTTPS only (plain HTTP to loopback only when explicitly allowed); no credentials in it."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("url", "is required")
    url = url.strip()
    if len(url) > MAX_URL:
        raise ValidationError("url", f"must be at most {MAX_URL} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise ValidationError("url", "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError as exc:
        raise ValidationError("url", f"is not a valid URL ({exc})") from exc
    if not host:
        raise ValidationError("url", "must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("url", "must not contain credentials")
    if parts.fragment:
        raise ValidationError("url", "must not contain a fragment")
    scheme = parts.scheme.lower()
    if scheme == "https":
        return url
    if scheme == "http" and allow_http_loopback and _is_loopback(host):
        return url
    if scheme == "http":
        raise ValidationError("url", "must use https (plain http only to loopback in test setups)")
    raise ValidationError("url", "must be an https URL")


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_events(events: object) -> list[str]:
    if events is None:
        return ["*"]
    if not isinstance(events, list | tuple) or not all(isinstance(e, str) for e in events):
        raise ValidationError("events", "must be a list of event types")
    cleaned = list(dict.fromkeys(e.strip() for e in events if e.strip()))
    if not cleaned:
        return ["*"]
    unknown = [e for e in cleaned if e != "*" and e not in EVENT_TYPES]
    if unknown:
        raise ValidationError(
            "events",
            f"unknown event type {unknown[0]!r}; use '*' or one of {', '.join(EVENT_TYPES)}",
        )
    return ["*"] if "*" in cleaned else cleaned


def _target_tenant(tx: Tx, actor: Principal, tenant: str | None) -> str | None:
    """The tenant id an operation is about; None means provider level."""
    if tenant is None and actor.side is Side.CUSTOMER:
        tenant = actor.tenant_id
    if tenant is None:
        if not allows(actor, Intent.WEBHOOK_MANAGE, None):
            raise PermissionDenied("your roles do not allow webhook.manage at provider level")
        return None
    found = load_tenant(tx, actor, tenant)
    authorize(actor, Intent.WEBHOOK_MANAGE, kind="webhook", tenant_id=found.id)
    return found.id


def register(
    app: Lockbox,
    actor: Principal,
    *,
    url: object,
    events: object = None,
    tenant: str | None = None,
    allow_http_loopback: bool | None = None,
) -> RegisteredWebhook:
    """Register an endpoint; ``allow_http_loopback`` defaults to the deployment's setting."""
    if allow_http_loopback is None:
        allow_http_loopback = get_settings().webhook_allow_http_loopback
    clean_url = check_url(url, allow_http_loopback=allow_http_loopback)
    clean_events = check_events(events)
    secret = new_secret()
    with app.tx() as tx:
        tenant_id = _target_tenant(tx, actor, tenant)
        row = WebhookRow(
            id=new_id("webhook"),
            tenant_id=tenant_id,
            url=clean_url,
            secret=secret,
            events=clean_events,
            active=True,
            created_at=tx.now,
            created_by=actor.id,
        )
        store.insert_webhook(tx.conn, row)
        if tenant_id is not None:
            tx.audit(
                tenant_id=tenant_id,
                actor=actor,
                operation="webhook.create",
                details={"webhook_id": row.id, "url": clean_url, "events": clean_events},
            )
    return RegisteredWebhook(row=row, secret=secret)


def list_webhooks(app: Lockbox, actor: Principal, *, tenant: str | None = None) -> list[WebhookRow]:
    """Endpoints the caller manages: one tenant's, or (provider admin) all of them."""
    with app.read() as tx:
        if tenant is not None or actor.side is Side.CUSTOMER:
            tenant_id = _target_tenant(tx, actor, tenant)
            return store.list_webhooks(
                tx.conn, tenant_id=tenant_id, provider_level=tenant_id is None, any_tenant=False
            )
        if Scope.ANY_TENANT not in scopes(actor, Intent.WEBHOOK_MANAGE):
            raise PermissionDenied("your roles do not allow webhook.manage")
        return store.list_webhooks(tx.conn, tenant_id=None, provider_level=True, any_tenant=True)


def _load(tx: Tx, actor: Principal, webhook_id: str) -> WebhookRow:
    hook = store.get_webhook(tx.conn, webhook_id)
    if hook is None:
        raise NotFound("webhook not found")
    if not allows(actor, Intent.WEBHOOK_MANAGE, hook.tenant_id):
        raise NotFound("webhook not found")  # another tenant's endpoint: indistinguishable
    return hook


def get_webhook(app: Lockbox, actor: Principal, webhook_id: str) -> WebhookRow:
    with app.read() as tx:
        return _load(tx, actor, webhook_id)


def delete_webhook(app: Lockbox, actor: Principal, webhook_id: str) -> WebhookRow:
    """Remove an endpoint; deliveries still queued for it are skipped."""
    with app.tx() as tx:
        hook = _load(tx, actor, webhook_id)
        if not store.delete_webhook(tx.conn, hook.id):
            raise NotFound("webhook not found")  # a concurrent delete won (PostgreSQL)
        if hook.tenant_id is not None:
            tx.audit(
                tenant_id=hook.tenant_id,
                actor=actor,
                operation="webhook.delete",
                details={"webhook_id": hook.id, "url": hook.url},
            )
    return hook


def view(hook: WebhookRow) -> dict[str, object]:
    """JSON-ready, without the secret."""
    return {
        "id": hook.id,
        "tenant_id": hook.tenant_id,
        "url": hook.url,
        "events": list(hook.events),
        "active": hook.active,
        "created_at": format_instant(hook.created_at),
        "created_by": hook.created_by,
    }
