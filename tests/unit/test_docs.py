"""docs/lifecycle.md is generated from the transition table; it may not drift."""

from __future__ import annotations

from pathlib import Path

from lockbox.domain.lifecycle import TRANSITIONS, render_document

DOC = Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md"


def test_lifecycle_doc_matches_the_code() -> None:
    assert DOC.read_text(encoding="utf-8") == render_document(), (
        "docs/lifecycle.md is stale: regenerate it with `lockbox docs lifecycle > docs/lifecycle.md`"
    )


def test_every_transition_is_in_the_doc() -> None:
    text = DOC.read_text(encoding="utf-8")
    for t in TRANSITIONS:
        source = f"`{t.source.value}`" if t.source else "(new)"
        assert f"| {source} | {t.event.value} | {t.rule.value} |" in text
        for target in t.targets:
            if target is not t.source:
                assert f"--> {target.value}: {t.event.value}" in text
