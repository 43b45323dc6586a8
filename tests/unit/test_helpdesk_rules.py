"""The help-desk rules on plain values: signatures, the event's shape, and what each event
does given what was applied before (lockbox.domain.helpdesk)."""

from __future__ import annotations

import base64
import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from lockbox.domain import helpdesk as rules
from lockbox.domain.errors import AuthenticationFailed, ValidationError
from lockbox.domain.helpdesk import Action, EventType, TicketEvent, TicketLink, TicketStatus
from lockbox.domain.permissions import INTEGRATION_GRANTS, Intent, allows
from lockbox.domain.roles import ActorKind, Principal, Side
from lockbox.sdk.webhooks import sign as sdk_sign

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BODY = b'{"type":"ticket.closed","ticket":{"id":"1","updated_at":"2026-01-05T09:00:00Z"}}'


def headers(*, stamp: int | None = None, msg_id: str = "msg_1", secret: str = SECRET) -> dict:
    stamp = int(NOW.timestamp()) if stamp is None else stamp
    return {
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": str(stamp),
        "Webhook-Signature": rules.sign(secret, msg_id, stamp, BODY),
    }


# -- signatures ------------------------------------------------------------------------------


def test_the_signature_is_the_sdk_s_and_verifies() -> None:
    assert rules.sign(SECRET, "msg_1", 1, BODY) == sdk_sign(SECRET, "msg_1", 1, BODY)
    delivery = rules.read_headers(headers(), NOW)
    assert delivery.msg_id == "msg_1"
    assert rules.signature_matches(delivery, BODY, [SECRET])
    assert not rules.signature_matches(delivery, BODY + b" ", [SECRET])
    other = "whsec_" + base64.b64encode(b"o" * 32).decode()
    assert not rules.signature_matches(delivery, BODY, [other])
    assert rules.signature_matches(delivery, BODY, [other, SECRET])  # a rotation's overlap
    assert not rules.signature_matches(delivery, BODY, ["whsec_not base64!"])


def test_the_standardwebhooks_package_agrees() -> None:
    standardwebhooks = pytest.importorskip("standardwebhooks")
    hook = standardwebhooks.Webhook(SECRET)
    signature = hook.sign("msg_1", NOW, BODY.decode())
    assert signature == rules.sign(SECRET, "msg_1", int(NOW.timestamp()), BODY)


def test_the_timestamp_tolerance_is_five_minutes_either_way() -> None:
    base = int(NOW.timestamp())
    for offset in (-300, 0, 300):
        rules.read_headers(headers(stamp=base + offset), NOW)
    for offset in (-301, 301, -86400):
        with pytest.raises(AuthenticationFailed, match="5 minutes"):
            rules.read_headers(headers(stamp=base + offset), NOW)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"Webhook-Id": ""}, "required"),
        ({"Webhook-Timestamp": ""}, "required"),
        ({"Webhook-Signature": ""}, "required"),
        ({"Webhook-Timestamp": "+1767603600"}, "digits only"),
        ({"Webhook-Timestamp": "1767603600.0"}, "digits only"),
        ({"Webhook-Timestamp": "9" * 40}, "digits only"),
        ({"Webhook-Id": "x" * 201}, "webhook-id"),
        ({"Webhook-Id": "a\nb"}, "webhook-id"),
        ({"Webhook-Signature": "v1,short"}, "no valid signature"),
        ({"Webhook-Signature": "v1a,xyz v2,abc"}, "no valid signature"),
    ],
)
def test_malformed_signature_headers_are_authentication_failures(
    change: dict[str, str], match: str
) -> None:
    with pytest.raises(AuthenticationFailed, match=match):
        rules.read_headers({**headers(), **change}, NOW)


def test_only_the_first_signatures_are_looked_at() -> None:
    good = headers()
    noise = " ".join(["v1," + "A" * 43 + "="] * rules.MAX_SIGNATURES)
    late = rules.read_headers(
        {**good, "Webhook-Signature": noise + " " + good["Webhook-Signature"]}, NOW
    )
    assert not rules.signature_matches(late, BODY, [SECRET])
    early = rules.read_headers(
        {**good, "Webhook-Signature": good["Webhook-Signature"] + " " + noise}, NOW
    )
    assert rules.signature_matches(early, BODY, [SECRET])


# -- the event -------------------------------------------------------------------------------


def body(kind: str = "ticket.opened", **ticket: object) -> bytes:
    fields = {"id": "42", "updated_at": "2026-01-05T09:00:00Z", **ticket}
    return json.dumps({"type": kind, "ticket": fields}).encode()


def test_an_event_parses_to_the_ticket() -> None:
    event = rules.parse_event(
        body(title="  Sync \n broken\t", tenant="contoso", engineer="erin@provider.test")
    )
    assert event == TicketEvent(
        type=EventType.OPENED,
        ticket_id="42",
        updated_at=NOW,
        title="Sync broken",
        tenant="contoso",
        engineer="erin@provider.test",
    )
    assert rules.opening(event) == ("Sync broken", "contoso", "erin@provider.test")


def test_blank_fields_are_absent_and_opening_needs_them() -> None:
    event = rules.parse_event(body("ticket.updated", title="", tenant=None, engineer=" "))
    assert (event.title, event.tenant, event.engineer) == (None, None, None)
    with pytest.raises(ValidationError) as refused:
        rules.opening(event)
    assert refused.value.field == "ticket.title"


