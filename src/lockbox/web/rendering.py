"""Jinja environment and the small presentation helpers the web templates need.

Everything a template shows about time goes through here, so that the pages,
the e-mails' wording and ``static/lockbox.js`` agree: absolute times are spelt
``5 Jan 2026, 21:00 CET`` in the person's zone (UTC when unknown), relative
deadlines ``in 3 h 12 min`` / ``5 min ago``, always rounded *down* so a page
never promises more time than is left. The script re-renders the same wording
in the browser; the server's rendering is what a person sees without
JavaScript, so it must be complete on its own.

Zone names arrive from people (a profile setting, the ``lockbox_tz`` cookie the
script sets), so they are validated and anything unknown falls back to UTC
rather than failing the page.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import segno
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    select_autoescape,
)
from markupsafe import Markup

from lockbox.domain.errors import BrokenInvariant

PACKAGE_DIR: Final = Path(__file__).parent
TEMPLATES_DIR: Final = PACKAGE_DIR / "templates"
STATIC_DIR: Final = PACKAGE_DIR / "static"
#: The files under ``static/`` that pages link to; their hash is the cache-busting version.
STATIC_FILES: Final = ("lockbox.css", "lockbox.js", "passkeys.js")
#: Cookie the script sets with the browser's IANA zone when the person chose none.
TZ_COOKIE: Final = "lockbox_tz"

TzSource = Literal["default", "chosen"]
FlashKind = Literal["success", "info", "warning", "error"]
Tone = Literal["ok", "wait", "attention", "ended", "refused"]

_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
# IANA keys are ASCII words joined by '/', e.g. "America/Argentina/Buenos_Aires", "Etc/GMT+5".
_ZONE_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]{0,30}(?:/[A-Za-z0-9_+\-]{1,30}){0,2}")


# --------------------------------------------------------------------------- time zones


def resolve_zone(zone: str | tzinfo | None) -> tzinfo:
    """The zone to render in: a ``tzinfo`` as given, a valid IANA name, else UTC.

    Never raises: an unknown, malformed or hostile name (``../../etc/passwd``)
    from a cookie must not break the page, and UTC is always correct, only
    less convenient.
    """
    if isinstance(zone, tzinfo):
        return zone
    if not zone or not _ZONE_RE.fullmatch(zone):
        return UTC
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return UTC


def zone_label(zone: str | tzinfo | None) -> str:
    """A person-facing name for the zone: its IANA key (``Europe/Berlin``), or ``UTC``."""
    resolved = resolve_zone(zone)
    if isinstance(resolved, ZoneInfo):
        return resolved.key
    return "UTC" if resolved is UTC else str(resolved)


def as_utc(value: datetime) -> datetime:
    """``value`` as aware UTC; a naive value is taken to be UTC already.

    The domain only ever produces aware UTC times, but SQLite hands them back
    naive, and a page should not crash on that.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso_utc(value: datetime | None) -> str:
    """Machine-readable UTC with second precision (``2026-01-05T20:00:00Z``), for ``datetime=``."""
    if value is None:
        return ""
    return as_utc(value).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def localtime(value: datetime | None, tz: str | tzinfo | None = None) -> str:
    """``5 Jan 2026, 21:00 CET``: day, month, year, 24-hour time and the zone's abbreviation.

    The abbreviation is always shown, so a time can never be mistaken for
    another zone's; zones without a letter abbreviation (``+04``) read
    ``UTC+04``. Month names are fixed English, matching ``lockbox.js``.
    """
    if value is None:
        return ""
    local = as_utc(value).astimezone(resolve_zone(tz))
    abbreviation = local.tzname() or "UTC"
    if abbreviation[:1] in {"+", "-"}:
        abbreviation = f"UTC{abbreviation}"
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}, {local:%H:%M} {abbreviation}"


