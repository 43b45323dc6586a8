"""Slack and Microsoft Teams webhooks: their message formats, the no-link rule, delivery
through the outbox worker, and their URLs (the only secret they have) masked wherever shown.

The payloads are checked against small JSON Schemas of exactly the subset Lockbox uses
(Slack Block Kit ``header`` + ``section`` with ``mrkdwn``; an Adaptive Card 1.4 of
``TextBlock`` and ``FactSet``, with no actions), and against the limits the services
document: a header at most 150 characters, a section text at most 3000.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from lockbox.api.app import create_app
from lockbox.cli.main import app as cli
from lockbox.domain.errors import ValidationError
from lockbox.notify import chat
from lockbox.notify.dispatcher import Dispatcher
from lockbox.notify.webhooks import WebhookError, build_request
from lockbox.sdk.webhooks import verify
from lockbox.service import audit, outbox, requests, tokens, webhooks
from lockbox.service.webhooks import DestinationPolicy, DestinationRefused, display_url
from tests.conftest import World
from tests.notify.helpers import MAILBOX, WebhookReceiver, rows, smtp_settings, submit

HOSTILE = "<!channel> [x](http://evil) <http://evil|click>"
#: Every way text could become a link or a mention, in one justification.
HOSTILE_TEXT = (
    f"{HOSTILE} <@U012AB3CD> <#C123|general> <!subteam^S1> @channel @here "
    "<at>Everyone</at> see evil.example and evil.example/approve and www.evil.example "
    "HTTPS://EVIL.EXAMPLE/x mailto:boss@evil.example javascript:alert(1) "
    "[click](https://evil.example) [ref][1] 10.0.0.1/admin evil.com.net sub.evil.co "
    "ｅvil．example wwww.(x) & &amp; > quoted"
)
NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


# -- the documented formats, as JSON Schemas of the subset Lockbox sends ----------------------

SLACK_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Slack incoming-webhook message (Block Kit subset used by Lockbox)",
    "type": "object",
    "required": ["text", "blocks"],
    "additionalProperties": False,
    "properties": {
        # The notification / fallback text; Slack truncates beyond 40,000 characters.
        "text": {"type": "string", "minLength": 1, "maxLength": 40000},
        "blocks": {
            "type": "array",
            "minItems": 2,
            "maxItems": 50,
            "prefixItems": [{"$ref": "#/$defs/header"}],
            "items": {"oneOf": [{"$ref": "#/$defs/header"}, {"$ref": "#/$defs/section"}]},
        },
    },
    "$defs": {
        "header": {
            "type": "object",
            "required": ["type", "text"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": "header"},
                "text": {
                    "type": "object",
                    "required": ["type", "text"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {"const": "plain_text"},
                        "text": {"type": "string", "minLength": 1, "maxLength": 150},
                        "emoji": {"type": "boolean"},
                    },
                },
                "block_id": {"type": "string", "maxLength": 255},
            },
        },
        "section": {
            "type": "object",
            "required": ["type", "text"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": "section"},
                "text": {
                    "type": "object",
                    "required": ["type", "text"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {"const": "mrkdwn"},
                        "text": {"type": "string", "minLength": 1, "maxLength": 3000},
                        "verbatim": {"type": "boolean"},
                    },
                },
                "block_id": {"type": "string", "maxLength": 255},
            },
        },
    },
}

_SPACING = ["None", "Small", "Default", "Medium", "Large", "ExtraLarge", "Padding"]
TEAMS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Teams incoming-webhook message with one Adaptive Card 1.4 (subset used)",
    "type": "object",
    "required": ["type", "attachments"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "message"},
        "attachments": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1,
            "items": {
                "type": "object",
                "required": ["contentType", "contentUrl", "content"],
                "additionalProperties": False,
                "properties": {
                    "contentType": {"const": "application/vnd.microsoft.card.adaptive"},
                    "contentUrl": {"type": "null"},
                    "content": {"$ref": "#/$defs/card"},
                },
            },
        },
    },
    "$defs": {
        # No "actions", no "selectAction", no Image, no ActionSet: nothing to click.
        "card": {
            "type": "object",
            "required": ["$schema", "type", "version", "body"],
            "additionalProperties": False,
            "properties": {
                "$schema": {"const": "http://adaptivecards.io/schemas/adaptive-card.json"},
                "type": {"const": "AdaptiveCard"},
                "version": {"const": "1.4"},
                "body": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "oneOf": [{"$ref": "#/$defs/TextBlock"}, {"$ref": "#/$defs/FactSet"}]
                    },
                },
            },
        },
        "TextBlock": {
            "type": "object",
            "required": ["type", "text"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": "TextBlock"},
                "text": {"type": "string", "minLength": 1},
                "wrap": {"type": "boolean"},
                "size": {"enum": ["Default", "Small", "Medium", "Large", "ExtraLarge"]},
                "weight": {"enum": ["Default", "Lighter", "Bolder"]},
                "isSubtle": {"type": "boolean"},
                "spacing": {"enum": _SPACING},
                "separator": {"type": "boolean"},
            },
        },
        "FactSet": {
            "type": "object",
            "required": ["type", "facts"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": "FactSet"},
                "facts": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["title", "value"],
                        "additionalProperties": False,
                        "properties": {
                            "title": {"type": "string", "minLength": 1},
                            "value": {"type": "string", "minLength": 1},
                        },
                    },
                },
                "spacing": {"enum": _SPACING},
                "separator": {"type": "boolean"},
            },
        },
    },
}
SCHEMAS = {"slack": SLACK_SCHEMA, "teams": TEAMS_SCHEMA}


def _validator() -> tuple[Callable[[dict[str, Any], Any], None], type[Exception]]:
    """``jsonschema`` if installed, else ``jsonschema_rs`` (which schemathesis brings)."""
    try:
        import jsonschema
    except ImportError:
        rs = pytest.importorskip("jsonschema_rs")

        def check_rs(schema: dict[str, Any], instance: Any) -> None:
            rs.meta.validate(schema)
            rs.Draft202012Validator(schema).validate(instance)

        return check_rs, rs.ValidationError

    def check(schema: dict[str, Any], instance: Any) -> None:
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.Draft202012Validator(schema).validate(instance)

    return check, jsonschema.ValidationError


def validate(schema: dict[str, Any], instance: Any) -> None:
    _validator()[0](schema, instance)


def test_the_schemas_refuse_what_lockbox_must_not_send() -> None:
    """The schemas have teeth: a link button, an over-long header, a missing fallback."""
    good = chat.slack_message(payload("request.submit"), NOW)
    validate(SLACK_SCHEMA, good)
    bad_slack = [
        {**good, "text": ""},
        {"blocks": good["blocks"]},
        {**good, "blocks": [*good["blocks"], {"type": "actions", "elements": []}]},
        {**good, "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]},
        {**good, "blocks": [good["blocks"][0], _section("x" * 3001)]},
    ]
    card = chat.teams_message(payload("request.submit"), NOW)
    validate(TEAMS_SCHEMA, card)
    content = card["attachments"][0]["content"]
    link = {"type": "Action.OpenUrl", "title": "Approve", "url": "https://evil.example"}
    bad_teams = [
        _with_content(card, {**content, "actions": [link]}),
        _with_content(card, {**content, "version": "1.5"}),
        _with_content(card, {**content, "selectAction": link}),
        _with_content(card, {**content, "body": [{"type": "ActionSet", "actions": [link]}]}),
    ]
    invalid = _validator()[1]
    for schema, instances in ((SLACK_SCHEMA, bad_slack), (TEAMS_SCHEMA, bad_teams)):
        for instance in instances:
            with pytest.raises(invalid):
                validate(schema, instance)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _with_content(card: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
    return {**card, "attachments": [{**card["attachments"][0], "content": content}]}


# -- payloads -----------------------------------------------------------------------------------


def payload(event_type: str, **data: Any) -> dict[str, Any]:
    """A webhook payload as ``service.notifications`` queues it (a request snapshot)."""
    snapshot: dict[str, Any] = {
        "request_id": "req_01JABCDEFGHJKMNPQRSTVWXYZ0",
        "state": "pending_approval",
        "tenant_id": "ten_01JABCDEFGHJKMNPQRSTVWXYZ0",
        "tenant_name": "Contoso Ltd",
        "case_id": "cas_01JABCDEFGHJKMNPQRSTVWXYZ0",
        "case_title": "Alice's mailbox does not sync",
        "case_reference": "INC-4711",
        "requester": "Erin Engineer",
        "requester_email": "erin@provider.example",
        "resources": [MAILBOX],
        "access_level": "read",
        "justification": "Inspect the sync state of Alice's mailbox",
        "deadline": "2026-01-05T21:00:00.000000Z",
        "access_deadline": None,
        "required_approvals": 1,
        "approvals": 0,
        "at": "2026-01-05T09:00:00.000000Z",
        "event": event_type.removeprefix("request."),
        "actor": "Mark Manager",
        "actor_kind": "user",
        "comment": None,
    }
    snapshot.update(data)
    return {"type": event_type, "timestamp": "2026-01-05T09:00:00.000000Z", "data": snapshot}


def hostile_payload(event_type: str) -> dict[str, Any]:
    return payload(
        event_type,
        tenant_name=f"Contoso {HOSTILE}",
        case_title=f"Sync {HOSTILE} evil.example",
        case_reference="<!here>",
        requester=f"Erin {HOSTILE}",
        actor=f"Mark <@U0LAN0Z89> {HOSTILE}",
        resources=[MAILBOX, "sharepoint/sites/evil.example/docs", f"x/{HOSTILE}"],
        justification=HOSTILE_TEXT,
        comment=f"ok {HOSTILE} www.evil.example",
    )


CHECKPOINT = {
    "type": "audit.checkpoint",
    "timestamp": "2026-01-05T09:00:00.000000Z",
    "data": {
        "tenant_id": "ten_01JABCDEFGHJKMNPQRSTVWXYZ0",
        "checkpoint": {
            "alg": "EdDSA",
            "kid": "lbx-2026-01",
            "payload": "e30",
            "signature": "c2ln",
            "checkpoint": {
                "v": 1,
                "type": "lockbox.checkpoint",
                "tenant": "ten_01JABCDEFGHJKMNPQRSTVWXYZ0",
                "seq": 42,
                "hash": "ab" * 32,
                "at": "2026-01-05T09:00:00.000000Z",
                "kid": "lbx-2026-01",
            },
        },
    },
}

#: Every request event a webhook can hear, and one that does not exist yet (a generic message).
REQUEST_EVENTS = [
    *(e for e in webhooks.EVENT_TYPES if e.startswith("request.")),
    "request.some_future_event",
]


# -- what a reader sees ---------------------------------------------------------------------------


def slack_texts(message: dict[str, Any]) -> list[str]:
    """Every string Slack shows: the fallback, the header, each section."""
    return [message["text"], *(block["text"]["text"] for block in message["blocks"])]


def teams_texts(message: dict[str, Any]) -> list[str]:
    """Every string Teams shows: each TextBlock, each fact's title and value."""
    found: list[str] = []
    for item in message["attachments"][0]["content"]["body"]:
        if item["type"] == "TextBlock":
            found.append(item["text"])
        else:
            for fact in item["facts"]:
                found += [fact["title"], fact["value"]]
    return found


