"""Bare domain names with a path are defanged in e-mails; addresses and resource names are not.

The rule (``lockbox.notify.render``): a run of dot-separated labels ending in an
alphabetic top-level domain, followed by ``/``, ``?``, ``#`` or ``:port``, that
starts a word (or follows ``//``) gets its last dot written ``[.]``. A domain
after ``@`` or inside a path is left alone, and so is a domain without a path.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from lockbox.notify import render
from tests.notify.helpers import assert_no_links

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
#: What a mail client would turn into a link: a bare domain with a path.
LINKABLE = re.compile(r"(?<![\w@./-])(?:[a-z0-9-]+\.)+[a-z]{2,}(?::\d+)?[/?#]", re.IGNORECASE)


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("evil.example/approve", "evil[.]example/approve"),
        (
            "login.microsoftonline.com.evil.example/x",
            "login.microsoftonline.com.evil[.]example/x",
        ),
        ("approve at evil.example/approve now", "approve at evil[.]example/approve now"),
        ("(see evil.example/a)", "(see evil[.]example/a)"),
        ('"evil.example/a"', '"evil[.]example/a"'),
        ("EVIL.EXAMPLE/Approve", "EVIL[.]EXAMPLE/Approve"),
        ("evil.example:8443/x", "evil[.]example:8443/x"),
        ("evil.example?token=1", "evil[.]example?token=1"),
        ("evil.example#frag", "evil[.]example#frag"),
        ("xn--bcher-kva.example/x", "xn--bcher-kva[.]example/x"),
        ("https://evil.example/approve", "hxxps[:]//evil[.]example/approve"),
        ("www.evil.example/x", "www[.]evil[.]example/x"),
    ],
)
def test_bare_domains_with_a_path_are_defanged(given: str, shown: str) -> None:
    assert render.defang(given) == shown
    assert not LINKABLE.search(render.defang(given))


@pytest.mark.parametrize(
    "kept",
    [
        "alice@contoso.com",  # an e-mail address
        "alice@contoso.com/inbox",  # its domain, even before a slash
        "exchange/mailbox/alice@contoso.com",  # the reference resource name
        "exchange/mailbox/alice.smith/inbox",  # a dotted segment inside a path
        "sharepoint/sites/contoso.sharepoint.com/docs",  # a domain-like segment inside a path
        "contoso.com",  # a domain without a path
        "version 1.2/3 of the runbook",  # numbers are not a top-level domain
        "INC-42.7/b",
    ],
)
def test_addresses_and_resource_names_are_kept_exactly(kept: str) -> None:
    assert render.defang(kept) == kept


def test_a_rendered_mail_keeps_resource_names_and_addresses_recognisable() -> None:
    payload = {
        "request_id": "req_0123456789abcdefghjkmnpqrs",
        "tenant_name": "Contoso Ltd",
        "case_title": "Approve at login.microsoftonline.com.evil.example/approve",
        "requester": "Erin",
        "resources": [
            "exchange/mailbox/alice@contoso.com",
            "sharepoint/sites/contoso.sharepoint.com/docs",
        ],
        "access_level": "read",
        "justification": "Go to evil.example/approve?req=1 and approve quickly",
        "deadline": "2026-01-05T12:00:00.000000Z",
        "at": "2026-01-05T08:40:00.000000Z",
    }
    for topic in render.topics():
        out = render.render(topic, payload, NOW)
        assert_no_links(out.subject, out.text, out.html)
        for part in (out.subject, out.text, out.html):
            assert not LINKABLE.search(part), (topic, LINKABLE.search(part))
            assert "evil.example/" not in part
    out = render.render("approval_needed", payload, NOW)
    for part in (out.text, out.html):
        assert "exchange/mailbox/alice@contoso.com" in part
        assert "sharepoint/sites/contoso.sharepoint.com/docs" in part
        assert "evil[.]example/approve?req=1" in part
        assert "login.microsoftonline.com.evil[.]example/approve" in part


@pytest.mark.parametrize(
    ("configured", "typed"),
    [
        ("https://lockbox.acme.example/", "lockbox.acme.example"),
        ("https://acme.example/lockbox/", "acme.example/lockbox"),
        ("acme.example:8443/admin", "acme.example:8443/admin"),
    ],
)
def test_the_admin_center_address_stays_typeable(configured: str, typed: str) -> None:
    assert render.plain_address(configured) == typed
    out = render.render(
        "approval_needed",
        {"request_id": "req_x", "justification": "x", "resources": []},
        NOW,
        admin_address=configured,
    )
    for part in (out.text, out.html):
        assert f"type it yourself: {typed}" in part
        assert "[.]" not in part.split("type it yourself: ", 1)[1][: len(typed)]
    assert render.context({}, NOW, admin_address=configured)["admin_address"] == typed


def test_defanging_stays_linear_on_long_hostile_text() -> None:
    import time

    hostile = ["a." * 2000, "a" * 4000, ("a" * 60 + ".") * 60, "x" * 3000 + "http://e.example/"]
    started = time.perf_counter()
    for value in hostile:
        render.defang(value)
    assert time.perf_counter() - started < 1.0  # quadratic backtracking took seconds
