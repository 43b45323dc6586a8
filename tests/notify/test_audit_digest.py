"""The daily audit digest e-mail (issue #12): the head's sequence number and hash, no links,
whatever a tenant is called."""

from __future__ import annotations

from datetime import UTC, datetime

from lockbox.notify import render
from lockbox.service.notifications import TOPICS
from tests.notify.helpers import assert_no_links
from tests.notify.test_templates import HOSTILE, payload

NOW = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
HASH = "9f" * 32


def digest(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "tenant_id": "ten_0123456789abcdefghjkmnpqrs",
        "tenant_name": "Contoso Ltd",
        "audit_seq": 1234,
        "audit_hash": HASH,
        "audit_kid": "key_0123456789abcdefghjkmnpqrs",
        "at": "2026-01-06T08:59:00.000000Z",
    }
    data.update(overrides)
    return data


def test_the_digest_says_which_head_and_nothing_to_click() -> None:
    assert "audit_digest" in TOPICS
    out = render.render("audit_digest", digest(), NOW)
    assert out.subject == "[Lockbox] Daily audit checkpoint for Contoso Ltd: record 1234"
    for part in (out.text, out.html):
        assert "1234" in part and HASH in part
        assert "2026-01-06 08:59 UTC" in part
        assert "key_0123456789abcdefghjkmnpqrs" in part
        assert "contains no links" in part
    assert_no_links(out.subject, out.text, out.html)


def test_hostile_names_stay_inert() -> None:
    out = render.render(
        "audit_digest", digest(tenant_name=HOSTILE + "\r\nBcc: x@evil.example"), NOW
    )
    assert_no_links(out.subject, out.text, out.html)
    assert "<script>" not in out.html and "\n" not in out.subject
    # and with a request's payload (what every topic is rendered with elsewhere)
    assert_no_links(*render.render("audit_digest", payload(), NOW).__dict__.values())
