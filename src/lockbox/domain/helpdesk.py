"""Help-desk events as rules on plain values: the signature, the event's shape, and what an
event does to the ticket's case given what was applied before (no clock, no I/O).

**The signature** is the Standard Webhooks scheme (https://www.standardwebhooks.com/):
``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (one or more
space-separated ``v1,<base64 HMAC-SHA256>``) over ``"{id}.{timestamp}.{body}"``, keyed with
the base64-decoded part of the integration's ``whsec_…`` secret. The timestamp must lie
within :data:`TOLERANCE` of the caller's clock, and every comparison is constant-time.
(Written here rather than taken from the ``standardwebhooks`` package: that one reads the
system clock itself, and the time must come from Lockbox's clock.)

**The generic event** (docs/helpdesk.md)::

    {"type": "ticket.opened" | "ticket.updated" | "ticket.closed",
     "ticket": {"id": "...", "title": "...", "tenant": "<tenant slug>",
                "engineer": "<engineer e-mail>", "updated_at": "<RFC 3339>"}}

**Order and repeats** (:func:`decide`): every event carries the whole ticket, so the last
one by the ticket's ``updated_at`` wins and one that is older than what was applied is
ignored; an ``opened`` or ``updated`` for a ticket never seen opens its case; ``closed`` is
final whatever its time: a closed ticket's case is never reopened, and a ``closed`` for a
ticket never seen is remembered, so a late ``opened`` opens nothing. The outcome for a
ticket is therefore the same in whatever order its events arrive.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from lockbox.domain import ids, text
from lockbox.domain.errors import AuthenticationFailed, ValidationError

SECRET_PREFIX = "whsec_"
#: How far ``webhook-timestamp`` may be from Lockbox's clock, either way.
TOLERANCE = timedelta(minutes=5)
WEBHOOK_ID_MAX = 200
TICKET_ID_MAX = 100
NAME_MAX = 100
#: At most this many signatures in one header (a sender rotating its secret sends two).
MAX_SIGNATURES = 10
#: One answer for an unknown integration and for a wrong signature: neither says which.
NO_SIGNATURE = "no valid signature for this integration (webhook-signature)"

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v1,([A-Za-z0-9+/]{43}=)")


class EventType(StrEnum):
    OPENED = "ticket.opened"
    UPDATED = "ticket.updated"
    CLOSED = "ticket.closed"


class TicketStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Action(StrEnum):
    """What an event does; the value is also the outcome the sender is told."""

    OPEN = "opened"  # open a case for the ticket and link them
    UPDATE = "updated"  # change the case's title or engineer (or nothing: "unchanged")
    CLOSE = "closed"  # close the case, ending every request on it
    REMEMBER_CLOSED = "recorded_closed"  # closed before Lockbox saw it open: remember it
    IGNORE_STALE = "ignored_stale"  # older than what was applied for the ticket
    IGNORE_CLOSED = "ignored_closed"  # the ticket is closed already: nothing reopens it


# -- the signature -------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedDelivery:
    """The signature headers of one delivery, well-formed and fresh (not yet verified)."""

    msg_id: str
    timestamp: int
    signatures: tuple[bytes, ...]  # each candidate's base64 text, as sent


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_…`` secret."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one delivery (for senders, relays and tests)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def read_headers(headers: Mapping[str, str], now: datetime) -> SignedDelivery:
    """The delivery's signature headers, refused (401) when missing, malformed or stale.

    Nothing here depends on the integration, so these refusals say nothing about
    whether it exists.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    header = lowered.get("webhook-signature")
    if not msg_id or not stamp or not header:
        raise AuthenticationFailed(
            "sign the delivery: webhook-id, webhook-timestamp and webhook-signature are required"
        )
    if len(msg_id) > WEBHOOK_ID_MAX or text.forbidden(msg_id) is not None or not msg_id.strip():
        raise AuthenticationFailed(
            f"webhook-id must be one line of at most {WEBHOOK_ID_MAX} characters"
        )
    if not _TIMESTAMP.fullmatch(stamp):
        raise AuthenticationFailed("webhook-timestamp must be Unix seconds (digits only)")
    timestamp = int(stamp)
    if abs(now.timestamp() - timestamp) > TOLERANCE.total_seconds():
        raise AuthenticationFailed(
            "webhook-timestamp is more than 5 minutes away from Lockbox's clock "
            "(a replay, or the sender's clock is wrong)"
        )
    candidates = tuple(
        match.group(1).encode("ascii")
        for part in header.split(" ")[:MAX_SIGNATURES]
        if (match := _SIGNATURE.fullmatch(part)) is not None
    )
    if not candidates:
        raise AuthenticationFailed(NO_SIGNATURE)
    return SignedDelivery(msg_id=msg_id, timestamp=timestamp, signatures=candidates)


