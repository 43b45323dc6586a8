"""The shapes of everything a caller sends, shared by path, query, header and body fields,
and the ETag helpers.

Every constraint here is *derived* from the rule the core enforces (the id shapes of
:mod:`lockbox.domain.ids`, the text rules of :mod:`lockbox.domain.text`, slugs and
domains of :mod:`lockbox.domain.tenant`, …), never typed twice, and is written into the
OpenAPI schema. So the schema says exactly what the server accepts: a client (or a
generated client, or a fuzzer) that follows it is never refused for the shape of its
input, and anything outside it is refused with 422 before a use case runs. A value the
core refuses for a reason a schema cannot state (a case of another tenant, an address
outside the tenant's domains, a time in the past) is still its 422 to give.

Every identifier is bounded and free of control characters before it reaches a use
case: a NUL would make PostgreSQL fail with a 500, and an unbounded string is a cheap
denial of service.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, TypeVar

from fastapi import Header, Path, Query
from pydantic import PlainValidator, WithJsonSchema

from lockbox.api.problems import PreconditionFailed
from lockbox.domain import ids, policy, resource_service, resources, tenant, text
from lockbox.domain.errors import BrokenInvariant, Conflict, ValidationError, require

# -- character classes, from the text rules ----------------------------------------------


def _escape(chars: str) -> str:
    """A character-class body with every non-printable or non-ASCII character as ``\\uXXXX``.

    One spelling that Python's ``re``, the Rust engine pydantic validates with and the
    ECMA-262 patterns of JSON Schema all read the same way.
    """
    out = []
    for char in chars:
        out.append(char if " " < char < "\x7f" else f"\\u{ord(char):04x}")
    return "".join(out)


def _class_body(regex: re.Pattern[str]) -> str:
    """The inside of a regex that is exactly one positive character class ``[...]``."""
    pattern = regex.pattern
    if not (pattern.startswith("[") and pattern.endswith("]")) or pattern.startswith("[^"):
        raise BrokenInvariant(f"expected one character class, got {pattern!r}")
    return _escape(pattern[1:-1])


#: Characters no single-line value may hold (controls, line breaks, bidi formatting).
_NOT_IN_LINE = _class_body(text._LINE_CONTROL_RE) + _class_body(text._BIDI_RE)
#: Characters no multi-line value may hold (the same, but tab and line feed are allowed).
_NOT_IN_TEXT = _class_body(text._CONTROL_RE) + _class_body(text._BIDI_RE)
#: What ``str.strip()`` removes: a value made only of these is blank.
_SPACE = _escape("".join(c for c in map(chr, range(0x110000)) if c.isspace()))

#: One line, possibly empty (an optional value: blank means absent).
LINE = rf"^[^{_NOT_IN_LINE}]*$"
#: One line with something in it besides spaces (a required name, title, reference).
LINE_TEXT = rf"^[^{_NOT_IN_LINE}]*[^{_NOT_IN_LINE}{_SPACE}][^{_NOT_IN_LINE}]*$"
#: Free text over several lines, possibly empty (a comment).
TEXT = rf"^[^{_NOT_IN_TEXT}]*$"
#: Free text over several lines with something in it besides spaces (a justification).
TEXT_REQUIRED = rf"^[^{_NOT_IN_TEXT}]*[^{_NOT_IN_TEXT}{_SPACE}][^{_NOT_IN_TEXT}]*$"


def _inner(regex: re.Pattern[str]) -> str:
    """A whole-value regex (``^…$``) without its anchors, to combine with others."""
    return regex.pattern.removeprefix("^").removesuffix("$")


# -- identifiers ---------------------------------------------------------------------------

_ID_BODY = _inner(ids._ID_RE).split("_", 1)[1]  # [0-9a-z]{26}: what follows the prefix
require(_ID_BODY.startswith("["), "the id shape of lockbox.domain.ids changed")


def id_pattern(kind: str) -> str:
    """The exact shape of one kind of id (``req_`` and 26 base-32 characters for requests)."""
    return _id_alternative(kind, anchored=True)


def _id_alternative(kind: str, *, anchored: bool = False) -> str:
    body = f"{ids.PREFIXES[kind]}_{_ID_BODY}"
    return f"^{body}$" if anchored else body


#: An e-mail address as the core accepts one, without control, bidi or space characters
#: anywhere (``\s`` of the core's pattern is spelt out: engines disagree on what it means).
_EMAIL = _inner(policy._EMAIL_RE).replace(r"\s", _NOT_IN_LINE + _SPACE)
require(_inner(policy._EMAIL_RE) != _EMAIL, "the e-mail pattern of lockbox.domain.policy changed")
EMAIL = f"^{_EMAIL}$"
EMAIL_MAX = 320
_SLUG = _inner(tenant._SLUG_RE)
#: A tenant is named by its slug or its id.
TENANT_REF = f"^(?:{_SLUG}|{_id_alternative('tenant')})$"
#: A user is named by their id or their e-mail address (``/`` never: it is a path segment).
USER_REF = f"^(?:{_id_alternative('user')}|{_EMAIL.replace('[^@', '[^/@', 1)})$"
#: Whoever an audit record names as its actor: a user, Lockbox itself or the local operator.
ACTOR_REF = f"^(?:{_id_alternative('user')}|system|operator)$"
#: A tenant's e-mail domain; upper case is accepted (the core lower-cases it).
DOMAIN = "^" + _inner(tenant._DOMAIN_RE).replace("a-z", "A-Za-z") + "$"
DOMAIN_MAX = 253
SLUG = tenant._SLUG_RE.pattern

_SEGMENT_CHARS = _inner(resources._SEGMENT_RE).removesuffix("{1,200}")
require(_SEGMENT_CHARS.startswith("[") and _SEGMENT_CHARS.endswith("]"), "segment shape changed")
_PLAIN = _SEGMENT_CHARS.replace(".", "", 1)  # the same characters but '.'
#: One segment of a resource name: 1-200 of its characters, but not '.' or '..'.
_SEGMENT = (
    f"(?:{_PLAIN}{_SEGMENT_CHARS}{{0,199}}"
    f"|\\.{_PLAIN}{_SEGMENT_CHARS}{{0,198}}"
    f"|\\.\\.{_SEGMENT_CHARS}{{1,198}})"
)
#: A resource a request asks for: segments separated by '/', the last one may be '*'.
RESOURCE = f"^{_SEGMENT}(?:/{_SEGMENT})*(?:/\\*)?$"
#: A concrete resource (a check names one): no '*' at all.
CONCRETE_RESOURCE = f"^{_SEGMENT}(?:/{_SEGMENT})*$"
#: What a resource service owns: '*' (everything) or a prefix ending in '/'.
PREFIX = f"^(?:\\*|{_SEGMENT}(?:/{_SEGMENT})*/)$"
AUDIENCE = resource_service._AUDIENCE_RE.pattern

TenantRef = Annotated[
    str,
    Path(description="Tenant slug or id (`ten_…`).", max_length=ids.ID_MAX, pattern=TENANT_REF),
]
UserRef = Annotated[
    str,
    Path(
        description="User id (`usr_…`) or e-mail address.", max_length=EMAIL_MAX, pattern=USER_REF
    ),
]


def _path_id(kind: str, what: str) -> Any:
    prefix = ids.PREFIXES[kind]
    return Path(description=f"{what} id (`{prefix}_…`).", pattern=id_pattern(kind))


RequestId = Annotated[str, _path_id("request", "Access request")]
CaseId = Annotated[str, _path_id("case", "Support case")]
TokenId = Annotated[str, _path_id("token", "API token")]
WebhookId = Annotated[str, _path_id("webhook", "Webhook")]
MessageId = Annotated[str, _path_id("outbox", "Outbox message")]
RuleId = Annotated[str, _path_id("auto_rule", "Auto-approval rule")]
ChangeId = Annotated[str, _path_id("change", "Pending change")]
DelegationId = Annotated[str, _path_id("delegation", "Delegation")]


def tenant_query(description: str = "Tenant slug or id (`ten_…`).") -> Any:
    return Query(description=description, max_length=ids.ID_MAX, pattern=TENANT_REF)


def user_query(description: str) -> Any:
    return Query(description=description, max_length=EMAIL_MAX, pattern=USER_REF)


def id_query(kind: str, description: str) -> Any:
    return Query(description=description, pattern=id_pattern(kind))


def decimal_up_to(limit: int) -> str:
    """A pattern for the decimal numbers 0 to ``limit`` (no sign, no leading zeros)."""
    digits = str(limit)
    branches = ["0"]
    if len(digits) > 1:  # every shorter number
        branches.append(f"[1-9][0-9]{{0,{len(digits) - 2}}}")
    for i, digit in enumerate(digits):  # as long, and smaller from position i on
        low, top = (1 if i == 0 else 0), int(digit) - 1
        if top >= low:
            rest = len(digits) - i - 1
            choice = str(low) if low == top else f"[{low}-{top}]"
            branches.append(digits[:i] + choice + (f"[0-9]{{{rest}}}" if rest else ""))
    branches.append(digits)
    return "^(?:" + "|".join(dict.fromkeys(branches)) + ")$"


#: An opaque page cursor from ``next_cursor`` (base64url; only the service can read it).
CURSOR = r"^[A-Za-z0-9_-]{1,500}$"


def cursor_query() -> Any:
    return Query(
        description="`next_cursor` of the previous page, as it was given (opaque).",
        pattern=CURSOR,
    )


# -- instants --------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
INSTANT_HELP = "an RFC 3339 date and time with a time zone, such as 2026-01-05T09:00:00Z"


def parse_instant(value: object) -> datetime:
    """An RFC 3339 ``date-time`` (section 5.6) as an aware UTC datetime; nothing else.

    Numbers (``0.5`` would otherwise pass as seconds since 1970), dates without a time
    and times without a zone are refused: each would mean a different instant to
    different readers. An instant with no UTC equivalent (year 0000, or
    9999-12-31T23:59:59-01:00, after year 9999 in UTC) is refused too. A leap second
    (``:60``) is the last microsecond of its minute.
    """
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"must be {INSTANT_HELP}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zulu, sign, off_hours, off_minutes = match.groups()[6:]
    if int(off_hours or 0) > 23 or int(off_minutes or 0) > 59:
        raise ValueError("has a time zone offset out of range (at most ±23:59)")
    offset = timedelta(hours=int(off_hours or 0), minutes=int(off_minutes or 0))
    zone = UTC if zulu else timezone(-offset if sign == "-" else offset)
    if year == 0:
        raise ValueError("is out of range: years 1 to 9999 in UTC")
    micro = int((fraction or ".0")[1:7].ljust(6, "0"))
    if second == 60:  # a leap second: not representable, the end of its minute instead
        second, micro = 59, 999_999
    try:
        local = datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
    except ValueError:
        raise ValueError(f"is not a valid date and time; must be {INSTANT_HELP}") from None
    try:
        return local.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range: years 1 to 9999 in UTC") from None


#: A point in time: strictly RFC 3339 with a zone, as every time parameter and field takes it.
Instant = Annotated[
    datetime,
    PlainValidator(parse_instant),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "description": f"Must be {INSTANT_HELP}."}
    ),
]

# -- conditional requests -----------------------------------------------------------------------

#: What ``If-Match`` may hold: ``*``, or one entity tag as an ETag gives it (``"3"``), or the
#: version without its quotes (``3``: what a client that strips them sends).
IF_MATCH = r'^(?:\*|(?:W/)?"[0-9]{1,18}"|[0-9]{1,18})$'
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='Act only if the object is still at this version: the ETag you read (`"3"`) '
        "or just its number (`3`); `*` or no header: whatever is current.",
        pattern=IF_MATCH,
    ),
    # A header is there or not: it has no null (which a client would send as the text "null").
    WithJsonSchema({"type": "string", "pattern": IF_MATCH}),
]

_TAG = re.compile(r'\s*(?:(?:W/)?"([0-9]{1,18})"|([0-9]{1,18}))\s*')


def etag(version: int) -> str:
    """A strong entity tag for an object version."""
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    """The version an ``If-Match`` header names; None when absent or ``*``."""
    if value is None or value.strip() == "*":
        return None
    match = _TAG.fullmatch(value)
    if match is None:
        raise ValidationError("If-Match", 'must be one entity tag such as "3" (from ETag)')
    return int(match.group(1) or match.group(2))


T = TypeVar("T")


@contextmanager
def precondition(expected: int | None) -> Iterator[None]:
    """With ``If-Match``, a lost version check is 412 Precondition Failed, not 409."""
    try:
        yield
    except PreconditionFailed:
        raise
    except Conflict as exc:
        if expected is None:
            raise
        raise PreconditionFailed(exc.message, **exc.extra) from exc


def conditional(if_match: str | None, action: Callable[[int | None], T]) -> T:
    expected = parse_if_match(if_match)
    with precondition(expected):
        return action(expected)
