"""Delivering webhook events: a signed JSON POST (Standard Webhooks headers)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

import httpx

from lockbox.sdk.webhooks import sign


class WebhookError(Exception):
    """The endpoint did not accept the delivery (network error or non-2xx answer)."""


def body_bytes(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent: compact, key-sorted JSON."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def headers(msg_id: str, secret: str, body: bytes, now: datetime) -> dict[str, str]:
    timestamp = int(now.timestamp())
    return {
        "content-type": "application/json",
        "user-agent": "Lockbox-Webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


class WebhookSender(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> None: ...
    def close(self) -> None: ...


class HttpxWebhookSender:
    """POSTs with a timeout; redirects are not followed (the registered URL is the one signed for)."""

    def __init__(self, timeout: float) -> None:
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        try:
            response = self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise WebhookError(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise WebhookError(f"endpoint answered HTTP {response.status_code}")

    def close(self) -> None:
        self._client.close()
