"""``lockbox.sdk.verify`` is now ``lockbox_sdk.verify`` (the access-token verifier).

The SDK ships as its own distribution (``lockbox-sdk``, in ``sdk/``) so resource
services do not install the server; this module only keeps the old import path
working for the server's own code and existing callers.
"""

from __future__ import annotations

from lockbox_sdk.verify import (
    DEFAULT_MAX_AGE,
    DEFAULT_REFRESH_AHEAD,
    MAX_LEEWAY,
    AccessClaims,
    TokenError,
    TokenVerifier,
)

__all__ = [
    "DEFAULT_MAX_AGE",
    "DEFAULT_REFRESH_AHEAD",
    "MAX_LEEWAY",
    "AccessClaims",
    "TokenError",
    "TokenVerifier",
]
