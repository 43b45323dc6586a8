"""Policy bounds: every window and count has a floor and a ceiling, errors name the field."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lockbox.domain.errors import ValidationError
from lockbox.domain.policy import LockboxPolicy, parse_duration, validate_email

H, M = timedelta(hours=1), timedelta(minutes=1)


def test_defaults() -> None:
    p = LockboxPolicy()
    assert p.enabled is True
    assert (p.approval_window, p.access_window, p.review_window) == (12 * H, 4 * H, 12 * H)
    assert p.required_approvals == 1
    assert p.reminder_fraction == 0.25
    assert p.as_dict()["approval_window_seconds"] == 12 * 3600


@pytest.mark.parametrize("name", ["approval_window", "access_window", "review_window"])
def test_window_bounds(name: str) -> None:
    ok = [15 * M, 7 * 24 * H, 4 * H]
    for value in ok:
        assert getattr(LockboxPolicy().with_changes(**{name: value}), name) == value
    for bad in (
        15 * M - timedelta(seconds=1),
        7 * 24 * H + timedelta(seconds=1),
        timedelta(0),
        -H,
        3600,
    ):
        with pytest.raises(ValidationError) as info:
            LockboxPolicy().with_changes(**{name: bad})
        assert info.value.field == name


def test_required_approvals_bounds() -> None:
    for ok in (1, 10):
        assert LockboxPolicy(required_approvals=ok).required_approvals == ok
    for bad in (0, 11, -1, True, 2.0, "2"):
        with pytest.raises(ValidationError) as info:
            LockboxPolicy(required_approvals=bad)  # type: ignore[arg-type]
        assert info.value.field == "required_approvals"


def test_reminder_fraction_bounds() -> None:
    assert LockboxPolicy(reminder_fraction=0).reminder_fraction == 0
    for bad in (1.0, -0.1, 2):
        with pytest.raises(ValidationError, match="reminder_fraction"):
            LockboxPolicy(reminder_fraction=bad)


def test_notify_emails_validated_and_deduplicated() -> None:
    p = LockboxPolicy(notify_emails=("a@Example.COM", "a@example.com", "b@example.org"))
    assert p.notify_emails == ("a@example.com", "b@example.org")
    for bad in ("no-at-sign", "a@b", "x@example.com\r\nBcc: evil@example.com", "a b@example.com"):
        with pytest.raises(ValidationError) as info:
            LockboxPolicy(notify_emails=("ok@example.com", bad))
        assert info.value.field == "notify_emails[1]"
    with pytest.raises(ValidationError, match="notify_emails"):
        LockboxPolicy(notify_emails=tuple(f"u{i}@example.com" for i in range(21)))
    assert validate_email("  x@EXAMPLE.com ") == "x@example.com"


def test_unknown_setting_refused_by_name() -> None:
    with pytest.raises(ValidationError) as info:
        LockboxPolicy().with_changes(approval_windw=H)
    assert info.value.field == "approval_windw"


def test_with_changes_keeps_the_original() -> None:
    p = LockboxPolicy()
    q = p.with_changes(enabled=False)
    assert p.enabled and not q.enabled


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12h", 12 * H),
        ("90m", 90 * M),
        ("2d", 48 * H),
        ("1h30m", 90 * M),
        ("45s", timedelta(seconds=45)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text, "approval_window") == expected


@pytest.mark.parametrize("text", ["", "12", "h", "12x", "-1h", "1.5h"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_duration(text, "access_window")
    assert info.value.field == "access_window"
