"""Verify Lockbox webhook deliveries (the Standard Webhooks scheme).

Each delivery carries three headers:

* ``webhook-id``: the delivery id (a Lockbox outbox id, ``msg_…``), the same on
  every retry of one event, so receivers can drop duplicates;
* ``webhook-timestamp``: Unix seconds when this attempt was signed;
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` (space-separated if
  several), over ``"{id}.{timestamp}.{body}"`` keyed with the base64-decoded
  part of the endpoint secret after ``whsec_``.

Usage in a receiver::

    from lockbox_sdk.webhooks import verify, WebhookVerificationError

    try:
        event = verify(request_body_bytes, request_headers, secret)
    except WebhookVerificationError:
        return 400

Only the standard library is used, so this module works without the SDK's HTTP
and JWT dependencies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300  # seconds


class WebhookVerificationError(Exception):
    """The delivery is not authentic, or too old (or from the future) to accept."""


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_…`` secret."""
    body = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(body, validate=True)
    except (ValueError, TypeError) as exc:
        raise WebhookVerificationError("malformed webhook secret") from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one delivery attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> Any:
    """Check a delivery's signature and timestamp; return the parsed JSON body.

    Raises :class:`WebhookVerificationError` when a header is missing, the
    timestamp is more than ``tolerance`` seconds away from ``now`` (replay
    protection), or no ``v1`` signature matches.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError as exc:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance (replay?)")
    body = payload.encode("utf-8") if isinstance(payload, str) else payload
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1]
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            try:
                return json.loads(body)
            except ValueError as exc:
                raise WebhookVerificationError("body is not JSON") from exc
    raise WebhookVerificationError("no matching signature")
