"""Validation of free text typed by people (justifications, comments, names).

Control characters are refused because this text ends up in e-mails, CSV
exports and terminals, where they could forge lines or headers.
"""

from __future__ import annotations

import re

from lockbox.domain.errors import ValidationError, present

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")
_LINE_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")

JUSTIFICATION_MAX = 4000
COMMENT_MAX = 2000
NAME_MAX = 200


def text(
    value: object, field: str, *, max_len: int, required: bool = True, multiline: bool = True
) -> str | None:
    """Strip and check ``value``; return None for an absent optional value."""
    if value is None:
        if required:
            raise ValidationError(field, "is required")
        return None
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    cleaned = value.strip()
    if not cleaned:
        if required:
            raise ValidationError(field, "must not be blank")
        return None
    if len(cleaned) > max_len:
        raise ValidationError(field, f"must be at most {max_len} characters")
    pattern = _CONTROL_RE if multiline else _LINE_CONTROL_RE
    if pattern.search(cleaned):
        raise ValidationError(field, "must not contain control characters")
    return cleaned


def required_text(value: object, field: str, *, max_len: int, multiline: bool = True) -> str:
    return present(text(value, field, max_len=max_len, required=True, multiline=multiline), field)


def comment(value: object, field: str = "comment") -> str | None:
    return text(value, field, max_len=COMMENT_MAX, required=False)
