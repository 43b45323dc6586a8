"""Unguessable, prefixed identifiers.

Sequential ids would let one tenant estimate another's activity and probe for
objects; 128 random bits behind a readable prefix (``req_``, ``ten_`` …) make
ids safe to show and easy to recognise in logs.
"""

from __future__ import annotations

import re
import secrets

from lockbox.domain.errors import ValidationError
from lockbox.domain.text import forbidden

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
    "factor": "mfa",
    "recovery": "rcv",
    "checkpoint": "ckp",
    "receipt": "rct",
    "integration": "hdi",  # a help-desk integration
    "auto_rule": "aar",  # an auto-approval rule
    "change": "pch",  # a change waiting for a second tenant admin (four eyes)
    "delegation": "dlg",  # an approver's approvals handed to a colleague for a while
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


# -- identifiers given by callers ----------------------------------------------------------

#: Longest identifier a caller may name: ours are ``prefix_`` + 26 characters, slugs at most
#: 63; the bound keeps an unbounded string from ever reaching a query.
ID_MAX = 80
#: Longest reference that may be an e-mail address (RFC 5321's 320 = 64 + 1 + 255).
REF_MAX = 320
#: Longest pagination cursor this service hands out (base64url of two short strings).
CURSOR_MAX = 500
_ID_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_CURSOR_CHARS = re.compile(r"[A-Za-z0-9_=-]+")
_HINTS = {"tenant": "a tenant slug or id (ten_…)", "user": "a user id (usr_…)"}


def validate_id(value: object, kind: str, field: str) -> str:
    """``value`` if it can be a ``kind`` identifier, else a :class:`ValidationError` on ``field``.

    Checked by the service layer, so every adapter (API, CLI, pages, worker) gets
    the same clear answer, and a NUL (which PostgreSQL refuses with an error) or a
    megabyte-long string never reaches a query. Only the shape is checked, not the
    prefix: an id of another kind is simply *not found*, like a missing one.
    """
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    if not value:
        raise ValidationError(field, "is required")
    problem = forbidden(value)
    if problem is not None:
        raise ValidationError(field, problem)
    if len(value) > ID_MAX:
        raise ValidationError(field, f"must be at most {ID_MAX} characters")
    if not _ID_CHARS.fullmatch(value):
        prefix = PREFIXES.get(kind)
        hint = _HINTS.get(kind) or (f"a {kind} id ({prefix}_…)" if prefix else f"a {kind} id")
        raise ValidationError(field, f"is not {hint}: letters, digits, '_' and '-' only")
    return value


def optional_id(value: object, kind: str, field: str) -> str | None:
    """As :func:`validate_id`; None (absent) passes through."""
    return None if value is None else validate_id(value, kind, field)


def validate_ref(value: object, field: str, *, max_len: int = REF_MAX) -> str:
    """A reference that may be an id or an e-mail address (users): one bounded line."""
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    if not value.strip():
        raise ValidationError(field, "is required")
    problem = forbidden(value)
    if problem is not None:
        raise ValidationError(field, problem)
    if len(value) > max_len:
        raise ValidationError(field, f"must be at most {max_len} characters")
    return value


def optional_ref(value: object, field: str, *, max_len: int = REF_MAX) -> str | None:
    return None if value is None else validate_ref(value, field, max_len=max_len)


def validate_cursor(value: object, field: str = "cursor") -> str | None:
    """A pagination cursor as this service spells them (base64url), or None / "" for none."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    if len(value) > CURSOR_MAX or not _CURSOR_CHARS.fullmatch(value):
        raise ValidationError(field, "is not a cursor returned by this service")
    return value