TEXTS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "slack": slack_texts,
    "teams": teams_texts,
}

#: A Markdown link, a Slack ``<…>`` token, a URL scheme, a bare domain.
_MARKDOWN_LINK = re.compile(r"\[[^\]\n]*\]\s*\(")
_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*://", re.IGNORECASE)
_DOMAIN = re.compile(r"[\w-][.\uff0e\u3002][^\W\d_][\w-]")
#: Lockbox's own dotted words: the event types.
_EVENT_TYPE = re.compile(r"\b(?:request|audit)\.[a-z_]+\b")


def assert_inert(fmt: str, message: dict[str, Any]) -> None:
    texts = TEXTS[fmt](message)
    dump = json.dumps(message, ensure_ascii=False)
    # The only URL in a message is the Adaptive Card's "$schema", which nobody sees.
    dump = dump.replace(chat.ADAPTIVE_CARD_SCHEMA, "")
    for text in [*texts, dump]:
        lowered = text.lower()
        assert "http" not in lowered, text
        assert "www." not in lowered, text
        assert _SCHEME.search(text) is None, text
        assert "mailto:" not in lowered and "javascript:" not in lowered, text
        assert "evil.example" not in lowered and "evil.com" not in lowered, text
    for text in texts:
        assert "<!" not in text and "<@" not in text and "<#" not in text, text
        assert "<at>" not in text.lower(), text
        assert _DOMAIN.search(_EVENT_TYPE.sub("", text)) is None, text
        if fmt == "slack":
            # Every < > of the text is escaped; Lockbox's own mrkdwn uses none.
            assert "<" not in text and ">" not in text, text
            assert re.search(r"@(channel|here|everyone)\b", text) is None, text
        else:
            assert _MARKDOWN_LINK.search(text) is None, text


