"""The relay printed in docs/helpdesk.md, run as printed: what it signs, Lockbox accepts;
one event keeps one ``webhook-id`` across the help desk's retries; a call that is not from
the help desk is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import types
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lockbox.domain import helpdesk as rules

DOC = Path(__file__).resolve().parents[2] / "docs" / "helpdesk.md"
SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ENV = {
    "LOCKBOX_EVENTS_URL": "https://lockbox.example.com/v1/integrations/hdi_x/events",
    "LOCKBOX_SECRET": SECRET,
    "RELAY_TOKEN": "a-long-random-relay-token",
    "ZENDESK_SIGNING_SECRET": "zendesk-secret",
}
EVENT = {
    "type": "ticket.opened",
    "ticket": {
        "id": "4521",
        "title": 'Alice\'s "mailbox" – no sync',
        "tenant": "contoso",
        "engineer": "erin@provider.example",
    },
}


@pytest.fixture(scope="module")
def relay() -> types.ModuleType:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    source = next(b for b in blocks if b.startswith("# helpdesk_relay.py"))
    module = types.ModuleType("helpdesk_relay")
    exec(compile(source, "helpdesk_relay.py", "exec"), module.__dict__)
    return module


def test_what_the_relay_signs_lockbox_accepts(relay: types.ModuleType) -> None:
    body = json.dumps(EVENT).encode()
    url, headers, out = relay.relay(
        {"X-Relay-Token": ENV["RELAY_TOKEN"]}, body, ENV, NOW.timestamp()
    )
    assert url == ENV["LOCKBOX_EVENTS_URL"]
    delivery = rules.read_headers(headers, NOW)
    assert rules.signature_matches(delivery, out, [SECRET])
    event = rules.parse_event(out)
    assert event.title == 'Alice\'s "mailbox" – no sync'
    assert event.updated_at == NOW  # filled in: the help desk printed none
    # A retry of the same call a minute later: the same id, so Lockbox drops it.
    _, again, _ = relay.relay(
        {"x-relay-token": ENV["RELAY_TOKEN"]}, body, ENV, NOW.timestamp() + 60
    )
    assert again["webhook-id"] == headers["webhook-id"]
    # A different event (here: a later update) gets another id.
    changed = json.dumps({**EVENT, "type": "ticket.updated"}).encode()
    _, other, _ = relay.relay({"x-relay-token": ENV["RELAY_TOKEN"]}, changed, ENV, NOW.timestamp())
    assert other["webhook-id"] != headers["webhook-id"]


def test_a_time_the_help_desk_printed_is_kept(relay: types.ModuleType) -> None:
    stamped = {**EVENT, "ticket": {**EVENT["ticket"], "updated_at": "2026-01-05T08:00Z"}}
    _, _, out = relay.relay(
        {"x-relay-token": ENV["RELAY_TOKEN"]}, json.dumps(stamped).encode(), ENV, NOW.timestamp()
    )
    assert rules.parse_event(out).updated_at == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def test_the_relay_checks_zendesk_s_own_signature(relay: types.ModuleType) -> None:
    body = json.dumps(EVENT).encode()
    stamp = "2026-01-05T09:00:00Z"
    mac = hmac.new(b"zendesk-secret", stamp.encode() + body, hashlib.sha256).digest()
    zendesk = {
        "X-Zendesk-Webhook-Signature": base64.b64encode(mac).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }
    _, headers, out = relay.relay(zendesk, body, ENV, NOW.timestamp())
    assert rules.signature_matches(rules.read_headers(headers, NOW), out, [SECRET])
    forged = {**zendesk, "X-Zendesk-Webhook-Signature-Timestamp": "2026-01-05T09:00:01Z"}
    with pytest.raises(relay.Refused) as refused:
        relay.relay(forged, body, ENV, NOW.timestamp())
    assert refused.value.status == 401


@pytest.mark.parametrize(
    ("headers", "env"),
    [
        ({}, ENV),
        ({"x-relay-token": "wrong"}, ENV),
        ({"x-relay-token": ""}, {**ENV, "RELAY_TOKEN": ""}),
        ({"x-relay-token": "short"}, {**ENV, "RELAY_TOKEN": "short"}),  # too short to trust
    ],
)
def test_a_call_not_from_the_help_desk_is_refused(
    relay: types.ModuleType, headers: dict[str, str], env: dict[str, str]
) -> None:
    with pytest.raises(relay.Refused) as refused:
        relay.relay(headers, json.dumps(EVENT).encode(), env, NOW.timestamp())
    assert refused.value.status == 401


def test_garbage_and_oversized_bodies_are_refused(relay: types.ModuleType) -> None:
    token = {"x-relay-token": ENV["RELAY_TOKEN"]}
    with pytest.raises(relay.Refused) as refused:
        relay.relay(token, b"{not json", ENV, NOW.timestamp())
    assert refused.value.status == 400
    with pytest.raises(relay.Refused) as refused:
        relay.relay(token, b" " * (64 * 1024 + 1), ENV, NOW.timestamp())
    assert refused.value.status == 413
