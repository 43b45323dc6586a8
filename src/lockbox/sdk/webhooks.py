"""``lockbox.sdk.webhooks`` is now ``lockbox_sdk.webhooks`` (the webhook verifier).

The SDK ships as its own distribution (``lockbox-sdk``, in ``sdk/``) so resource
services do not install the server; this module only keeps the old import path
working for the server's own code and existing callers.
"""

from __future__ import annotations

from lockbox_sdk.webhooks import (
    DEFAULT_TOLERANCE,
    SECRET_PREFIX,
    WebhookVerificationError,
    secret_key,
    sign,
    verify,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "SECRET_PREFIX",
    "WebhookVerificationError",
    "secret_key",
    "sign",
    "verify",
]