# -- rendering ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["slack", "teams"])
@pytest.mark.parametrize("event_type", REQUEST_EVENTS)
def test_every_event_renders_in_the_documented_format(fmt: str, event_type: str) -> None:
    message = chat.render(fmt, payload(event_type), NOW, provider_name="Acme Cloud")
    validate(SCHEMAS[fmt], message)
    texts = "\n".join(TEXTS[fmt](message))
    # What happened, to which request, for whom, on what, and what to do: sign in yourself.
    for expected in (
        "req_01JABCDEFGHJKMNPQRSTVWXYZ0",
        "Contoso Ltd",
        "Erin Engineer",
        "Alice's mailbox does not sync",
        "INC-4711",
        "exchange/mailbox/alice@contoso[.]com",
        "Read only",
        "Waiting for the customer's approval",
        "Sign in to the Lockbox admin center",
        "no links",
    ):
        assert expected in texts, (expected, texts)
    assert_inert(fmt, message)


@pytest.mark.parametrize("fmt", ["slack", "teams"])
@pytest.mark.parametrize("event_type", REQUEST_EVENTS)
def test_hostile_text_can_make_no_link_and_no_mention(fmt: str, event_type: str) -> None:
    message = chat.render(fmt, hostile_payload(event_type), NOW)
    validate(SCHEMAS[fmt], message)
    assert_inert(fmt, message)
    texts = "\n".join(TEXTS[fmt](message))
    # The hostile text is still there to read, defanged: nothing was silently dropped.
    assert "hxxp[:]//evil" in texts
    assert "evil[.]example" in texts
    assert "!channel" in texts


