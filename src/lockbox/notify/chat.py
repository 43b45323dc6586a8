"""Chat messages for Slack and Microsoft Teams incoming webhooks: the same events, no links.

A webhook endpoint registered with the ``slack`` or ``teams`` format receives
the event it subscribed to as a message a person reads in a channel, instead
of the signed JSON a program reads. Both are built here, by pure functions,
from the outbox payload every webhook gets (``{"type", "timestamp", "data"}``,
``data`` being the request snapshot the e-mails are rendered from), so a new
event type reaches every format at once (unknown types get a generic message).

**No links, like the e-mails.** A message says what happened (request,
engineer, tenant, case, resources, access level, deadline, state) and tells
the reader to sign in to the Lockbox admin center *themselves*: it carries no
URL, no button and no action, and not even the admin center's address (a chat
client would make it clickable). Every value from the payload is untrusted
(a justification, a case title, a name may hold ``<!channel>``,
``[approve](http://evil)`` or ``<http://evil|click>``) and goes through
:func:`inert` before it is formatted:

1. :func:`lockbox.notify.render.defang`, the e-mails' rules: ``http`` → ``hxxp``,
   ``scheme://`` → ``scheme[:]//``, ``www.`` → ``www[.]``, ``<``/``>`` →
   ``‹``/``›`` (so no ``<…>`` token of Slack and no ``<at>`` or HTML of Teams
   survives), a domain with a path gets ``[.]``;
2. stricter than e-mail, because Slack and Teams turn a *bare* domain
   (``evil.example``) or address into a link too: every dot that introduces a
   name label (a letter and at least one more character: ``contoso.com``,
   ``alice@contoso.com``, ``file.txt``) and every dot of a dotted IPv4 address
   is written ``[.]`` (``e.g.``, ``1.5`` and ``v2.0`` stay as they are).

Then each format escapes what its own markup needs:

* **Slack** (``mrkdwn``): ``&``, ``<`` and ``>`` as ``&amp;``, ``&lt;``,
  ``&gt;``, as Slack requires, so nothing can form a link, a user, channel or
  group mention, or a special mention (``<!channel>``); a word joiner (U+2060)
  follows the ``@`` of ``@channel``, ``@here`` and ``@everyone`` in case a
  workspace resolves plain-text mentions. The header block is ``plain_text``.
* **Teams** (Adaptive Card ``TextBlock`` / ``FactSet`` Markdown): ``[`` and
  ``]`` become the full-width ``［`` and ``］``, so no ``[text](url)`` link
  can be formed whatever the client's Markdown parser (a backslash escape is
  not honoured by every Teams client, and a zero-width character could be
  stripped); line breaks are doubled (Markdown needs a blank line).

Values Lockbox itself spells (event types, the fixed sentences) are
:class:`~lockbox.notify.render.TrustedText` and skip step 2 (``request.approve``
stays readable); they are still escaped.

Limits are kept here, not left to the receiver: Slack's header text at most
150 characters and each ``section`` text at most 3000 (counted in UTF-16 code
units, as Slack counts), at most :data:`MAX_RESOURCES_SHOWN` resources listed
(the rest counted), and long text shortened with a note to read it in full in
the admin center, which also keeps a Teams card well under its 28 KB.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lockbox.notify.render import TrustedText, context, defang, parse_time, utc_text

SLACK = "slack"
TEAMS = "teams"
#: The chat formats this module renders (``standard`` is the signed JSON of :mod:`.webhooks`).
CHAT_FORMATS = (SLACK, TEAMS)

SLACK_HEADER_MAX = 150
SLACK_TEXT_MAX = 3000
#: A TextBlock has no documented limit; this keeps one field of a card readable and small.
TEAMS_TEXT_MAX = 3000
MAX_RESOURCES_SHOWN = 10
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_VERSION = "1.4"
ADAPTIVE_CARD_TYPE = "application/vnd.microsoft.card.adaptive"

ELLIPSIS = "…"
SHORTENED = TrustedText(" (shortened: read it in full in the Lockbox admin center)")
NO_LINKS = TrustedText(
    "This message contains no links, on purpose. Sign in to the Lockbox admin center "
    "yourself, using the address you always use. Never trust a message that asks you to "
    "follow a link to approve access."
)

#: A dot that introduces a name label: a letter and one more character follow it.
_NAME_DOT_RE = re.compile(r"(?<=[\w\-])[.\u3002\uff0e\uff61](?=[^\W\d_][\w\-])")
#: A dotted IPv4 address (its dots are all broken).
_IPV4_RE = re.compile(r"(?<![\w.])\d{1,3}(?:[.\u3002\uff0e\uff61]\d{1,3}){3}(?![\w])")
_ANY_DOT_RE = re.compile(r"[.\u3002\uff0e\uff61]")
_SLACK_MENTION_RE = re.compile(r"@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)
_NEWLINES_RE = re.compile(r"\r\n?|\n")
_BLANK_RUNS_RE = re.compile(r"\n{3,}")

STATE_WORDS = {
    "pending_review": "Pending review by the provider",
    "pending_approval": "Waiting for the customer's approval",
    "approved": "Approved: access is active",
    "rejected": "Rejected in review",
    "denied": "Denied",
    "canceled": "Canceled",
    "expired": "Expired",
    "closed": "Closed",
    "revoked": "Revoked",
    "access_ended": "Access ended",
}
LEVEL_WORDS = {"read": "Read only", "read_write": "Read and write"}


# -- neutralising untrusted text ----------------------------------------------------------


def inert(value: object) -> str:
    """``value`` as text that no chat client turns into a link (see the module docstring).

    :class:`TrustedText` (Lockbox's own words) passes unchanged.
    """
    text = "" if value is None else str(value)
    if isinstance(value, TrustedText):
        return text
    text = defang(text)
    text = _IPV4_RE.sub(lambda m: _ANY_DOT_RE.sub("[.]", m.group(0)), text)
    return _NAME_DOT_RE.sub("[.]", text)


def slack_escape(value: object) -> str:
    """Inert text for Slack ``mrkdwn``: ``&``, ``<`` and ``>`` escaped as Slack requires."""
    text = inert(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SLACK_MENTION_RE.sub("@\u2060", text)


def slack_plain(value: object) -> str:
    """Inert text for a Slack ``plain_text`` object (not parsed for markup)."""
    return _SLACK_MENTION_RE.sub("@\u2060", inert(value))


def teams_escape(value: object) -> str:
    """Inert text for Adaptive Card Markdown, where no ``[text](url)`` link can form.

    The text's own ``[`` and ``]`` become full-width before :func:`inert`; what is left
    are the ``[.]`` and ``[:]`` that :func:`inert` wrote, and a ``](`` among them (from
    ``www.(…)``) loses its ``]`` too.
    """
    raw = "" if value is None else str(value)
    brackets = raw.replace("[", "［").replace("]", "］")
    text = inert(TrustedText(brackets) if isinstance(value, TrustedText) else brackets)
    text = text.replace("](", "］(")
    return _BLANK_RUNS_RE.sub("\n\n", _NEWLINES_RE.sub("\n\n", text))


def one_line(value: object) -> str:
    """Whitespace (line breaks included) collapsed; Lockbox's own words stay trusted."""
    text = " ".join(("" if value is None else str(value)).split())
    return TrustedText(text) if isinstance(value, TrustedText) else text


