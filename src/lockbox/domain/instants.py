"""Instants given by callers (filters, expiries) must be unambiguous points in time."""

from __future__ import annotations

from datetime import UTC, datetime

from lockbox.domain.errors import ValidationError


def utc_instant(value: object, field: str) -> datetime:
    """``value`` as an aware UTC datetime; a naive or unrepresentable time names ``field``.

    A time without a zone means different instants on different machines, so it is
    refused rather than guessed.
    """
    if not isinstance(value, datetime):
        raise ValidationError(field, "must be a date and time")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(field, "must include a time zone (e.g. 2026-01-05T09:00:00Z)")
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValidationError(field, "is out of range") from None


def optional_utc_instant(value: object, field: str) -> datetime | None:
    return None if value is None else utc_instant(value, field)


def format_instant(value: datetime) -> str:
    """The one spelling of an instant everywhere Lockbox writes one (API, audit, e-mail, CLI).

    UTC, always microseconds, ``Z``: two renderings of the same instant are the same
    string, so times compare as text and hash identically in the audit chain.
    """
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat is the C spelling of "%Y-%m-%dT%H:%M:%S.%f" (several times faster than
    # strftime, which matters when a chain of a million records is verified).
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def format_optional(value: datetime | None) -> str | None:
    return format_instant(value) if value is not None else None