def test_the_neutralised_forms_of_the_hostile_sample() -> None:
    assert chat.slack_escape(HOSTILE) == (
        "‹!channel› [x](hxxp[:]//evil) ‹hxxp[:]//evil|click›"  # no < left to start a token
    )
    assert chat.teams_escape(HOSTILE) == "‹!channel› ［x］(hxxp[:]//evil) ‹hxxp[:]//evil|click›"
    assert chat.slack_escape("a & b < c > d") == "a &amp; b ‹ c › d"
    assert chat.slack_escape("@here and @channel") == "@\u2060here and @\u2060channel"
    # Bare domains and addresses are broken too (chat clients link them); e.g., versions are not.
    assert chat.inert("evil.example, alice@contoso.com, e.g. v2.0 1.5 10.0.0.1") == (
        "evil[.]example, alice@contoso[.]com, e.g. v2.0 1.5 10[.]0[.]0[.]1"
    )
    assert chat.inert("evil.com.net") == "evil[.]com[.]net"
    # A ] that defanging left before a ( cannot close a Markdown link in Teams either.
    assert "](" not in chat.teams_escape("www.(x)")
    # Lockbox's own words stay readable.
    assert chat.teams_escape(chat.one_line(chat.TrustedText("request.approve"))) == (
        "request.approve"
    )


@pytest.mark.parametrize("fmt", ["slack", "teams"])
def test_checkpoints_render_without_a_request(fmt: str) -> None:
    message = chat.render(fmt, CHECKPOINT, NOW)
    validate(SCHEMAS[fmt], message)
    texts = "\n".join(TEXTS[fmt](message))
    assert "Audit log checkpoint signed" in texts
    assert "ab" * 32 in texts and "42" in texts and "2026-01-05 09:00 UTC" in texts
    assert_inert(fmt, message)