def signature_matches(delivery: SignedDelivery, body: bytes, secrets: Sequence[str]) -> bool:
    """Whether one of the delivery's signatures is the HMAC of ``body`` under one of
    ``secrets``. Every pair is compared, in constant time, whatever matched first."""
    found = False
    for secret in secrets:
        try:
            expected = sign(secret, delivery.msg_id, delivery.timestamp, body)[3:].encode()
        except (binascii.Error, ValueError):
            continue  # not a usable secret: matches nothing
        for candidate in delivery.signatures:
            found |= hmac.compare_digest(candidate, expected)
    return found


# -- the event -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketEvent:
    type: EventType
    ticket_id: str
    updated_at: datetime
    title: str | None = None  # cleaned; required for opened and updated
    tenant: str | None = None
    engineer: str | None = None


_TOP_FIELDS = frozenset({"type", "ticket"})
_TICKET_FIELDS = frozenset({"id", "title", "tenant", "engineer", "updated_at"})


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Duplicate(key)
        found[key] = value
    return found


def parse_event(body: bytes) -> TicketEvent:
    """The generic event in ``body``; a :class:`ValidationError` names the first bad field.

    Unknown fields are refused (a misspelt one would otherwise be silently lost). Only
    ``id`` and ``updated_at`` are always required; ``title``, ``tenant`` and ``engineer``
    are required to open a case (:func:`opening`), and an update without one of them (a
    ticket that lost its assignee, say) leaves that part of the case as it is.
    """
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError("body", f"is not valid UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(decoded, object_pairs_hook=_no_duplicates)
    except _Duplicate as exc:
        raise ValidationError(f"{exc.key[:100]}", "is given more than once") from None
    except RecursionError:
        raise ValidationError("body", "is nested too deeply") from None
    except ValueError as exc:
        raise ValidationError("body", f"malformed JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValidationError("body", "must be a JSON object with type and ticket")
    _known(data, _TOP_FIELDS, "")
    kinds = {e.value: e for e in EventType}
    kind = kinds.get(data["type"]) if isinstance(data.get("type"), str) else None
    if kind is None:
        raise ValidationError("type", f"must be one of {', '.join(kinds)}")
    ticket = data.get("ticket")
    if not isinstance(ticket, dict):
        raise ValidationError("ticket", "must be an object")
    _known(ticket, _TICKET_FIELDS, "ticket.")
    ticket_id = _ticket_id(ticket.get("id"))
    if "updated_at" not in ticket:
        raise ValidationError("ticket.updated_at", "is required")
    updated_at = parse_time(ticket["updated_at"], "ticket.updated_at")
    title = _optional(ticket, "title")
    tenant = _optional(ticket, "tenant")
    engineer = _optional(ticket, "engineer")
    return TicketEvent(
        type=kind,
        ticket_id=ticket_id,
        updated_at=updated_at,
        title=clean_title(title) if title is not None else None,
        tenant=ids.validate_id(tenant, "tenant", "ticket.tenant") if tenant is not None else None,
        engineer=(ids.validate_ref(engineer, "ticket.engineer") if engineer is not None else None),
    )


def _known(data: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
    for key in data:
        if key not in allowed:
            raise ValidationError(f"{prefix}{key[:100]}", "unknown field")


def _ticket_id(value: object) -> str:
    """Help desks number tickets (Zendesk, Freshdesk) or name them (``INC0010023``,
    ``SUP-42``): a JSON number is taken as its digits."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("ticket.id", "is required: the ticket's id in the help desk")
    if len(value) > TICKET_ID_MAX or text.forbidden(value) is not None:
        raise ValidationError(
            "ticket.id", f"must be one line of at most {TICKET_ID_MAX} characters"
        )
    return value.strip()


def _optional(ticket: Mapping[str, Any], key: str) -> str | None:
    """A string field; absent, null or blank (an empty placeholder) is None."""
    value = ticket.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ValidationError(f"ticket.{key}", "must be a string")
    return value.strip()


_SPACES = re.compile(r"\s+")


def clean_title(value: str) -> str:
    """A help desk's subject as a case title: one line, no control or bidirectional
    formatting characters (removed), at most :data:`text.NAME_MAX` characters (cut with an
    ellipsis) rather than refused: the help desk, not a person, typed it here."""
    kept = (" " if c.isspace() else c for c in value if c.isspace() or text.forbidden(c) is None)
    cleaned = _SPACES.sub(" ", "".join(kept)).strip()
    if not cleaned:
        raise ValidationError("ticket.title", "is required to open or update a case")
    if len(cleaned) > text.NAME_MAX:
        cleaned = cleaned[: text.NAME_MAX - 1].rstrip() + "…"
    return cleaned


_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))"
)
TIME_HELP = "an RFC 3339 date and time with a time zone, such as 2026-01-05T09:00:00Z"


def parse_time(value: object, field: str) -> datetime:
    """The ticket's ``updated_at``: RFC 3339, plus what help desks print by default (no
    seconds, as Zendesk's ``…_with_timestamp`` placeholders; ``+0000`` offsets, as Jira's
    smart values; a space for ``T``). A time without a zone is refused: it would mean
    different instants to the help desk and to Lockbox."""
    match = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValidationError(field, f"must be {TIME_HELP}")
    year, month, day, hour, minute = (int(g) for g in match.groups()[:5])
    second = int(match.group(6) or 0)
    fraction, zulu, sign_, off_hours, off_minutes = match.groups()[6:]
    if int(off_hours or 0) > 23 or int(off_minutes or 0) > 59:
        raise ValidationError(field, "has a time zone offset out of range (at most ±23:59)")
    offset = timedelta(hours=int(off_hours or 0), minutes=int(off_minutes or 0))
    zone = UTC if zulu else timezone(-offset if sign_ == "-" else offset)
    micro = int((fraction or ".0")[1:7].ljust(6, "0"))
    if second == 60:  # a leap second: the end of its minute
        second, micro = 59, 999_999
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationError(field, f"is not a valid date and time; must be {TIME_HELP}") from None


def opening(event: TicketEvent) -> tuple[str, str, str]:
    """(title, tenant, engineer) of an event that opens a case: each one is required."""
    for name, value in (
        ("title", event.title),
        ("tenant", event.tenant),
        ("engineer", event.engineer),
    ):
        if value is None:
            raise ValidationError(f"ticket.{name}", "is required to open a case")
    return event.title or "", event.tenant or "", event.engineer or ""


# -- order and repeats ---------------------------------------------------------------------


@dataclass(frozen=True)
class TicketLink:
    """What Lockbox holds about one ticket of one integration."""

    status: TicketStatus
    ticket_updated_at: datetime
    case_id: str | None


def decide(event: TicketEvent, link: TicketLink | None) -> Action:
    """What ``event`` does, given the ticket's link (None: never seen)."""
    if link is None:
        return Action.REMEMBER_CLOSED if event.type is EventType.CLOSED else Action.OPEN
    if link.status is TicketStatus.CLOSED:
        return Action.IGNORE_CLOSED
    if event.type is EventType.CLOSED:
        return Action.CLOSE  # closing is final, however late its event arrives
    if event.updated_at < link.ticket_updated_at:
        return Action.IGNORE_STALE
    return Action.UPDATE