def utf16_len(text: str) -> int:
    """Length as Slack and JavaScript count it (an emoji outside the BMP counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int, suffix: str = ELLIPSIS) -> str:
    """``text`` cut to at most ``limit`` UTF-16 units, ending in ``suffix`` if it was cut.

    Never cuts inside an HTML entity (``&amp;``) that :func:`slack_escape` wrote.
    """
    if utf16_len(text) <= limit:
        return text
    budget = limit - utf16_len(suffix)
    units, cut = 0, text
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > budget:
            cut = text[:index]
            break
    amp = cut.rfind("&", max(0, len(cut) - 5))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut.rstrip() + suffix


# -- what a message says -------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """What one event says, in words, before any format's markup: values are untrusted
    unless :class:`TrustedText`."""

    headline: str
    summary: str
    facts: list[tuple[str, str]]
    action: str
    resources: list[str] = field(default_factory=list)
    more_resources: int = 0
    justification: str | None = None
    comment: str | None = None


_Words = Callable[[dict[str, Any]], tuple[str, str, str | None]]


def _decide_by(c: dict[str, Any]) -> str:
    return f" before {c['deadline_utc']} ({c['deadline_relative']})" if c["deadline_utc"] else ""


def _signin(c: dict[str, Any], verb: str = "see") -> str:
    return f"Sign in to the Lockbox admin center yourself to {verb} request {c['request_id']}."


def _submit(c: dict[str, Any]) -> tuple[str, str, str | None]:
    return (
        f"Access requested: {c['tenant_name']}",
        f"{c['provider_name']}'s support engineer {c['requester']} asks for access to "
        f"{c['tenant_name']}'s content. A support manager reviews the request first.",
        None,
    )


def _review_approve(c: dict[str, Any]) -> tuple[str, str, str | None]:
    if c["state"] == "approved" and c.get("rule_name"):
        return (
            f"Access approved by a rule: {c['tenant_name']}",
            f"{c['actor'] or 'A support manager'} forwarded the request of {c['requester']}; "
            f"{c['tenant_name']}'s auto-approval rule “{c['rule_name']}” approved it.",
            "Nothing is needed if this was expected. If it was not, sign in to the Lockbox admin "
            f"center yourself and revoke request {c['request_id']}; access ends at once.",
        )
    if c["state"] == "approved":
        return (
            f"Access approved: {c['tenant_name']}",
            f"{c['actor'] or 'A support manager'} approved the request of {c['requester']}; "
            f"{c['tenant_name']} does not use the lockbox, so no customer approval is needed.",
            None,
        )
    extra = (
        f" {c['required_approvals']} distinct approvals are required."
        if c["required_approvals"] > 1
        else ""
    )
    return (
        f"Approval needed: support access to {c['tenant_name']}",
        f"{c['provider_name']}'s support engineer {c['requester']} asks for access to "
        f"{c['tenant_name']}'s content; support manager {c['actor'] or ''} forwarded the "
        "request to its approvers.",
        f"Approvers: sign in to the Lockbox admin center yourself and approve or deny request "
        f"{c['request_id']}{_decide_by(c)}; if nobody decides by then it expires and no access "
        f"is granted.{extra} If you do not recognise the support case, deny it.",
    )


def _approve(c: dict[str, Any]) -> tuple[str, str, str | None]:
    if c["state"] != "approved":
        return (
            f"Approval recorded ({c['approvals']} of {c['required_approvals']}): "
            f"{c['tenant_name']}",
            f"{c['actor'] or 'An approver'} approved; the request needs "
            f"{c['required_approvals']} distinct approvals before access is granted.",
            f"The other approvers: sign in to the Lockbox admin center yourself and approve or "
            f"deny request {c['request_id']}{_decide_by(c)}.",
        )
    until = (
        f" until {c['access_deadline_utc']} ({c['access_deadline_relative']})"
        if c["access_deadline_utc"]
        else ""
    )
    return (
        f"Access approved: {c['tenant_name']}",
        f"{c['actor'] or 'The approver'} approved; {c['requester']} may use the access{until}.",
        "Nothing is needed if this was expected. If it was not, sign in to the Lockbox admin "
        f"center yourself and revoke request {c['request_id']}; access ends at once.",
    )


def _simple(headline: str, summary: str, action: str | None = None) -> _Words:
    def words(c: dict[str, Any]) -> tuple[str, str, str | None]:
        actor = c["actor"] or "Lockbox"
        return (
            headline.format(tenant=c["tenant_name"]),
            summary.format(actor=actor, requester=c["requester"], tenant=c["tenant_name"]),
            action.format(request=c["request_id"]) if action else None,
        )

    return words


_EVENTS: dict[str, _Words] = {
    "request.submit": _submit,
    "request.review_approve": _review_approve,
    "request.review_reject": _simple(
        "Request rejected in review: {tenant}",
        "{actor} rejected the request of {requester} in review; no access is granted.",
    ),
    "request.approve": _approve,
    "request.deny": _simple(
        "Access denied: {tenant}", "{actor} denied the request; no access is granted."
    ),
    "request.cancel": _simple(
        "Request canceled: {tenant}",
        "{actor} canceled the request; nobody needs to decide on it any more.",
    ),
    "request.expire": _simple(
        "Request expired: {tenant}",
        "Nobody decided on the request in time; no access is granted.",
    ),
    "request.close": _simple(
        "Request closed, access ended: {tenant}",
        "{actor} closed the request; any access it granted has ended.",
    ),
    "request.revoke": _simple(
        "Access revoked: {tenant}", "{actor} revoked the access; it ended at once."
    ),
    "request.end_access": _simple(
        "Access ended: {tenant}", "The access window is over; the access has ended."
    ),
    "request.case_closed": _simple(
        "Support case closed, access ended: {tenant}",
        "The support case was closed, so the request is closed and its access has ended.",
    ),
    "request.first_use": _simple(
        "Access used for the first time: {tenant}",
        "{requester} used the approved access for the first time.",
        "Nothing is needed if this was expected. If it was not, sign in to the Lockbox admin "
        "center yourself and revoke request {request}; access ends at once.",
    ),
}


def notice(payload: dict[str, Any], now: datetime, *, provider_name: str) -> Notice:
    """What the webhook payload ``payload`` says, as of ``now`` (the time of sending)."""
    event_type = str(payload.get("type") or "")
    data = payload.get("data")
    data = data if isinstance(data, dict) else {}
    if event_type == "audit.checkpoint" or "checkpoint" in data:
        return _checkpoint_notice(event_type, data)
    c = context(data, now, provider_name=provider_name)
    c["tenant_name"] = str(c["tenant_name"] or "")
    words = _EVENTS.get(event_type)
    if words is not None:
        headline, summary, action = words(c)
    else:
        headline = f"Lockbox: {c['tenant_name']}"
        summary = f"Request {c['request_id']} changed; it is now {_state(c['state'])}."
        action = None
    resources = [str(r) for r in c["resources"]]
    return Notice(
        headline=headline,
        summary=summary,
        facts=_facts(c, event_type),
        action=action or _signin(c),
        resources=resources[:MAX_RESOURCES_SHOWN],
        more_resources=max(0, len(resources) - MAX_RESOURCES_SHOWN),
        justification=c["justification"] or None,
        comment=c["comment"] or None,
    )


def _state(state: object) -> str:
    return STATE_WORDS.get(str(state), str(state).replace("_", " "))


def _facts(c: dict[str, Any], event_type: str) -> list[tuple[str, str]]:
    case = c["case_title"] or ""
    case_ids = ", ".join(
        str(part)
        for part in (c["case_id"], c["case_reference"] and f"reference {c['case_reference']}")
        if part
    )
    facts: list[tuple[str, str]] = [
        ("Request", c["request_id"]),
        ("State", _state(c["state"])),
        ("Tenant", c["tenant_name"]),
        ("Support case", f"{case} ({case_ids})" if case_ids else case),
        ("Requested by", c["requester"]),
        ("Access level", LEVEL_WORDS.get(c["access_level"], c["access_level"])),
    ]
    if c["state"] in ("pending_review", "pending_approval") and c["deadline_utc"]:
        facts.append(("Decide by", f"{c['deadline_utc']} ({c['deadline_relative']})"))
    elif c["state"] == "approved" and c["access_deadline_utc"]:
        until = f"{c['access_deadline_utc']} ({c['access_deadline_relative']})"
        facts.append(("Access until", until))
    if c["actor"]:
        at = f" at {c['at_utc']}" if c["at_utc"] else ""
        facts.append(("Action by", f"{c['actor']}{at}"))
    if event_type:
        facts.append(("Event", TrustedText(event_type)))
    return [(label, value) for label, value in facts if value not in (None, "")]


def _checkpoint_notice(event_type: str, data: dict[str, Any]) -> Notice:
    document = data.get("checkpoint")
    document = document if isinstance(document, dict) else {}
    statement = document.get("checkpoint")
    statement = statement if isinstance(statement, dict) else {}
    chain = str(statement.get("tenant") or data.get("tenant_id") or "")
    signed = utc_text(parse_time(statement.get("at"))) or ""
    facts = [
        ("Audit log", chain),
        ("Entries", str(statement.get("seq", ""))),
        ("Head hash", str(statement.get("hash", ""))),
        ("Signed at", signed),
        ("Signing key", str(statement.get("kid") or document.get("kid") or "")),
        ("Event", TrustedText(event_type or "audit.checkpoint")),
    ]
    return Notice(
        headline="Audit log checkpoint signed",
        summary=(
            f"Lockbox signed the head of the audit log of {chain}. Keeping this record lets you "
            "check later that the log was not rewritten."
        ),
        facts=[(label, value) for label, value in facts if value],
        action=(
            "Nothing to do. To verify the audit log, sign in to the Lockbox admin center "
            "yourself; a standard webhook receives the signed document itself."
        ),
    )


# -- Slack ------------------------------------------------------------------------------------


def _slack_section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": fit(text, SLACK_TEXT_MAX)}}


def _packed(heading: str, lines: list[str]) -> list[str]:
    """``heading`` and ``lines`` in as few section texts as the 3000-unit limit allows."""
    texts = [heading]
    for line in lines:
        if utf16_len(texts[-1]) + 1 + utf16_len(line) <= SLACK_TEXT_MAX:
            texts[-1] += "\n" + line
        else:
            texts.append(line)
    return texts


def _slack_long(label: str, value: str) -> dict[str, Any]:
    head = f"*{slack_escape(label)}:*\n"
    body = slack_escape(value)
    budget = SLACK_TEXT_MAX - utf16_len(head)
    return _slack_section(head + fit(body, budget, ELLIPSIS + slack_escape(SHORTENED)))


def slack_message(
    payload: dict[str, Any], now: datetime, *, provider_name: str = "Your provider"
) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (the notification fallback) and ``blocks``."""
    n = notice(payload, now, provider_name=provider_name)
    facts = "\n".join(
        f"*{slack_escape(label)}:* {slack_escape(one_line(v))}" for label, v in n.facts
    )
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": fit(slack_plain(one_line(n.headline)), SLACK_HEADER_MAX),
                "emoji": False,
            },
        },
        _slack_section(slack_escape(n.summary)),
        _slack_section(facts),
    ]
    if n.resources:
        lines = [f"• `{slack_escape(r).replace('`', 'ˋ')}`" for r in n.resources]
        if n.more_resources:
            lines.append(f"… and {n.more_resources} more (see the Lockbox admin center)")
        blocks += [_slack_section(text) for text in _packed("*Resources:*", lines)]
    if n.justification:
        blocks.append(_slack_long("Justification", n.justification))
    if n.comment:
        blocks.append(_slack_long("Comment", n.comment))
    blocks.append(
        _slack_section(f"*What to do:* {slack_escape(n.action)}\n\n_{slack_escape(NO_LINKS)}_")
    )
    fallback = f"{one_line(n.headline)}. {one_line(n.summary)} {n.action}"
    return {"text": fit(slack_escape(fallback), SLACK_TEXT_MAX), "blocks": blocks}