def test_titles_are_cleaned_and_cut_not_refused() -> None:
    assert rules.clean_title("a\u202eb\u0000c\u2028d") == "abc d"
    long = rules.clean_title("x" * 500)
    assert len(long) == 200 and long.endswith("…")
    with pytest.raises(ValidationError):
        rules.clean_title("\u202e\u200f ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-05T09:00:00Z", NOW),
        ("2026-01-05t09:00:00.5z", NOW + timedelta(microseconds=500_000)),
        ("2026-01-05T10:00:00+01:00", NOW),
        ("2026-01-05T10:00:00.0+0100", NOW),  # Jira's default
        ("2026-01-05T09:00Z", NOW),  # Zendesk's …_with_timestamp
        ("2026-01-05 09:00:00Z", NOW),
        ("2026-01-05T08:59:60Z", NOW - timedelta(microseconds=1)),
    ],
)
def test_times_in_the_forms_help_desks_print(text: str, expected: datetime) -> None:
    assert rules.parse_time(text, "t") == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-05T09:00:00",
        "2026-01-05",
        "1767603600",
        "2026-13-05T09:00Z",
        "2026-01-05T09:00+24:00",
    ],
)
def test_times_without_a_zone_or_impossible_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as refused:
        rules.parse_time(text, "ticket.updated_at")
    assert refused.value.field == "ticket.updated_at"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"\xff", "body"),
        (b"{", "body"),
        (b"[" * 100_000 + b"]" * 100_000, "body"),
        (b'{"type": "ticket.opened", "type": "ticket.closed", "ticket": {}}', "type"),
        (b'{"type": 1, "ticket": {}}', "type"),
        (b'{"type": "ticket.opened", "ticket": []}', "ticket"),
        (body(id=True), "ticket.id"),
        (body(id=-1), "ticket.id"),
        (body(id="x" * 101), "ticket.id"),
        (body(id="a\tb"), "ticket.id"),
        (body(tenant="Not A Slug!"), "ticket.tenant"),
        (body(engineer=7), "ticket.engineer"),
        (body(status="open"), "ticket.status"),
    ],
)
def test_malformed_events_name_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        rules.parse_event(raw)
    assert refused.value.field == field


# -- order and repeats -----------------------------------------------------------------------


T1, T2 = NOW, NOW + timedelta(minutes=1)


def ev(kind: EventType, at: datetime) -> TicketEvent:
    return TicketEvent(type=kind, ticket_id="42", updated_at=at)


@pytest.mark.parametrize(
    ("kind", "link", "action"),
    [
        (EventType.OPENED, None, Action.OPEN),
        (EventType.UPDATED, None, Action.OPEN),
        (EventType.CLOSED, None, Action.REMEMBER_CLOSED),
        (EventType.UPDATED, TicketLink(TicketStatus.OPEN, T1, "case_1"), Action.UPDATE),
        (EventType.OPENED, TicketLink(TicketStatus.OPEN, T1, "case_1"), Action.UPDATE),
        (EventType.UPDATED, TicketLink(TicketStatus.OPEN, T2, "case_1"), Action.IGNORE_STALE),
        (EventType.CLOSED, TicketLink(TicketStatus.OPEN, T2, "case_1"), Action.CLOSE),
        (EventType.OPENED, TicketLink(TicketStatus.CLOSED, T1, None), Action.IGNORE_CLOSED),
        (EventType.UPDATED, TicketLink(TicketStatus.CLOSED, T1, "c"), Action.IGNORE_CLOSED),
        (EventType.CLOSED, TicketLink(TicketStatus.CLOSED, T1, "c"), Action.IGNORE_CLOSED),
    ],
)
def test_what_an_event_does(kind: EventType, link: TicketLink | None, action: Action) -> None:
    assert rules.decide(ev(kind, T1), link) is action


def _play(events: list[TicketEvent]) -> tuple[TicketStatus | None, datetime | None]:
    """The ticket's state after ``events`` in this order, by :func:`decide` alone."""
    link: TicketLink | None = None
    for event in events:
        action = rules.decide(event, link)
        if action in (Action.OPEN, Action.UPDATE):
            link = TicketLink(TicketStatus.OPEN, event.updated_at, "case")
        elif action is Action.CLOSE and link is not None:
            link = TicketLink(TicketStatus.CLOSED, link.ticket_updated_at, link.case_id)
        elif action is Action.REMEMBER_CLOSED:
            link = TicketLink(TicketStatus.CLOSED, event.updated_at, None)
    if link is None:
        return None, None
    return link.status, link.ticket_updated_at if link.status is TicketStatus.OPEN else None


def test_the_outcome_does_not_depend_on_the_order_of_arrival() -> None:
    history = [
        ev(EventType.OPENED, T1),
        ev(EventType.UPDATED, T1 + timedelta(minutes=5)),
        ev(EventType.UPDATED, T1 + timedelta(minutes=9)),
    ]
    in_order = _play(history)
    assert in_order == (TicketStatus.OPEN, T1 + timedelta(minutes=9))
    for order in itertools.permutations(history):
        assert _play(list(order)) == in_order
    closing = [*history, ev(EventType.CLOSED, T1 + timedelta(minutes=10))]
    for order in itertools.permutations(closing):
        assert _play(list(order))[0] is TicketStatus.CLOSED


def test_an_integration_may_open_update_and_close_cases_and_nothing_else() -> None:
    bot = Principal(id="hdi_x", side=Side.PROVIDER, kind=ActorKind.INTEGRATION)
    for intent in Intent:
        assert allows(bot, intent, "ten_1") is (intent in INTEGRATION_GRANTS), intent
    assert set(INTEGRATION_GRANTS) == {
        Intent.TENANT_VIEW,
        Intent.CASE_VIEW,
        Intent.CASE_OPEN,
        Intent.CASE_UPDATE,
        Intent.CASE_CLOSE,
    }
    # The grants are the integration kind's, not a side's: a person gets none of them.
    person = Principal(id="usr_x", side=Side.PROVIDER)
    assert not allows(person, Intent.CASE_UPDATE, "ten_1")