def _span(minutes: int) -> str:
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, hours = divmod(minutes // 60, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def relative(value: datetime | None, now: datetime) -> str:
    """``in 3 h 12 min``, ``in 45 min``, ``in 2 d 3 h``, ``5 min ago``, ``just now``.

    Rounded down to the minute (``in 59 min`` when 59 min 50 s are left) so a
    deadline is never shown later than it is. ``lockbox.js`` has the same
    rules; change both together.
    """
    if value is None:
        return ""
    seconds = (as_utc(value) - as_utc(now)).total_seconds()
    minutes = math.floor(abs(seconds) / 60)
    if minutes < 1:
        return "in under 1 min" if seconds > 0 else "just now"
    span = _span(minutes)
    return f"in {span}" if seconds > 0 else f"{span} ago"


def deadline_class(value: datetime | None, now: datetime) -> str:
    """``past`` once the deadline passed, ``urgent`` in its last hour, else empty."""
    if value is None:
        return ""
    seconds = (as_utc(value) - as_utc(now)).total_seconds()
    if seconds <= 0:
        return "past"
    return "urgent" if seconds < 3600 else ""


# --------------------------------------------------------------------------- states and icons


@dataclass(frozen=True)
class StateStyle:
    """How a request state is shown: words, a colour family (``tone``) and an icon.

    All three carry the meaning, so nobody depends on telling colours apart.
    """

    label: str
    tone: Tone
    icon: str
    hint: str


STATE_STYLES: Final[Mapping[str, StateStyle]] = {
    "pending_review": StateStyle(
        "Pending review", "wait", "clock", "Waiting for a support manager to review it."
    ),
    "pending_approval": StateStyle(
        "Pending approval", "attention", "hourglass", "Waiting for the customer to approve it."
    ),
    "approved": StateStyle("Approved", "ok", "check", "Access is granted until the end time."),
    "rejected": StateStyle("Rejected", "refused", "cross", "A support manager turned it down."),
    "denied": StateStyle("Denied", "refused", "cross", "The customer turned it down."),
    "canceled": StateStyle("Canceled", "ended", "minus", "The requester withdrew it."),
    "expired": StateStyle("Expired", "ended", "clock", "Nobody decided before the deadline."),
    "closed": StateStyle("Closed", "ended", "stop", "The support case was closed."),
    "revoked": StateStyle("Revoked", "refused", "ban", "The customer ended access early."),
    "access_ended": StateStyle("Access ended", "ended", "stop", "The access window is over."),
}


def state_style(state: str) -> StateStyle:
    """The style of ``state`` (a ``State`` or its value); unknown states get neutral words."""
    key = str(state)
    known = STATE_STYLES.get(key)
    if known is not None:
        return known
    return StateStyle(key.replace("_", " ").capitalize() or "Unknown", "ended", "dot", "")


_ICON_PATHS: Final[Mapping[str, str]] = {
    "check": '<path d="M3.5 8.5l3 3 6-7"/>',
    "check-circle": '<circle cx="8" cy="8" r="6.25"/><path d="M5.25 8.25l2 2 3.5-4"/>',
    "clock": '<circle cx="8" cy="8" r="6.25"/><path d="M8 4.5V8l2.5 1.5"/>',
    "hourglass": (
        '<path d="M4 2h8M4 14h8M5 2v1.5C5 5.5 8 6 8 8s-3 2.5-3 4.5V14'
        'M11 2v1.5C11 5.5 8 6 8 8s3 2.5 3 4.5V14"/>'
    ),
    "cross": '<circle cx="8" cy="8" r="6.25"/><path d="M5.75 5.75l4.5 4.5M10.25 5.75l-4.5 4.5"/>',
    "ban": '<circle cx="8" cy="8" r="6.25"/><path d="M3.6 12.4l8.8-8.8"/>',
    "minus": '<circle cx="8" cy="8" r="6.25"/><path d="M5 8h6"/>',
    "stop": '<rect x="3.5" y="3.5" width="9" height="9" rx="1.5"/>',
    "dot": '<circle cx="8" cy="8" r="3"/>',
    "info": '<circle cx="8" cy="8" r="6.25"/><path d="M8 7.25v4.25M8 4.75v.01"/>',
    "alert": '<path d="M8 1.9l6.4 11.35H1.6z"/><path d="M8 6.5v3M8 11.4v.01"/>',
    "inbox": '<path d="M2 9.5l1.75-6h8.5L14 9.5V13H2z"/><path d="M2 9.5h3.5l1 1.5h3l1-1.5H14"/>',
}


def icon(name: str) -> Markup:
    """A decorative 16×16 inline SVG (hidden from assistive technology; the words carry meaning).

    Inline SVG needs no extra request and is allowed by the CSP (no style, no script).
    """
    paths = _ICON_PATHS.get(name, _ICON_PATHS["dot"])
    # Only this module's constants go into the markup, never a caller's text.
    return Markup(  # noqa: S704
        '<svg class="icon" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" '
        'focusable="false" fill="none" stroke="currentColor" stroke-width="1.75" '
        f'stroke-linecap="round" stroke-linejoin="round">{paths}</svg>'
    )


# --------------------------------------------------------------------------- page context


class UserView(Protocol):
    """What the top bar shows about the signed-in person."""

    @property
    def display_name(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def role_label(self) -> str: ...
    @property
    def tenant_name(self) -> str: ...


@dataclass(frozen=True)
class NavItem:
    """One entry of the main navigation; ``active`` marks the current section."""

    label: str
    href: str
    active: bool = False


@lru_cache(maxsize=1)
def static_version() -> str:
    """A short hash of the static files, for ``?v=``: browsers may cache them for a year.

    Computed once per process; a deploy with changed CSS or JS changes the
    version, so nobody gets a stale stylesheet.
    """
    digest = hashlib.sha256()
    for name in STATIC_FILES:
        digest.update(name.encode())
        digest.update((STATIC_DIR / name).read_bytes())
    return digest.hexdigest()[:12]


def base_context(
    *,
    page_title: str,
    provider_name: str,
    user: UserView | None,
    csrf_token: str,
    nav: Iterable[NavItem],
    flashes: Iterable[tuple[FlashKind, str]],
    tz: str | tzinfo | None,
    tz_source: TzSource,
    asset_version: str | None = None,
) -> dict[str, Any]:
    """Every variable ``base.html`` needs; pages add their own on top.

    ``tz`` is the chosen zone (``tz_source="chosen"``) or the browser's from the
    ``lockbox_tz`` cookie or ``None`` (``"default"``); it is resolved here once
    and passed on as a ``tzinfo`` for the ``time`` macro.
    """
    zone = resolve_zone(tz)
    return {
        "page_title": page_title,
        "provider_name": provider_name,
        "user": user,
        "csrf_token": csrf_token,
        "nav": list(nav),
        "flashes": list(flashes),
        "tz": zone,
        "tz_label": zone_label(zone),
        "tz_source": tz_source,
        "asset_version": asset_version or static_version(),
    }


QR_LABEL: Final = "QR code of the key, for your authenticator app's camera"


def qr_svg(data: str, *, label: str = QR_LABEL) -> Markup:
    """``data`` (an ``otpauth://`` link) as a QR code in inline SVG, for a page.

    Drawn by ``segno`` as one ``<path>`` (presentation attributes only: no ``style``
    attribute or element, no script), so the page's Content-Security-Policy
    (``style-src 'self'``, no inline anything) has nothing to block. Dark modules on a
    white quiet zone, whatever the page's colours, so a camera can always read it.
    The SVG holds no text of ``data`` (only the modules), and ``label`` is fixed text.
    """
    svg = segno.make(data, error="m", micro=False).svg_inline(
        border=4, dark="#000", light="#fff", svgclass="qr", lineclass=None, omitsize=True
    )
    if not svg.startswith("<svg "):
        raise BrokenInvariant("segno did not draw an <svg> element")
    opening = Markup('<svg role="img" aria-label="{}" ').format(label)
    return opening + Markup(svg[5:])  # noqa: S704 (segno's drawing: modules only, no text)


def make_environment(*, loader: BaseLoader | None = None, auto_reload: bool = False) -> Environment:
    """The Jinja environment of the web pages.

    Autoescaping is on for every template (a template that forgot to escape
    a customer's text would be an XSS hole), undefined variables raise
    instead of rendering as empty, and ``loader`` (e.g. a page package's own
    templates) is searched before this package's ``templates/``.
    """
    own = FileSystemLoader(str(TEMPLATES_DIR))
    env = Environment(
        loader=ChoiceLoader([loader, own]) if loader is not None else own,
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml"), default_for_string=True, default=True
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=auto_reload,
    )
    env.filters.update(
        localtime=localtime,
        relative=relative,
        iso_utc=iso_utc,
        deadline_class=deadline_class,
        zone_label=zone_label,
    )
    env.globals.update(state_style=state_style, icon=icon, TZ_COOKIE=TZ_COOKIE)
    return env
