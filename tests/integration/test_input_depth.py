"""Identifiers, text, times and cursors are checked by the service, whatever adapter calls it.

The same hostile values go in through the service functions, the HTTP API and the
``lockbox`` command, on SQLite and PostgreSQL: each is refused with a
``ValidationError`` naming the field, never a database error (PostgreSQL refuses
a NUL in a text parameter, so a NUL that reached a query would be a 500), and
nothing is written.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from lockbox.api.app import create_app
from lockbox.cli import main as cli_main
from lockbox.domain.errors import ValidationError
from lockbox.service import (
    access,
    audit,
    cases,
    outbox,
    requests,
    tenants,
    tokens,
    users,
    webhooks,
)
from lockbox.store import tables as t
from lockbox.store.repositories import encode_cursor
from tests.access.helpers import ALICE, approved
from tests.conftest import World

BAD_IDS = {
    "nul": "req_\x00",
    "long": "x" * 5000,
    "escape": "req_\x1b[2J",
    "c1": "req_\x9b2J",
    "bidi": "req_\u202emoc",
}
#: Text with each kind of forbidden character, and what the refusal says about it.
BAD_TEXT = {
    "nul": ("Mailbox\x00 does not sync", "U+0000"),
    "c1": ("Mailbox\x85does not sync", "U+0085"),
    "bidi": ("Mailbox \u202ecnys ton seod", "bidirectional"),
    "isolate": ("Mailbox \u2067x\u2069 sync", "bidirectional"),
    "mark": ("Mailbox \u200f sync", "bidirectional"),
}
NOT_UTC = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-23)))


def _audit_count(world: World) -> int:
    with world.app.read() as tx:
        return int(tx.conn.execute(select(func.count()).select_from(t.audit_events)).scalar_one())


Call = Callable[[World, str], object]

SERVICE_CALLS: dict[str, tuple[Call, str]] = {
    "get_request": (lambda w, v: requests.get_request(w.app, w.engineer, v), "request_id"),
    "cancel_request": (lambda w, v: requests.cancel_request(w.app, w.engineer, v), "request_id"),
    "close_request": (lambda w, v: requests.close_request(w.app, w.engineer, v), "request_id"),
    "review_request": (
        lambda w, v: requests.review_request(w.app, w.manager, v, approve=True),
        "request_id",
    ),
    "list_requests.case": (
        lambda w, v: requests.list_requests(w.app, w.manager, case_id=v),
        "case_id",
    ),
    "list_requests.tenant": (
        lambda w, v: requests.list_requests(w.app, w.manager, tenant=v),
        "tenant",
    ),
    "list_requests.requester": (
        lambda w, v: requests.list_requests(w.app, w.manager, requester=v),
        "requester",
    ),
    "list_requests.cursor": (
        lambda w, v: requests.list_requests(w.app, w.manager, cursor=v),
        "cursor",
    ),
    "submit_request.case": (
        lambda w, v: requests.submit_request(
            w.app,
            w.engineer,
            tenant="contoso",
            case_id=v,
            resources=[ALICE],
            access_level="read",
            justification="Inspect the sync state",
        ),
        "case_id",
    ),
    "get_case": (lambda w, v: cases.get_case(w.app, w.engineer, v), "case_id"),
    "close_case": (lambda w, v: cases.close_case(w.app, w.manager, v), "case_id"),
    "open_case.tenant": (
        lambda w, v: cases.open_case(w.app, w.engineer, tenant=v, title="Sync"),
        "tenant",
    ),
    "open_case.engineer": (
        lambda w, v: cases.open_case(w.app, w.manager, tenant="contoso", title="x", engineer=v),
        "engineer",
    ),
    "get_tenant": (lambda w, v: tenants.get_tenant(w.app, w.provider_admin, v), "tenant"),
    "get_user": (lambda w, v: users.get_user(w.app, w.provider_admin, v), "user"),
    "set_active": (lambda w, v: users.set_active(w.app, w.contoso_admin, v, False), "user"),
    "revoke_token": (lambda w, v: tokens.revoke_token(w.app, w.engineer, v), "token_id"),
    "list_tokens": (lambda w, v: tokens.list_tokens(w.app, w.provider_admin, v), "user"),
    "get_webhook": (lambda w, v: webhooks.get_webhook(w.app, w.contoso_admin, v), "webhook_id"),
    "delete_webhook": (
        lambda w, v: webhooks.delete_webhook(w.app, w.contoso_admin, v),
        "webhook_id",
    ),
    "list_webhooks": (
        lambda w, v: webhooks.list_webhooks(w.app, w.provider_admin, tenant=v),
        "tenant",
    ),
    "register_webhook": (
        lambda w, v: webhooks.register(
            w.app, w.provider_admin, url="https://hooks.example/x", tenant=v, resolve=_no_dns
        ),
        "tenant",
    ),
    "get_message": (lambda w, v: outbox.get_message(w.app, w.provider_admin, v), "message_id"),
    "retry_message": (
        lambda w, v: outbox.retry_message(w.app, w.provider_admin, v),
        "message_id",
    ),
    "list_outbox.request": (
        lambda w, v: outbox.list_outbox(w.app, w.provider_admin, request_id=v),
        "request_id",
    ),
    "list_outbox.tenant": (
        lambda w, v: outbox.list_outbox(w.app, w.provider_admin, tenant=v),
        "tenant",
    ),
    "list_outbox.cursor": (
        lambda w, v: outbox.list_outbox(w.app, w.provider_admin, cursor=v),
        "cursor",
    ),
    "audit.tenant": (lambda w, v: audit.query(w.app, w.contoso_auditor, v), "tenant"),
    "audit.request": (
        lambda w, v: audit.query(w.app, w.contoso_auditor, "contoso", request_id=v),
        "request_id",
    ),
    "audit.actor": (
        lambda w, v: audit.query(w.app, w.contoso_auditor, "contoso", actor_id=v),
        "actor_id",
    ),
    "audit.operation": (
        lambda w, v: audit.query(w.app, w.contoso_auditor, "contoso", operation=v),
        "operation",
    ),
    "issue_token": (lambda w, v: access.issue_token(w.app, w.engineer, v), "request_id"),
    "check": (
        lambda w, v: access.check(
            w.app,
            w.service,
            engineer="erin@provider.test",
            tenant="contoso",
            resource=ALICE,
            action="read",
            request_id=v,
        ),
        "request_id",
    ),
}


def _no_dns(host: str, _port: int) -> list[str]:
    raise AssertionError(f"no name should be resolved here ({host})")


@pytest.mark.parametrize("kind", sorted(BAD_IDS))
def test_service_entry_points_refuse_bad_identifiers_naming_the_field(
    world: World, kind: str
) -> None:
    approved(world)  # something in every table the calls read
    before = _audit_count(world)
    bad = BAD_IDS[kind]
    for name, (call, field) in SERVICE_CALLS.items():
        with pytest.raises(ValidationError) as err:
            call(world, bad)
        assert err.value.field == field, (name, err.value.message)
    assert _audit_count(world) == before  # nothing was written


@pytest.mark.parametrize("kind", sorted(BAD_TEXT))
def test_free_text_refuses_controls_and_bidi_at_the_service(world: World, kind: str) -> None:
    value, said = BAD_TEXT[kind]
    req = approved(world)
    case = cases.open_case(world.app, world.engineer, tenant="contoso", title="Sync broken")
    before = _audit_count(world)
    attempts: list[tuple[Callable[[], object], str]] = [
        (
            lambda: cases.open_case(world.app, world.engineer, tenant="contoso", title=value),
            "title",
        ),
        (
            lambda: requests.submit_request(
                world.app,
                world.engineer,
                tenant="contoso",
                case_id=case.id,
                resources=[ALICE],
                access_level="read",
                justification=value,
            ),
            "justification",
        ),
        (
            lambda: requests.revoke_request(
                world.app, world.contoso_approver, req.id, comment=value
            ),
            "comment",
        ),
        (lambda: cases.close_case(world.app, world.manager, case.id, comment=value), "comment"),
        (lambda: tokens.create_token(world.app, world.engineer, name=value), "name"),
        (
            lambda: users.create_user(
                world.app,
                world.contoso_admin,
                email="new@contoso.test",
                roles=["auditor"],
                display_name=value,
                tenant="contoso",
            ),
            "display_name",
        ),
    ]
    for attempt, field in attempts:
        with pytest.raises(ValidationError) as err:
            attempt()
        assert err.value.field == field
        assert said in err.value.message
    assert _audit_count(world) == before


def test_times_and_cursors_are_checked_at_the_service(world: World) -> None:
    naive = datetime(2026, 1, 5, 9, 0)  # no zone: the point of the test
    for value in (naive, NOT_UTC):
        with pytest.raises(ValidationError) as err:
            tokens.create_token(world.app, world.engineer, name="ci", expires_at=value)
        assert err.value.field == "expires_at"
        with pytest.raises(ValidationError) as err:
            requests.list_requests(world.app, world.manager, created_before=value)
        assert err.value.field == "created_before"
        with pytest.raises(ValidationError) as err:
            audit.query(world.app, world.contoso_auditor, "contoso", since=value)
        assert err.value.field == "since"
    forged = [
        encode_cursor("2026-01-01T00:00:00+00:00", "req_\x00"),  # well-formed, NUL inside
        encode_cursor("9999-12-31T23:59:59-23:00", "req_x"),  # no UTC equivalent
        "!!not-base64!!",
        "A" * 5000,
    ]
    for cursor in forged:
        with pytest.raises(ValidationError) as err:
            requests.list_requests(world.app, world.manager, cursor=cursor)
        assert err.value.field == "cursor"
        with pytest.raises(ValidationError) as err:
            outbox.list_outbox(world.app, world.provider_admin, cursor=cursor)
        assert err.value.field == "cursor"


def test_the_policy_412_carries_state_and_version(world: World) -> None:
    from lockbox.domain.errors import Conflict

    current = tenants.get_policy(world.app, world.contoso_admin, "contoso")
    tenants.change_policy(
        world.app,
        world.contoso_admin,
        "contoso",
        {"required_approvals": 2},
        expected_version=current.version,
    )
    with pytest.raises(Conflict) as err:
        tenants.change_policy(
            world.app,
            world.contoso_admin,
            "contoso",
            {"required_approvals": 1},
            expected_version=current.version,
        )
    assert err.value.extra == {"state": "enabled", "version": current.version + 1}
    api = TestClient(create_app(world.app))
    secret = tokens.create_token(world.app, world.contoso_admin).secret
    r = api.patch(
        "/v1/tenants/contoso/policy",
        json={"required_approvals": 1},
        headers={"authorization": f"Bearer {secret}", "if-match": f'"{current.version}"'},
    )
    assert r.status_code == 412, r.text
    assert r.json()["version"] == current.version + 1
    assert r.json()["state"] == "enabled"


# -- through the HTTP API ---------------------------------------------------------------


def test_the_api_refuses_the_same_values_naming_the_field(world: World) -> None:
    req = approved(world)
    case = cases.open_case(world.app, world.engineer, tenant="contoso", title="Sync broken")
    client = TestClient(create_app(world.app), raise_server_exceptions=False)

    def bearer(who: Any) -> dict[str, str]:
        return {"authorization": f"Bearer {tokens.create_token(world.app, who).secret}"}

    engineer, approver = bearer(world.engineer), bearer(world.contoso_approver)
    before = _audit_count(world)
    calls: list[tuple[str, str, dict[str, Any], dict[str, str], str]] = []
    for value, _said in BAD_TEXT.values():
        calls += [
            (
                "POST",
                "/v1/cases",
                {"json": {"tenant": "contoso", "title": value}},
                engineer,
                "title",
            ),
            (
                "POST",
                "/v1/requests",
                {
                    "json": {
                        "tenant": "contoso",
                        "case_id": case.id,
                        "resources": [ALICE],
                        "access_level": "read",
                        "justification": value,
                    }
                },
                engineer,
                "justification",
            ),
            (
                "POST",
                f"/v1/requests/{req.id}/revoke",
                {"json": {"comment": value}},
                approver,
                "comment",
            ),
        ]
    for bad in BAD_IDS.values():
        calls += [
            ("GET", f"/v1/requests/{quote(bad, safe='')}", {}, engineer, "request_id"),
            ("GET", "/v1/requests", {"params": {"case": bad}}, engineer, "case"),
            ("GET", "/v1/requests", {"params": {"cursor": bad}}, engineer, "cursor"),
        ]
    calls.append(
        (
            "GET",
            "/v1/requests",
            {"params": {"created_after": "2026-01-05T09:00:00"}},
            engineer,
            "created_after",
        )
    )
    for method, url, kw, headers, field in calls:
        r = client.request(method, url, headers=headers, **kw)
        assert r.status_code == 422, (method, url, r.status_code, r.text[:300])
        assert any(e["field"].endswith(field) for e in r.json()["errors"]), (url, r.text[:300])
    assert _audit_count(world) == before


# -- through the command line ------------------------------------------------------------


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, *args: str
) -> tuple[int, str]:
    monkeypatch.setenv("LOCKBOX_DATABASE_URL", url)
    monkeypatch.delenv("LOCKBOX_SERVER", raising=False)
    monkeypatch.delenv("LOCKBOX_AS", raising=False)
    monkeypatch.setattr(sys, "argv", ["lockbox", *args])
    capsys.readouterr()
    try:
        cli_main.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_cli_refuses_the_same_values_naming_the_field(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = world.app.db.url
    req = approved(world)
    before = _audit_count(world)
    erin, paula = "erin@provider.test", "paula@contoso.test"
    attempts: list[tuple[list[str], str, str]] = []
    for kind in ("long", "escape", "c1", "bidi"):  # a NUL cannot even be an argument
        bad = BAD_IDS[kind]
        attempts += [
            (["--as", erin, "request", "show", bad], "request_id", "request"),
            (["--as", erin, "case", "show", bad], "case_id", "case"),
            (["--as", erin, "token", "revoke", bad], "token_id", "token"),
            (["--as", erin, "request", "list", "--case", bad], "case_id", "list"),
            (["--as", paula, "request", "revoke", bad], "request_id", "revoke"),
        ]
    for value, _said in (BAD_TEXT["c1"], BAD_TEXT["bidi"], BAD_TEXT["mark"]):
        attempts += [
            (
                ["--as", erin, "case", "open", "--tenant", "contoso", "--title", value],
                "title",
                "open",
            ),
            (
                ["--as", paula, "request", "revoke", req.id, "--comment", value],
                "comment",
                "comment",
            ),
        ]
    for args, field, what in attempts:
        code, said = _cli(monkeypatch, capsys, url, *args)
        assert code == 2, (what, code, said)
        assert f"error: {field}: " in said, (what, said)
        assert "database error" not in said
    assert _audit_count(world) == before


# -- CSV exports open as text ------------------------------------------------------------


def test_a_justification_starting_with_a_formula_opens_as_text(world: World) -> None:
    formula = '=HYPERLINK("hxxp://evil.example","Approve")'
    case = cases.open_case(
        world.app, world.engineer, tenant="contoso", title="+1+cmd|' /C calc'!A0"
    )
    requests.submit_request(
        world.app,
        world.engineer,
        tenant="contoso",
        case_id=case.id,
        resources=[ALICE],
        access_level="read",
        justification=formula,
    )
    exported = "".join(audit.export(world.app, world.contoso_auditor, "contoso", "csv"))
    cells = [cell for row in csv.reader(io.StringIO(exported)) for cell in row]
    # No cell of the export starts with a character that makes a spreadsheet evaluate it.
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    # The justification is inside the details cell, a JSON object: it opens as text.
    (details,) = [c for c in cells if "HYPERLINK" in c]
    assert details.startswith("{") and formula.replace('"', '\\"') in details
    # Any cell that would start like a formula is written with a leading apostrophe.
    for value in (formula, "+1+1", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert audit._csv_safe(value) == "'" + value
    assert audit._csv_safe("plain") == "plain"
    assert audit._csv_safe(None) == ""


def test_a_csv_cell_that_starts_with_a_formula_gets_an_apostrophe(world: World) -> None:
    # An actor id is ours and never starts with "=", but the rule covers every cell:
    # check it on an export row built from a record whose operation would.
    from lockbox.domain.audit import AuditRecord

    record = AuditRecord(
        id="evt_x",
        tenant_id=world.contoso,
        seq=1,
        at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        actor_id="=cmd",
        actor_kind="user",
        operation="@op",
        request_id="-1",
        details={"justification": "=1+1"},
    )
    row = record.as_dict()
    cells = [audit._csv_safe(row[c]) for c in ("actor_id", "operation", "request_id")]
    assert cells == ["'=cmd", "'@op", "'-1"]
