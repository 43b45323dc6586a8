"""``lockbox.sdk`` is now the ``lockbox_sdk`` package of the ``lockbox-sdk`` distribution.

The SDK lives in ``sdk/`` and installs on its own, without the server's database
and web dependencies; import it as ``lockbox_sdk``. This package only keeps the
old import paths (``lockbox.sdk``, ``lockbox.sdk.verify``, …) working, with the
same lazily imported names, so ``lockbox.sdk.webhooks`` still needs no HTTP
dependencies and nothing here needs FastAPI until the guard is asked for.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lockbox_sdk import (
        AccessClaims,
        AccessGrant,
        AsyncLockboxClient,
        CheckAnswer,
        EventReporter,
        Grant,
        GrantFeed,
        GrantTable,
        LockboxAPIError,
        LockboxClient,
        LockboxGuard,
        TokenError,
        TokenVerifier,
    )

__all__ = [
    "AccessClaims",
    "AccessGrant",
    "AsyncLockboxClient",
    "CheckAnswer",
    "EventReporter",
    "Grant",
    "GrantFeed",
    "GrantTable",
    "LockboxAPIError",
    "LockboxClient",
    "LockboxGuard",
    "TokenError",
    "TokenVerifier",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'lockbox.sdk' has no attribute {name!r}")
    return getattr(import_module("lockbox_sdk"), name)