def test_headlines_say_what_happened() -> None:
    def header(event_type: str, **data: Any) -> str:
        text: str = chat.slack_message(payload(event_type, **data), NOW)["blocks"][0]["text"][
            "text"
        ]
        return text

    assert header("request.review_approve") == ("Approval needed: support access to Contoso Ltd")
    approved = header(
        "request.approve", state="approved", access_deadline="2026-01-05T13:00:00.000000Z"
    )
    assert approved == "Access approved: Contoso Ltd"
    assert header("request.approve", required_approvals=2, approvals=1).startswith(
        "Approval recorded (1 of 2)"
    )
    assert header("request.revoke", state="revoked") == "Access revoked: Contoso Ltd"
    assert header("request.first_use", state="approved").startswith("Access used for the first")
    assert header("request.some_future_event") == "Lockbox: Contoso Ltd"
    # Deadlines are spelt for people, relative to the time of sending.
    facts = chat.slack_message(payload("request.review_approve"), NOW)["blocks"][2]["text"]["text"]
    assert "*Decide by:* 2026-01-05 21:00 UTC (in 11 hours 30 minutes)" in facts
    until = chat.teams_message(
        payload("request.approve", state="approved", access_deadline="2026-01-05T13:00:00.000000Z"),
        NOW,
    )
    assert {"title": "Access until", "value": "2026-01-05 13:00 UTC (in 3 hours 30 minutes)"} in (
        until["attachments"][0]["content"]["body"][2]["facts"]
    )


@pytest.mark.parametrize("fmt", ["slack", "teams"])
def test_limits_hold_for_the_longest_request(fmt: str) -> None:
    """50 resources of 512 characters, a 4000-character justification full of characters that
    grow when escaped, emoji (two UTF-16 units each), a 200-character tenant name."""
    resources = [f"exchange/mailbox/{i:02d}" + "a" * 490 + "@contoso.com" for i in range(50)]
    long_payload = payload(
        "request.review_approve",
        tenant_name="T" * 150 + "😀" * 50,
        case_title="&" * 200,
        requester="R" * 200,
        resources=resources,
        justification=("&<> 😀 evil.example " * 400)[:4000],
        comment="c&" * 1000,
    )
    message = chat.render(fmt, long_payload, NOW)
    validate(SCHEMAS[fmt], message)
    assert_inert(fmt, message)
    texts = TEXTS[fmt](message)
    assert "… and 40 more (see the Lockbox admin center)" in "\n".join(texts)
    assert any("shortened: read it in full in the Lockbox admin center" in t for t in texts)
    if fmt == "slack":
        header = message["blocks"][0]["text"]["text"]
        assert chat.utf16_len(header) <= chat.SLACK_HEADER_MAX and header.endswith("…")
        for block in message["blocks"][1:]:
            text = block["text"]["text"]
            assert chat.utf16_len(text) <= chat.SLACK_TEXT_MAX
            assert re.search(r"&[a-z]{0,3}…", text) is None  # no entity cut in half
        assert len(message["blocks"]) <= 50
    # Teams refuses cards over about 28 KB (as sent: UTF-8); Slack's payloads are smaller still.
    assert len(json.dumps(message, ensure_ascii=False).encode()) < 28_000


def test_fit_counts_utf16_units_and_keeps_entities_whole() -> None:
    assert chat.fit("abc", 3) == "abc"
    assert chat.fit("abcdef", 4) == "abc…"
    assert chat.fit("😀😀😀", 5) == "😀😀…"
    assert chat.fit("ab&amp;cd", 5) == "ab…"
    assert chat.fit("x" * 10, 8, "(more)") == "xx(more)"


# -- building a delivery --------------------------------------------------------------------------


