"""Unguessable, prefixed identifiers.

Sequential ids would let one tenant estimate another's activity and probe for
objects; 128 random bits behind a readable prefix (``req_``, ``ten_`` …) make
ids safe to show and easy to recognise in logs.
"""

from __future__ import annotations

import re
import secrets

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_BODY_LEN = 26  # 26 * 5 = 130 bits

PREFIXES = {
    "tenant": "ten",
    "user": "usr",
    "case": "case",
    "request": "req",
    "audit": "evt",
    "token": "tok",
    "outbox": "msg",
    "webhook": "whk",
    "key": "key",
    "reset": "pwr",
    "session": "ses",
}

_ID_RE = re.compile(r"^[a-z]{2,5}_[0-9a-z]{26}$")


def new_id(kind: str) -> str:
    """Return a fresh random id such as ``req_3k9…``."""
    prefix = PREFIXES[kind]
    # One read of the system's CSPRNG, spelt 5 bits per character (26 × 5 = 130 bits).
    value = int.from_bytes(secrets.token_bytes(17), "big") >> (17 * 8 - _BODY_LEN * 5)
    chars = []
    for _ in range(_BODY_LEN):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(chars)}"
