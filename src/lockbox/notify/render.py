"""Render outbox payloads into e-mails: subject, plain text and HTML, with no links at all.

Lockbox e-mails must not be usable for phishing, so they carry no link or URL
of any kind. The templates contain none, and every value interpolated into
them goes through :func:`defang` (via the Jinja ``finalize`` hook, so no
template can forget it): anything in user-supplied text that a mail client
would turn into a link (``http://…``, ``www.…``, other ``scheme://`` forms,
``<a …>`` markup, a bare domain name with a path such as ``evil.example/approve``)
is rewritten into an inert form (``hxxp``, ``www[.]``, ``[:]//``, ``‹a``,
``evil[.]example/approve``). The HTML part is autoescaped on top of that.

The bare-domain rule (:data:`_DOMAIN_PATH_RE`): a run of dot-separated labels
ending in an alphabetic top-level domain, followed by a path, query or port
(``/``, ``?``, ``#``, ``:8443/``), that *starts a word* — at the start, after a
space or punctuation, or right after ``//`` — gets its last dot written as
``[.]``. A domain after ``@`` (an e-mail address, even one followed by ``/``)
and a segment inside a path (a resource name such as
``sharepoint/sites/contoso.sharepoint.com/docs``, or
``exchange/mailbox/alice.smith/inbox``) are left alone, so addresses and
resource names stay exactly as they are. A bare domain *without* a path
(``contoso.com``, as in every e-mail address) is left alone too.

The admin center's address is the operator's own setting, shown as text to
type (without its scheme, :func:`plain_address`); it is the one value that is
not defanged, so "type it yourself: lockbox.acme.example/admin" stays typeable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"

#: A scheme starts where a run of scheme characters starts, and the run is taken whole
#: (possessive): one pass over the text, where trying every start was quadratic.
_SCHEME_RE = re.compile(r"(?<![a-z0-9+.\-])([a-z][a-z0-9+.\-]*+):(/{1,2}|\\{1,2})", re.IGNORECASE)
_HTTP_RE = re.compile(r"(h)(tt)(p)", re.IGNORECASE)
_WWW_RE = re.compile(r"(w)(w)(w)\.", re.IGNORECASE)
_MAILTO_RE = re.compile(r"\b(mailto|javascript|data|file|ftp|tel|sms):", re.IGNORECASE)
_ANGLE_RE = re.compile(r"[<>]")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+")
#: A bare domain followed by a path, query, fragment or port, starting a word (see above).
_DOMAIN_PATH_RE = re.compile(
    r"(?:(?<=//)|(?<![\w@.\-/]))"
    r"((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)++)"  # possessive: no backtracking, linear
    r"([a-z]{2,63}|xn--[a-z0-9-]{1,59})"
    r"(?=(?::\d{1,5})?[/?#])",
    re.IGNORECASE,
)


class TrustedText(str):
    """Operator-configured text that :func:`defang` leaves as it is (the admin center's address).

    Still autoescaped in HTML; only the link-defusing is skipped, because the
    reader is asked to type this address and ``[.]`` would make it wrong.
    """

    __slots__ = ()


def defang(value: Any) -> Any:
    """Make text that looks like a link inert; non-strings pass through unchanged."""
    if not isinstance(value, str) or isinstance(value, TrustedText):
        return value
    text = _SCHEME_RE.sub(r"\1[:]\2", value)
    text = _MAILTO_RE.sub(r"\1[:]", text)
    text = _HTTP_RE.sub(
        lambda m: m.group(1) + ("XX" if m.group(2).isupper() else "xx") + m.group(3), text
    )
    text = _WWW_RE.sub(r"\1\2\3[.]", text)
    text = _DOMAIN_PATH_RE.sub(lambda m: m.group(1)[:-1] + "[.]" + m.group(2), text)
    return _ANGLE_RE.sub(lambda m: "‹" if m.group(0) == "<" else "›", text)


def one_line(value: str, max_len: int = 200) -> str:
    """A header-safe single line: control characters (CR, LF …) collapse to spaces."""
    cleaned = " ".join(_CONTROL_RE.sub(" ", value).split())
    return cleaned if len(cleaned) <= max_len else cleaned[: max_len - 1] + "…"


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def utc_text(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else None


def relative(value: datetime | None, now: datetime) -> str | None:
    """``in 3 hours`` / ``20 minutes ago``, relative to ``now`` (the time of sending)."""
    if value is None:
        return None
    seconds = (value - now).total_seconds()
    if abs(seconds) < 60:
        return "now"
    minutes = round(abs(seconds) / 60)
    if minutes < 60:
        span = _plural(minutes, "minute")
    elif minutes < 48 * 60:
        hours, rest = divmod(minutes, 60)
        span = _plural(hours, "hour") + (f" {_plural(rest, 'minute')}" if rest else "")
    else:
        days, rest = divmod(round(minutes / 60), 24)
        span = _plural(days, "day") + (f" {_plural(rest, 'hour')}" if rest else "")
    return f"in {span}" if seconds > 0 else f"{span} ago"


def _duration(seconds: object) -> str:
    """``5400`` → ``1 hour 30 minutes`` (an extension asked for)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
        return ""
    hours, minutes = divmod(seconds // 60, 60)
    parts = [_plural(hours, "hour")] if hours else []
    if minutes or not parts:
        parts.append(_plural(minutes, "minute"))
    return " ".join(parts)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        finalize=defang,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def topics() -> list[str]:
    """Every topic that has both a text and an HTML template."""
    names = {p.stem for p in TEMPLATES.glob("*.txt") if not p.stem.startswith("_")}
    return sorted(n for n in names if (TEMPLATES / f"{n}.html").exists())


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def context(
    payload: dict[str, Any],
    now: datetime,
    *,
    provider_name: str = "Your provider",
    admin_address: str | None = None,
) -> dict[str, Any]:
    """Template variables: the payload snapshot plus times spelt for people.

    ``provider_name`` is the provider's own name ("Acme Cloud's support engineer
    asks…"); ``admin_address`` the admin center's address, shown as text to type,
    without a scheme, so no mail client turns it into a link.
    """
    deadline = parse_time(payload.get("deadline"))
    access_deadline = parse_time(payload.get("access_deadline"))
    at = parse_time(payload.get("at"))
    resources = payload.get("resources") or []
    return {
        "provider_name": provider_name,
        "admin_address": plain_address(admin_address),
        "request_id": payload.get("request_id", ""),
        "state": payload.get("state", ""),
        "tenant_name": payload.get("tenant_name") or payload.get("tenant_id", ""),
        "tenant_id": payload.get("tenant_id", ""),
        "case_id": payload.get("case_id", ""),
        "case_title": payload.get("case_title") or "",
        "case_reference": payload.get("case_reference"),
        "requester": payload.get("requester") or "",
        "resources": [str(r) for r in resources],
        "access_level": payload.get("access_level", ""),
        "justification": payload.get("justification") or "",
        "actor": payload.get("actor"),
        "comment": payload.get("comment"),
        "required_approvals": payload.get("required_approvals", 1),
        # approved by one of the customer's auto-approval rules (its name), not a person
        "rule_name": payload.get("rule_name") if payload.get("approved_by_rule") else None,
        # an approver granted less than was asked
        "asked_resources": [str(r) for r in payload.get("asked_resources") or []],
        "asked_access_level": payload.get("asked_access_level"),
        # an extension
        "extension_text": _duration(payload.get("extension_seconds")),
        "extension_reason": payload.get("extension_reason") or "",
        "approvals": payload.get("approvals", 0),
        "deadline_utc": utc_text(deadline),
        "deadline_relative": relative(deadline, now),
        "access_deadline_utc": utc_text(access_deadline),
        "access_deadline_relative": relative(access_deadline, now),
        "at_utc": utc_text(at),
        "at_relative": relative(at, now),
        "now_utc": utc_text(now),
        # password_reset
        "code": payload.get("secret_code", ""),
        "user_name": payload.get("user_name") or "",
        "expires_utc": utc_text(parse_time(payload.get("expires_at"))),
        "expires_relative": relative(parse_time(payload.get("expires_at")), now),
        # audit_digest: a chain's signed head (sequence number and hash only)
        "audit_seq": payload.get("audit_seq", ""),
        "audit_hash": payload.get("audit_hash", ""),
        "audit_kid": payload.get("audit_kid", ""),
    }


def plain_address(value: str | None) -> TrustedText | None:
    """``https://lockbox.acme.example/`` → ``lockbox.acme.example``: text to type, not a link.

    Marked :class:`TrustedText`: the operator configured it, and defanging it
    (``acme[.]example/lockbox``) would make the address people must type wrong.
    """
    if not value:
        return None
    text = re.sub(r"^[a-z][a-z0-9+.\-]*://", "", value.strip(), flags=re.IGNORECASE)
    text = _CONTROL_RE.sub("", text).rstrip("/")
    return TrustedText(text) if text else None


def render(
    topic: str,
    payload: dict[str, Any],
    now: datetime,
    *,
    provider_name: str = "Your provider",
    admin_address: str | None = None,
) -> Rendered:
    """Subject, text and HTML for one outbox payload, as of ``now`` (the time of sending)."""
    if topic not in topics():
        raise KeyError(f"no template for topic {topic!r}")
    env = environment()
    variables = context(payload, now, provider_name=provider_name, admin_address=admin_address)
    text_template = env.get_template(f"{topic}.txt")
    subject = one_line(_block(text_template, "subject", variables))
    return Rendered(
        subject=subject,
        text=text_template.render(variables),
        html=env.get_template(f"{topic}.html").render(variables),
    )


def _block(template: Template, name: str, variables: dict[str, Any]) -> str:
    return "".join(template.blocks[name](template.new_context(variables)))


class InvalidAddress(ValueError):
    """A recipient or sender address that cannot be used in a header."""


def address(value: str) -> Address:
    """Parse and validate one address (``Name <a@b>`` or ``a@b``); no CR/LF, one ``@``."""
    if not isinstance(value, str) or _CONTROL_RE.search(value) or len(value) > 320:
        raise InvalidAddress("address contains control characters or is too long")
    from email.headerregistry import AddressHeader

    try:
        parsed = AddressHeader.value_parser(value)
        mailboxes = parsed.all_mailboxes
    except Exception as exc:  # the parser raises assorted errors on garbage
        raise InvalidAddress(f"unparseable address {value!r}") from exc
    if len(mailboxes) != 1 or parsed.all_defects or mailboxes[0].all_defects:
        raise InvalidAddress(f"not a single valid address: {value!r}")
    box = mailboxes[0]
    local, domain = box.local_part or "", box.domain or ""
    if not local or not domain or "." not in domain.strip("."):
        raise InvalidAddress(f"not a valid address: {value!r}")
    return Address(display_name=box.display_name or "", username=local, domain=domain)


def message_id(row_id: str, domain: str) -> str:
    """The stable ``Message-ID`` of an outbox row: a resend carries the same one."""
    return f"<{row_id}@{domain}>"


def build_email(
    *,
    row_id: str,
    recipient: str,
    sender: str,
    rendered: Rendered,
    now: datetime,
    domain: str = "lockbox",
) -> EmailMessage:
    """A multipart/alternative message; headers are built by the ``email`` package, never by hand."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = address(sender)
    msg["To"] = address(recipient)
    msg["Subject"] = one_line(rendered.subject)
    msg["Date"] = format_datetime(now.astimezone(UTC))
    msg["Message-ID"] = message_id(row_id, domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Lockbox-Outbox-Id"] = row_id
    msg.set_content(rendered.text, subtype="plain", charset="utf-8")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8")
    return msg