def test_chat_deliveries_are_json_without_a_signature() -> None:
    data = payload("request.submit")
    for fmt in ("slack", "teams"):
        body, head = build_request(
            fmt, "msg_1", data, secret="", signed_at=NOW, now=NOW, provider_name="Acme"
        )
        assert head == {"content-type": "application/json", "user-agent": "Lockbox-Webhooks/1"}
        validate(SCHEMAS[fmt], json.loads(body))
    body, head = build_request(
        "standard", "msg_1", data, secret="whsec_" + "A" * 44, signed_at=NOW, now=NOW
    )
    assert json.loads(body) == data and head["webhook-signature"].startswith("v1,")
    with pytest.raises(WebhookError) as refused:
        build_request("discord", "msg_1", data, secret="", signed_at=NOW, now=NOW)
    assert refused.value.category == "unsupported format" and refused.value.permanent


# -- registering ------------------------------------------------------------------------------------


def test_registering_a_chat_webhook(world: World) -> None:
    app = world.app
    public = _stub({"hooks.slack.com": ["93.184.215.14"]})
    url = "https://hooks.slack.com/services/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"
    slack = webhooks.register(app, world.contoso_admin, url=url, format="slack", resolve=public)
    assert slack.secret is None and slack.row.format == "slack" and slack.row.secret == ""
    assert webhooks.view(slack.row)["format"] == "slack"
    assert "Xk3j9FqL2mN8pR4sT6vW1yZ0" not in repr(slack.row)  # the URL is the secret: no repr
    teams = webhooks.register(
        app, world.contoso_admin, url="https://x.example/t", format="TEAMS", resolve=public
    )
    assert teams.secret is None and teams.row.format == "teams"
    standard = webhooks.register(
        app, world.contoso_admin, url="https://x.example/s", resolve=public
    )
    assert standard.row.format == "standard" and (standard.secret or "").startswith("whsec_")
    with pytest.raises(ValidationError) as bad:
        webhooks.register(app, world.contoso_admin, url="https://x.example/d", format="discord")
    assert bad.value.field == "format"
    listed = {h.id: h.format for h in webhooks.list_webhooks(app, world.contoso_admin)}
    assert listed == {slack.row.id: "slack", teams.row.id: "teams", standard.row.id: "standard"}
    records, _ = audit.query(app, world.contoso_auditor, "contoso", operation="webhook.")
    assert [r.details["format"] for r in records] == ["slack", "teams", "standard"]
    assert "Xk3j9FqL2mN8pR4sT6vW1yZ0" not in str([r.details for r in records])


@pytest.mark.parametrize("fmt", ["slack", "teams"])
def test_chat_webhooks_keep_every_destination_check(world: World, fmt: str) -> None:
    """Registration refuses internal destinations; delivery re-resolves and refuses a name
    that now points inside (DNS rebinding), connecting nowhere."""
    app = world.app
    for url in ("https://10.0.0.1/hook", "https://169.254.169.254/x", "https://metadata/x"):
        with pytest.raises(DestinationRefused):
            webhooks.register(app, world.contoso_admin, url=url, format=fmt)
    with pytest.raises(ValidationError):
        webhooks.register(app, world.contoso_admin, url="http://hooks.example/x", format=fmt)
    host = "hooks.rebinding.test"
    webhooks.register(
        app,
        world.contoso_admin,
        url=f"https://{host}/services/T1/B2/abc",
        format=fmt,
        resolve=_stub({host: ["93.184.215.14"]}),
    )
    from lockbox.notify.webhooks import HttpxWebhookSender

    sender = HttpxWebhookSender(
        2.0, policy=DestinationPolicy(), resolve=_stub({host: ["10.1.2.3"]})
    )
    submit(app, world.engineer)
    result = Dispatcher(
        app, smtp_settings(1), mailer=_NoMail(), webhook_sender=sender
    ).dispatch_due()
    deliveries = [r for r in rows(app) if r.channel == "webhook"]
    assert result.parked == len(deliveries) >= 1  # the request's event (and its checkpoint)
    assert {outbox.view(r)["last_error"] for r in deliveries} == {"refused destination"}


