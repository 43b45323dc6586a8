"""Client-side helpers for services and receivers that work with Lockbox.

* :class:`LockboxClient` / :class:`AsyncLockboxClient` — the enforcement API
  (check, access tokens, action reports, JWKS);
* :class:`TokenVerifier` — verify access tokens locally against the cached JWKS;
* :class:`LockboxGuard` — a FastAPI dependency guarding a route by resource and
  action, in token or online mode, reporting actions in the background
  through an :class:`EventReporter`;
* :mod:`lockbox.sdk.webhooks` — verify Lockbox webhook deliveries.

Names are imported lazily, so ``lockbox.sdk.webhooks`` stays usable without
the HTTP dependencies.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lockbox.sdk.client import AsyncLockboxClient, CheckAnswer, LockboxAPIError, LockboxClient
    from lockbox.sdk.feed import Grant, GrantFeed, GrantTable
    from lockbox.sdk.guard import AccessGrant, LockboxGuard
    from lockbox.sdk.reporter import EventReporter
    from lockbox.sdk.verify import AccessClaims, TokenError, TokenVerifier

_EXPORTS = {
    "AsyncLockboxClient": "client",
    "CheckAnswer": "client",
    "LockboxAPIError": "client",
    "LockboxClient": "client",
    "Grant": "feed",
    "GrantFeed": "feed",
    "GrantTable": "feed",
    "AccessGrant": "guard",
    "LockboxGuard": "guard",
    "EventReporter": "reporter",
    "AccessClaims": "verify",
    "TokenError": "verify",
    "TokenVerifier": "verify",
}

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
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lockbox.sdk' has no attribute {name!r}")
    return getattr(import_module(f"lockbox.sdk.{module}"), name)
