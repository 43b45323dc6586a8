"""Validation of free text typed by people (justifications, comments, names).

Control characters are refused because this text ends up in e-mails, CSV
exports and terminals, where they could forge lines or headers: the C0 set
(but tab and line breaks in multi-line text), DEL, and the C1 set
(U+0080–U+009F, which some terminals still obey, e.g. U+009B as CSI).
Bidirectional formatting characters are refused too (the overrides and
embeddings U+202A–U+202E, the isolates U+2066–U+2069 and the marks U+200E,
U+200F, U+061C): they make text display in another order than it is stored,
so a justification or a case title could read differently to the approver
than to the audit log ("Trojan Source").
"""

from __future__ import annotations

import re

from lockbox.domain.errors import ValidationError, present

_C1 = "\x80-\x9f"
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL_RE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f{_C1}\u2028\u2029]")
_LINE_CONTROL_RE = re.compile(f"[\x00-\x1f\x7f{_C1}\u2028\u2029]")
_BIDI_RE = re.compile(f"[{_BIDI}]")

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
    problem = forbidden(cleaned, multiline=multiline)
    if problem is not None:
        raise ValidationError(field, problem)
    return cleaned


def forbidden(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` may not be stored (its first forbidden character), or None if it may.

    Shared by free text and identifiers (:mod:`lockbox.domain.ids`), so every
    field refuses the same characters with the same words.
    """
    pattern = _CONTROL_RE if multiline else _LINE_CONTROL_RE
    found = pattern.search(value)
    if found is not None:
        return f"must not contain control characters (U+{ord(found.group()):04X})"
    found = _BIDI_RE.search(value)
    if found is not None:
        return (
            "must not contain bidirectional formatting characters "
            f"(U+{ord(found.group()):04X}), which make text display out of order"
        )
    return None


def required_text(value: object, field: str, *, max_len: int, multiline: bool = True) -> str:
    return present(text(value, field, max_len=max_len, required=True, multiline=multiline), field)


def comment(value: object, field: str = "comment") -> str | None:
    return text(value, field, max_len=COMMENT_MAX, required=False)
