"""Templates: every topic renders every field, with no link or URL, whatever users typed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.policy import SMTP

import pytest

from lockbox.notify import render
from lockbox.service.notifications import TOPICS
from tests.notify.helpers import assert_no_links

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOSTILE = (
    "Please open http://evil.example/login or HTTPS://evil.example, www.evil.example, "
    '<a href="https://evil.example">click</a> <A HREF=x>y</A> javascript:alert(1) '
    "ftp://files.evil.example <script>alert(1)</script> hxxp is fine"
)


def payload(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "request_id": "req_0123456789abcdefghjkmnpqrs",
        "state": "pending_approval",
        "tenant_id": "ten_0123456789abcdefghjkmnpqrs",
        "tenant_name": "Contoso <a href='http://evil.example'>Ltd</a> www.contoso.example",
        "case_id": "case_0123456789abcdefghjkmnpqrs",
        "case_title": "Sync broken, see https://evil.example/case",
        "case_reference": "INC-42 http://ref.example",
        "requester": "Erin <a href=http://x>",
        "requester_email": "erin@provider.test",
        "resources": ["exchange/mailbox/alice@contoso.com", "files/http://evil.example/x"],
        "access_level": "read",
        "justification": HOSTILE,
        "deadline": "2026-01-05T12:00:00.000000Z",
        "access_deadline": "2026-01-05T13:00:00.000000Z",
        "required_approvals": 2,
        "approvals": 1,
        "at": "2026-01-05T08:40:00.000000Z",
        "event": "review_approve",
        "actor": "Mark www.mark.example",
        "actor_kind": "user",
        "comment": "ok, see http://evil.example\nsecond line <a href=x>",
    }
    data.update(overrides)
    return data


def test_every_topic_has_a_text_and_an_html_template() -> None:
    assert sorted(TOPICS) == render.topics()


@pytest.mark.parametrize("topic", TOPICS)
def test_hostile_input_renders_without_any_link(topic: str) -> None:
    out = render.render(topic, payload(), NOW)
    assert_no_links(out.subject, out.text, out.html)
    assert "<script>" not in out.html and "<script>" not in out.text
    assert "\n" not in out.subject and "\r" not in out.subject


#: Topics about one request (not an account's code, not an audit chain's daily digest).
REQUEST_TOPICS = [t for t in TOPICS if t not in ("password_reset", "audit_digest")]


@pytest.mark.parametrize("topic", REQUEST_TOPICS)
def test_message_says_what_which_where_when_and_what_to_do(topic: str) -> None:
    out = render.render(topic, payload(justification="Inspect the sync state"), NOW)
    for part in (out.text, out.html):
        assert "req_0123456789abcdefghjkmnpqrs" in part
        assert "Contoso" in part
        assert "case_0123456789abcdefghjkmnpqrs" in part
        assert "Sync broken" in part
        assert "exchange/mailbox/alice@contoso.com" in part
        assert "read" in part
        assert "Inspect the sync state" in part
        assert "sign in to the Lockbox admin center yourself" in part
        assert "contains no links" in part
        if topic in (
            "approved",
            "first_use",
            "access_ending",
            "extended",
            "extension_needed",
            "extension_denied",
        ):
            assert "2026-01-05 13:00 UTC (in 4 hours)" in part
        else:
            assert "2026-01-05 12:00 UTC (in 3 hours)" in part
    assert "req_0123456789abcdefghjkmnpqrs" in out.subject


def test_relative_times() -> None:
    assert render.relative(NOW + timedelta(hours=3), NOW) == "in 3 hours"
    assert render.relative(NOW + timedelta(minutes=1), NOW) == "in 1 minute"
    assert render.relative(NOW - timedelta(minutes=20), NOW) == "20 minutes ago"
    assert render.relative(NOW + timedelta(hours=12, minutes=30), NOW) == "in 12 hours 30 minutes"
    assert render.relative(NOW + timedelta(days=3), NOW) == "in 3 days"
    assert render.relative(NOW + timedelta(seconds=20), NOW) == "now"


def test_defang() -> None:
    assert render.defang("http://a.example") == "hxxp[:]//a.example"
    assert render.defang("HTTPS://a.example") == "HXXPS[:]//a.example"
    assert render.defang("www.a.example") == "www[.]a.example"
    assert render.defang('<a href="x">') == '‹a href="x"›'
    assert render.defang("mailto:x@y.example") == "mailto[:]x@y.example"
    assert render.defang("exchange/mailbox/alice@contoso.com") == (
        "exchange/mailbox/alice@contoso.com"
    )
    assert render.defang(3) == 3


def test_html_is_autoescaped() -> None:
    out = render.render("approval_needed", payload(justification="a & b \"q\" 'x'"), NOW)
    assert "a &amp; b &#34;q&#34; &#39;x&#39;" in out.html
    assert "a & b \"q\" 'x'" in out.text


def test_no_header_injection_through_user_text() -> None:
    out = render.render(
        "approval_needed",
        payload(tenant_name="Contoso\r\nBcc: victim@evil.example\r\n\r\nbody"),
        NOW,
    )
    msg = render.build_email(
        row_id="msg_0123456789abcdefghjkmnpqrs",
        recipient="paula@contoso.test",
        sender="Lockbox <lockbox@provider.test>",
        rendered=out,
        now=NOW,
    )
    raw = msg.as_bytes(policy=SMTP)
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in headers and not headers.startswith(b"Bcc:")
    assert msg["Subject"].count("\n") == 0
    assert msg.get_all("To") == ["paula@contoso.test"]


@pytest.mark.parametrize(
    "bad",
    [
        "paula@contoso.test\r\nBcc: x@evil.example",
        "a@b.example, c@d.example",
        "not-an-address",
        "x@localhost\n",
        "",
    ],
)
def test_bad_recipient_addresses_are_refused(bad: str) -> None:
    with pytest.raises(render.InvalidAddress):
        render.address(bad)


def test_message_is_multipart_with_a_stable_message_id() -> None:
    out = render.render("approved", payload(), NOW)
    kwargs = {
        "row_id": "msg_0123456789abcdefghjkmnpqrs",
        "recipient": "erin@provider.test",
        "sender": "Lockbox <lockbox@provider.test>",
        "rendered": out,
    }
    first = render.build_email(**kwargs, now=NOW)  # type: ignore[arg-type]
    again = render.build_email(**kwargs, now=NOW + timedelta(hours=1))  # type: ignore[arg-type]
    assert first["Message-ID"] == again["Message-ID"] == "<msg_0123456789abcdefghjkmnpqrs@lockbox>"
    assert first.get_content_type() == "multipart/alternative"
    kinds = [p.get_content_type() for p in first.iter_parts()]
    assert kinds == ["text/plain", "text/html"]


def test_default_sender_is_a_usable_address() -> None:
    """With no LOCKBOX_MAIL_FROM set, mail must still be sendable (make run relies on it)."""
    from lockbox.config import Settings
    from lockbox.notify.render import address

    assert address(Settings().mail_from).domain.endswith(".localhost")


def test_unusable_sender_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError as SettingsError

    from lockbox.config import Settings

    monkeypatch.setenv("LOCKBOX_MAIL_FROM", "Lockbox <lockbox@localhost>")
    with pytest.raises(SettingsError, match="LOCKBOX_MAIL_FROM"):
        Settings()


def test_the_reset_code_mail_says_who_what_until_when_and_has_no_link() -> None:
    data = payload(
        secret_code="K7QD-3M9X-TW2P",
        user_name="Paula <script>",
        expires_at="2026-01-05T09:30:00.000000Z",
    )
    out = render.render("password_reset", data, NOW)
    assert_no_links(out.subject, out.text, out.html)
    for part in (out.text, out.html):
        assert "K7QD-3M9X-TW2P" in part
        assert "2026-01-05 09:30 UTC (in 30 minutes)" in part
        assert "Use a reset code" in part
        assert "contains no links" in part
        assert "Contoso" in part
    assert "K7QD" not in out.subject  # a subject line shows up in notification previews
    assert "<script>" not in out.html


def test_customer_mail_names_the_provider_and_the_admin_center_as_text() -> None:
    out = render.render(
        "approval_needed",
        payload(requester="Erin"),
        NOW,
        provider_name="Acme Cloud",
        admin_address="https://lockbox.acme.example/",
    )
    for part in (out.text, out.html):
        assert "Acme Cloud&#39;s support engineer Erin asks" in part or (
            "Acme Cloud's support engineer Erin asks" in part
        )
        assert "type it yourself: lockbox.acme.example" in part
    assert_no_links(out.subject, out.text, out.html)
