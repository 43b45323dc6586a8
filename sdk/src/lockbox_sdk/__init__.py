"""Enforce Lockbox approvals in a resource service (a mail store, a file store, …).

* :class:`LockboxClient` / :class:`AsyncLockboxClient` — the enforcement API
  (check, access tokens, action reports, JWKS);
* :class:`TokenVerifier` — verify access tokens locally against the cached JWKS;
* :class:`GrantFeed` / :class:`GrantTable` — follow Lockbox's grant feed and
  decide locally;
* :class:`LockboxGuard` — a FastAPI dependency guarding a route by resource and
  action, in token, feed or online mode, reporting actions in the background
  through an :class:`EventReporter` (needs the ``fastapi`` extra);
* :mod:`lockbox_sdk.webhooks` — verify Lockbox webhook deliveries;
* :mod:`lockbox_sdk.scope` — the resource-name rules and the scope check.

This package is distributed on its own (``lockbox-sdk``) and imports nothing
from the Lockbox server. Names are imported lazily, so ``lockbox_sdk.webhooks``
stays usable without the HTTP dependencies and the rest without FastAPI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lockbox_sdk.client import AsyncLockboxClient, CheckAnswer, LockboxAPIError, LockboxClient
    from lockbox_sdk.feed import Grant, GrantFeed, GrantTable
    from lockbox_sdk.guard import AccessGrant, LockboxGuard
    from lockbox_sdk.reporter import EventReporter
    from lockbox_sdk.verify import AccessClaims, TokenError, TokenVerifier

__version__ = "0.1.0+repo"

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
        raise AttributeError(f"module 'lockbox_sdk' has no attribute {name!r}")
    return getattr(import_module(f"lockbox_sdk.{module}"), name)
