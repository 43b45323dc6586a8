"""Free text and identifiers refuse C1 controls and bidirectional formatting characters."""

from __future__ import annotations

import pytest

from lockbox.domain import ids, text
from lockbox.domain.errors import ValidationError

C1 = [chr(c) for c in range(0x80, 0xA0)]
BIDI = [
    "\u061c",  # ARABIC LETTER MARK
    "\u200e",  # LEFT-TO-RIGHT MARK
    "\u200f",  # RIGHT-TO-LEFT MARK
    *(chr(c) for c in range(0x202A, 0x202F)),  # embeddings and overrides (LRE … RLO)
    *(chr(c) for c in range(0x2066, 0x206A)),  # isolates (LRI, RLI, FSI, PDI)
]


@pytest.mark.parametrize("char", C1, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("multiline", [True, False])
def test_c1_controls_are_refused_like_c0(char: str, multiline: bool) -> None:
    with pytest.raises(ValidationError) as err:
        text.text(f"fine{char}text", "justification", max_len=100, multiline=multiline)
    assert err.value.field == "justification"
    assert f"control characters (U+{ord(char):04X})" in err.value.message


@pytest.mark.parametrize("char", BIDI, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("multiline", [True, False])
def test_bidirectional_formatting_is_refused_naming_the_code_point(
    char: str, multiline: bool
) -> None:
    # "Trojan Source": the approver would read another order than the audit log stores.
    with pytest.raises(ValidationError) as err:
        text.text(f"read {char}etadpu{char} only", "title", max_len=100, multiline=multiline)
    assert err.value.field == "title"
    assert "bidirectional" in err.value.message
    assert f"U+{ord(char):04X}" in err.value.message


def test_comments_and_required_text_use_the_same_rule() -> None:
    with pytest.raises(ValidationError) as err:
        text.comment("ok \u202e kO")
    assert err.value.field == "comment"
    with pytest.raises(ValidationError):
        text.required_text("x\u0085y", "name", max_len=50, multiline=False)


@pytest.mark.parametrize(
    "value",
    [
        "Zoë's mailbox — ça ne synchronise pas",
        "邮箱无法同步",
        "صندوق البريد لا يتزامن",  # Arabic letters themselves are fine: only the marks are not
        "שלום",
        "emoji 📬 ok",
        "non\u00a0breaking space and soft\u00adhyphen",  # U+00A0, U+00AD are past the C1 block
    ],
)
def test_ordinary_text_in_any_script_is_kept(value: str) -> None:
    assert text.text(value, "justification", max_len=200) == value


def test_line_breaks_and_tabs_only_in_multiline_text() -> None:
    assert text.text("line 1\n\tline 2", "justification", max_len=100) == "line 1\n\tline 2"
    with pytest.raises(ValidationError):
        text.text("line 1\nline 2", "title", max_len=100, multiline=False)
    assert text.forbidden("a\u2028b", multiline=True) is not None  # line separator: never


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("req_\x00", "control characters (U+0000)"),
        ("req_\x85", "control characters (U+0085)"),
        ("req_\u202e", "bidirectional"),
        ("x" * 5000, "at most 80 characters"),
        ("req x", "is not a request id (req_…)"),
        ("", "is required"),
    ],
)
def test_ids_are_checked_with_the_same_words(value: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        ids.validate_id(value, "request", "request_id")
    assert err.value.field == "request_id"
    assert message in err.value.message


def test_valid_ids_refs_and_cursors_pass() -> None:
    fresh = ids.new_id("request")
    assert ids.validate_id(fresh, "request", "request_id") == fresh
    assert ids.validate_id("contoso", "tenant", "tenant") == "contoso"
    assert ids.validate_ref("paula+ops@contoso.test", "user") == "paula+ops@contoso.test"
    assert ids.optional_id(None, "case", "case_id") is None
    assert ids.validate_cursor("") is None
    assert ids.validate_cursor("eyJhIjoxfQ") == "eyJhIjoxfQ"
    for bad in ("x" * 501, "a b", "a\x00"):
        with pytest.raises(ValidationError) as err:
            ids.validate_cursor(bad)
        assert err.value.field == "cursor"
    with pytest.raises(ValidationError) as err:
        ids.validate_ref("a" * 321, "user")
    assert err.value.field == "user"
    with pytest.raises(ValidationError):
        ids.validate_id(42, "request", "request_id")
