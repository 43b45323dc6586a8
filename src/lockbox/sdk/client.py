"""``lockbox.sdk.client`` is now ``lockbox_sdk.client`` (the enforcement API client).

The SDK ships as its own distribution (``lockbox-sdk``, in ``sdk/``) so resource
services do not install the server; this module only keeps the old import path
working for the server's own code and existing callers.
"""

from __future__ import annotations

from lockbox_sdk.client import (
    DEFAULT_TIMEOUT,
    AsyncLockboxClient,
    CheckAnswer,
    LockboxAPIError,
    LockboxClient,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "AsyncLockboxClient",
    "CheckAnswer",
    "LockboxAPIError",
    "LockboxClient",
]