def _stub(answers: dict[str, Sequence[str]]) -> Callable[[str, int], Sequence[str]]:
    def resolve(host: str, _port: int) -> Sequence[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    return resolve


class _NoMail:
    def send(self, message: object) -> None:
        pass

    def close(self) -> None:
        pass


# -- end to end: the outbox worker to a receiver on 127.0.0.1 ---------------------------------------


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver(answer=lambda _hit: 200).start()
    yield r
    r.stop()


@pytest.mark.parametrize("fmt", ["standard", "slack", "teams"])
def test_the_worker_delivers_each_format(world: World, receiver: WebhookReceiver, fmt: str) -> None:
    app = world.app
    hook = webhooks.register(
        app,
        world.contoso_admin,
        url=receiver.url,
        events=["request.submit", "request.review_approve"],
        format=fmt,
        allow_http_loopback=True,
    )
    req_id = submit(app, world.engineer, justification=HOSTILE_TEXT)
    requests.review_request(app, world.manager, req_id, approve=True)
    dispatcher = Dispatcher(app, smtp_settings(1, provider_name="Acme Cloud"), mailer=_NoMail())
    dispatcher.dispatch_due()
    sent = [r for r in rows(app, "sent") if r.channel == "webhook"]
    assert len(sent) == 2 and len(receiver.hits) == 2
    for hit in receiver.hits:
        assert hit.headers["content-type"] == "application/json"
        if fmt == "standard":
            event = verify(hit.body, hit.headers, hook.secret or "")
            assert event["data"]["request_id"] == req_id
            continue
        assert "webhook-signature" not in hit.headers  # nobody would check it
        message = json.loads(hit.body)
        validate(SCHEMAS[fmt], message)
        assert_inert(fmt, message)
        texts = "\n".join(TEXTS[fmt](message))
        assert req_id in texts and "Contoso Ltd" in texts and "Acme Cloud" in texts
    if fmt != "standard":
        messages = [json.loads(h.body) for h in receiver.hits]
        seen = "\n".join(text for m in messages for text in TEXTS[fmt](m))
        assert "Access requested: Contoso Ltd" in seen
        assert "Approval needed: support access to Contoso Ltd" in seen


# -- masked URLs -------------------------------------------------------------------------------------

SLACK_TOKEN = "abcdefghijklmnopqrstuvwx"  # all lower case: not "random-looking" to the generic rule
TEAMS_TOKEN = "V2AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdEfGh"
SIG = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde"


@pytest.mark.parametrize(
    ("url", "shown", "secrets"),
    [
        (
            f"https://hooks.slack.com/services/T0001ABCD/B0002EFGH/{SLACK_TOKEN}",
            "https://hooks.slack.com/services/T0001ABCD/B0002EFGH/abcd…",
            [SLACK_TOKEN],
        ),
        (
            "https://hooks.slack.com/triggers/T0001ABCD/7412345678901/0123456789abcdef0123456789abcdef",
            "https://hooks.slack.com/triggers/T0001ABCD/7412345678901/0123…",
            ["0123456789abcdef0123456789abcdef"],
        ),
        (
            "https://contoso.webhook.office.com/webhookb2/3f1a2b3c-1234-4abc-9def-0123456789ab"
            "@72f988bf-86f1-41af-91ab-2d7cd011db47/IncomingWebhook/a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
            f"/9e8d7c6b-5a4b-3c2d-1e0f-a9b8c7d6e5f4/{TEAMS_TOKEN}",
            "https://contoso.webhook.office.com/webhookb2/3f1a…/IncomingWebhook/a1b2…/9e8d…/V2Ab…",
            [TEAMS_TOKEN, "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6", "72f988bf-86f1-41af-91ab"],
        ),
        (
            "https://prod-12.westeurope.logic.azure.com:443/workflows/0123456789abcdef0123456789abcdef"
            "/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun"
            f"&sv=1.0&sig={SIG}",
            "https://prod-12.westeurope.logic.azure.com:443/workflows/0123…/triggers/manual/paths"
            "/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=…",
            [SIG],
        ),
        (
            "https://default72f988bf86f141af91ab2d7cd011db.47.environment.api.powerplatform.com:443"
            "/powerautomate/automations/direct/workflows/0123456789abcdef0123456789abcdef/triggers"
            f"/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIG}",
            "https://default72f988bf86f141af91ab2d7cd011db.47.environment.api.powerplatform.com:443"
            "/powerautomate/automations/direct/workflows/0123…/triggers/manual/paths/invoke"
            "?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=…",
            [SIG],
        ),
    ],
)
def test_chat_webhook_urls_are_masked(url: str, shown: str, secrets: list[str]) -> None:
    assert display_url(url) == shown
    for secret in secrets:
        assert secret not in display_url(url)


def test_the_masked_url_is_what_every_listing_shows(world: World) -> None:
    url = f"https://hooks.slack.com/services/T0001ABCD/B0002EFGH/{SLACK_TOKEN}"
    hook = webhooks.register(
        world.app,
        world.contoso_admin,
        url=url,
        format="slack",
        resolve=_stub({"hooks.slack.com": ["93.184.215.14"]}),
    )
    assert hook.row.url == url  # the worker still posts to the real URL
    client = TestClient(create_app(world.app))
    admin = {
        "authorization": f"Bearer {tokens.create_token(world.app, world.contoso_admin).secret}"
    }
    listed = client.get("/v1/webhooks", headers=admin).json()["items"]
    one = client.get(f"/v1/webhooks/{hook.row.id}", headers=admin).json()
    assert SLACK_TOKEN not in json.dumps([listed, one])
    assert one["url"].endswith("/abcd…") and one["format"] == "slack"
    webhooks.delete_webhook(world.app, world.contoso_admin, hook.row.id)
    records, _ = audit.query(world.app, world.contoso_auditor, "contoso", operation="webhook.")
    assert SLACK_TOKEN not in str([r.details for r in records])


# -- the API and the CLI ------------------------------------------------------------------------------


def test_the_api_takes_a_format(world: World) -> None:
    client = TestClient(create_app(world.app))
    admin = {
        "authorization": f"Bearer {tokens.create_token(world.app, world.contoso_admin).secret}"
    }
    created = client.post(
        "/v1/webhooks",
        json={"url": "https://hooks.contoso.example/teams", "format": "teams"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["format"] == "teams" and body["secret"] is None
    standard = client.post(
        "/v1/webhooks", json={"url": "https://hooks.contoso.example/s"}, headers=admin
    ).json()
    assert standard["format"] == "standard" and standard["secret"].startswith("whsec_")
    listed = client.get("/v1/webhooks", headers=admin).json()["items"]
    assert {h["id"]: h["format"] for h in listed} == {
        body["id"]: "teams",
        standard["id"]: "standard",
    }
    for bad in ("discord", "", 3, None):
        refused = client.post(
            "/v1/webhooks",
            json={"url": "https://hooks.contoso.example/x", "format": bad},
            headers=admin,
        )
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["format"]
    assert len(client.get("/v1/webhooks", headers=admin).json()["items"]) == 2
    schema = create_app(world.app).openapi()["components"]["schemas"]
    assert schema["WebhookFormat"]["enum"] == ["standard", "slack", "teams"]


def test_the_cli_takes_a_format(world: World, tmp_path: Path) -> None:
    if world.app.db.dialect != "sqlite":
        return  # the CLI reads the database URL; one backend is enough here
    env = {"LOCKBOX_DATABASE_URL": world.app.db.url, "COLUMNS": "250"}
    runner = CliRunner()
    base = ["--as", "ines@contoso.test", "webhook"]
    added = runner.invoke(
        cli, ["--json", *base, "add", "--format", "slack", "https://h.example/s"], env=env
    )
    assert added.exit_code == 0, added.output
    data = json.loads(added.output)
    assert data["format"] == "slack" and data["secret"] is None
    human = runner.invoke(
        cli, [*base, "create", "--format", "Teams", "https://h.example/t"], env=env
    )
    assert human.exit_code == 0, human.output
    assert "not signed" in human.output and "whsec_" not in human.output
    refused = runner.invoke(
        cli, [*base, "create", "--format", "discord", "https://h.example/d"], env=env
    )
    assert refused.exit_code != 0
    listed = runner.invoke(cli, [*base, "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "slack" in listed.output and "teams" in listed.output
    as_json = runner.invoke(cli, ["--json", *base, "list"], env=env)
    assert sorted(h["format"] for h in json.loads(as_json.output)) == ["slack", "teams"]