# -- Microsoft Teams ----------------------------------------------------------------------------


def _text_block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _teams_long(value: str) -> str:
    return fit(teams_escape(value), TEAMS_TEXT_MAX, ELLIPSIS + teams_escape(SHORTENED))


def teams_message(
    payload: dict[str, Any], now: datetime, *, provider_name: str = "Your provider"
) -> dict[str, Any]:
    """A Teams incoming-webhook (Workflows) message: one Adaptive Card 1.4, no actions."""
    n = notice(payload, now, provider_name=provider_name)
    body: list[dict[str, Any]] = [
        _text_block(teams_escape(one_line(n.headline)), size="Large", weight="Bolder"),
        _text_block(_teams_long(n.summary)),
        {
            "type": "FactSet",
            "facts": [
                {"title": teams_escape(label), "value": teams_escape(one_line(value))}
                for label, value in n.facts
            ],
        },
    ]
    if n.resources:
        items = [f"- {teams_escape(r)}" for r in n.resources]
        if n.more_resources:
            items.append(f"- … and {n.more_resources} more (see the Lockbox admin center)")
        body.append(_text_block("Resources", weight="Bolder", spacing="Medium"))
        body.append(_text_block("\n".join(items), spacing="Small"))
    if n.justification:
        body.append(_text_block("Justification", weight="Bolder", spacing="Medium"))
        body.append(_text_block(_teams_long(n.justification), spacing="Small"))
    if n.comment:
        body.append(_text_block("Comment", weight="Bolder", spacing="Medium"))
        body.append(_text_block(_teams_long(n.comment), spacing="Small"))
    body.append(_text_block("What to do", weight="Bolder", spacing="Medium"))
    body.append(_text_block(_teams_long(n.action), spacing="Small"))
    body.append(_text_block(teams_escape(NO_LINKS), isSubtle=True, size="Small"))
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": ADAPTIVE_CARD_TYPE,
                "contentUrl": None,
                "content": {
                    "$schema": ADAPTIVE_CARD_SCHEMA,
                    "type": "AdaptiveCard",
                    "version": ADAPTIVE_CARD_VERSION,
                    "body": body,
                },
            }
        ],
    }


RENDERERS: dict[str, Callable[..., dict[str, Any]]] = {
    SLACK: slack_message,
    TEAMS: teams_message,
}


def render(
    fmt: str, payload: dict[str, Any], now: datetime, *, provider_name: str = "Your provider"
) -> dict[str, Any]:
    """The message of chat format ``fmt`` for one webhook payload; KeyError for another format."""
    return RENDERERS[fmt](payload, now, provider_name=provider_name)
