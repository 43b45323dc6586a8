"""``lockbox.sdk.reporter`` is now ``lockbox_sdk.reporter`` (the background action reporter).

The SDK ships as its own distribution (``lockbox-sdk``, in ``sdk/``) so resource
services do not install the server; this module only keeps the old import path
working for the server's own code and existing callers.
"""

from __future__ import annotations

from lockbox_sdk.reporter import (
    EventReporter,
    Sender,
)

__all__ = [
    "EventReporter",
    "Sender",
]
