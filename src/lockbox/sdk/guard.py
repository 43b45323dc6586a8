"""``lockbox.sdk.guard`` is now ``lockbox_sdk.guard`` (the FastAPI guard).

The SDK ships as its own distribution (``lockbox-sdk``, in ``sdk/``) so resource
services do not install the server; this module only keeps the old import path
working for the server's own code and existing callers.
"""

from __future__ import annotations

from lockbox_sdk.guard import (
    RETRY_AFTER,
    AccessGrant,
    Identify,
    LockboxGuard,
    Refused,
    Template,
)

__all__ = [
    "RETRY_AFTER",
    "AccessGrant",
    "Identify",
    "LockboxGuard",
    "Refused",
    "Template",
]
