"""``lockbox.sdk.feed`` is now ``lockbox_sdk.feed`` (the grant-feed follower and local grant table).

The SDK ships as its own distribution (``lockbox-sdk``, in ``sdk/``) so resource
services do not install the server; this module only keeps the old import path
working for the server's own code and existing callers.
"""

from __future__ import annotations

from lockbox_sdk.feed import (
    Decision,
    Grant,
    GrantFeed,
    GrantTable,
    parse_sse,
)

__all__ = [
    "Decision",
    "Grant",
    "GrantFeed",
    "GrantTable",
    "parse_sse",
]
