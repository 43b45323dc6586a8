"""Help-desk integrations over HTTP: managing them, and their signed ticket events opening,
updating and closing cases (docs/helpdesk.md).

Every refusal is checked to leave the database exactly as it was; repeats and events out
of order are checked to be harmless; a ticket closed in the help desk ends access at once,
as the online check sees it.
"""

from __future__ import annotations

import base64
import json
import sys
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from lockbox.domain.errors import ValidationError
from lockbox.domain.roles import Principal
from lockbox.sdk.webhooks import sign
from lockbox.service import cases, helpdesk, requests
from lockbox.store import tables as t
from tests.access.helpers import ALICE
from tests.api.conftest import Api
from tests.conftest import World

PROBLEM = "application/problem+json"
ERIN = "erin@provider.test"
EDDIE = "eddie@provider.test"
T0 = "2026-01-05T08:00:00Z"
_ids = count(1)


# -- helpers ----------------------------------------------------------------------------------


def add_integration(api: Api, name: str = "Zendesk") -> tuple[str, str]:
    r = api.call("provider_admin", "POST", "/v1/integrations", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["secret"]


def event(
    kind: str = "ticket.opened",
    ticket: str = "4521",
    *,
    updated_at: str = T0,
    title: str | None = "Alice's mailbox does not sync",
    tenant: str | None = "contoso",
    engineer: str | None = ERIN,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": ticket, "updated_at": updated_at, **extra}
    for key, value in (("title", title), ("tenant", tenant), ("engineer", engineer)):
        if value is not None:
            body[key] = value
    return {"type": kind, "ticket": body}


def signed(
    secret: str,
    body: bytes,
    *,
    msg_id: str | None = None,
    at: datetime | None = None,
    world: World | None = None,
) -> dict[str, str]:
    """Standard Webhooks headers, signed by the SDK's own signer (an independent one)."""
    now = at if at is not None else (world.clock.now() if world else None)
    assert now is not None
    msg_id = msg_id or f"msg_test{next(_ids)}"
    stamp = int(now.timestamp())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, msg_id, stamp, body),
    }


def deliver(
    api: Api,
    integration: tuple[str, str],
    payload: dict[str, Any] | bytes,
    *,
    msg_id: str | None = None,
    secret: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    integration_id, own_secret = integration
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = headers or signed(secret or own_secret, body, msg_id=msg_id, world=api.world)
    return api.client.post(f"/v1/integrations/{integration_id}/events", content=body, headers=sent)


def fingerprint(world: World) -> dict[str, Any]:
    """Everything an event could change: rows of every table involved, cases and requests."""
    with world.app.db.engine.connect() as conn:
        counts = {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (
                t.cases,
                t.access_requests,
                t.audit_events,
                t.outbox,
                t.helpdesk_deliveries,
                t.helpdesk_tickets,
            )
        }
        rows = {
            "cases": sorted(
                tuple(r)
                for r in conn.execute(select(t.cases.c.id, t.cases.c.status, t.cases.c.title))
            ),
            "requests": sorted(
                tuple(r)
                for r in conn.execute(select(t.access_requests.c.id, t.access_requests.c.state))
            ),
            "tickets": sorted(
                tuple(str(v) for v in r) for r in conn.execute(select(t.helpdesk_tickets))
            ),
        }
    return {**counts, **rows}


def case_of(world: World, case_id: str) -> Any:
    return cases.get_case(world.app, world.manager, case_id)


def check(api: Api, engineer: Principal) -> dict[str, Any]:
    r = api.call(
        "service",
        "POST",
        "/v1/access/check",
        json={"engineer": engineer.id, "tenant": "contoso", "resource": ALICE, "action": "read"},
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def audit_ops(world: World, chain: str) -> list[tuple[str, str, str]]:
    with world.app.db.engine.connect() as conn:
        rows = conn.execute(
            select(
                t.audit_events.c.operation, t.audit_events.c.actor_kind, t.audit_events.c.details
            )
            .where(t.audit_events.c.tenant_id == chain)
            .order_by(t.audit_events.c.seq)
        )
        return [(r[0], r[1], r[2]) for r in rows]


# -- managing integrations ----------------------------------------------------------------------


def test_the_provider_admin_manages_integrations_and_each_change_is_audited(api: Api) -> None:
    integration_id, secret = add_integration(api)
    assert integration_id.startswith("hdi_")
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:], validate=True)) >= 24

    listed = api.call("provider_admin", "GET", "/v1/integrations").json()["items"]
    assert [i["id"] for i in listed] == [integration_id]
    assert "secret" not in listed[0] and secret not in json.dumps(listed)
    assert listed[0]["events_path"] == f"/v1/integrations/{integration_id}/events"
    one = api.call("provider_admin", "GET", f"/v1/integrations/{integration_id}")
    assert one.status_code == 200 and secret not in one.text

    taken = api.call("provider_admin", "POST", "/v1/integrations", json={"name": "ZENDESK"})
    assert taken.status_code == 409 and taken.json()["field"] == "name"

    rotated = api.call(
        "provider_admin",
        "POST",
        f"/v1/integrations/{integration_id}/rotate",
        json={"keep_previous_seconds": 0},
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != secret

    gone = api.call("provider_admin", "DELETE", f"/v1/integrations/{integration_id}")
    assert gone.status_code == 204
    assert (
        api.call("provider_admin", "GET", f"/v1/integrations/{integration_id}").status_code == 404
    )

    ops = [(op, kind) for op, kind, _ in audit_ops(api.world, "provider")]
    assert ("integration.create", "user") in ops
    assert ("integration.rotate", "user") in ops
    assert ("integration.delete", "user") in ops
    assert all(secret not in details for _, _, details in audit_ops(api.world, "provider"))


@pytest.mark.parametrize(
    "who", ["engineer", "manager", "service", "contoso_admin", "contoso_auditor"]
)
def test_nobody_else_manages_integrations(api: Api, who: str) -> None:
    integration_id, _ = add_integration(api)
    before = fingerprint(api.world)
    create = api.call(who, "POST", "/v1/integrations", json={"name": "Mine"})
    assert create.status_code == 403 and create.headers["content-type"].startswith(PROBLEM)
    assert api.call(who, "GET", "/v1/integrations").status_code == 403
    # One by its id is invisible: exactly like a missing one.
    missing = "hdi_" + "0" * 26
    for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/rotate")):
        seen = api.call(who, method, f"/v1/integrations/{integration_id}{suffix}")
        absent = api.call(who, method, f"/v1/integrations/{missing}{suffix}")
        assert seen.status_code == absent.status_code == 404
        assert seen.json() == absent.json()
    assert api.call(None, "GET", "/v1/integrations").status_code == 401
    assert fingerprint(api.world) == before


# -- the signature ----------------------------------------------------------------------------


def test_wrong_missing_and_stale_signatures_are_refused_and_change_nothing(api: Api) -> None:
    world = api.world
    integration = add_integration(api)
    secret = integration[1]
    body = json.dumps(event()).encode()
    now = world.clock.now()
    _, other_secret = add_integration(api, "ServiceNow")
    before = fingerprint(world)

    good = signed(secret, body, world=world)
    refusals: dict[str, dict[str, str]] = {
        "another integration's secret": signed(other_secret, body, world=world),
        "a signature of another body": {
            **good,
            "webhook-signature": sign(secret, good["webhook-id"], int(now.timestamp()), b"{}"),
        },
        "a signature of another id": {**good, "webhook-id": "msg_other"},
        "a v2 signature": {**good, "webhook-signature": "v2," + good["webhook-signature"][3:]},
        "a mangled signature": {**good, "webhook-signature": good["webhook-signature"][:-2]},
        "five minutes and a second old": signed(
            secret, body, at=now - timedelta(minutes=5, seconds=1)
        ),
        "from the future": signed(secret, body, at=now + timedelta(minutes=6)),
        "a timestamp that is no number": {**good, "webhook-timestamp": "1.7e9"},
        "an id over 200 characters": signed(secret, body, msg_id="m" * 201, world=world),
    }
    for header in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        refusals[f"no {header}"] = {k: v for k, v in good.items() if k != header}
    for what, headers in refusals.items():
        r = deliver(api, integration, body, headers=headers)
        assert r.status_code == 401, (what, r.text)
        assert r.headers["content-type"].startswith(PROBLEM), what
        assert r.json()["type"] == "urn:lockbox:problem:authentication_failed", what

    # An unknown integration answers exactly like a wrong signature: existence is not told.
    unknown = api.client.post(f"/v1/integrations/hdi_{'0' * 26}/events", content=body, headers=good)
    wrong = deliver(api, integration, body, headers=signed(other_secret, body, world=world))
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    assert fingerprint(world) == before

    # The clock moved: the very delivery that is refused now was fine then.
    world.clock.advance(timedelta(minutes=10))
    late = deliver(api, integration, body, headers=good)
    assert late.status_code == 401 and "5 minutes" in late.json()["detail"]
    assert fingerprint(world) == before
    # … and within the tolerance it is accepted.
    world.clock.advance(timedelta(minutes=-6))
    assert deliver(api, integration, body, headers=good).status_code == 200


def test_a_signature_made_with_the_standardwebhooks_package_is_accepted(api: Api) -> None:
    standardwebhooks = pytest.importorskip("standardwebhooks")
    integration_id, secret = add_integration(api)
    body = json.dumps(event()).encode()
    now = api.world.clock.now()
    signature = standardwebhooks.Webhook(secret).sign("msg_reference", now, body.decode())
    r = api.client.post(
        f"/v1/integrations/{integration_id}/events",
        content=body,
        headers={
            "webhook-id": "msg_reference",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": f"v1,bm90IGl0 {signature}",  # two: one wrong, one right
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "opened"


def test_a_rotated_secret_keeps_verifying_for_its_overlap_only(api: Api) -> None:
    world = api.world
    integration_id, old = add_integration(api)
    r = api.call(
        "provider_admin",
        "POST",
        f"/v1/integrations/{integration_id}/rotate",
        json={"keep_previous_seconds": 3600},
    )
    new = r.json()["secret"]
    assert r.json()["previous_secret_valid_until"] is not None
    pair = (integration_id, new)
    assert deliver(api, pair, event(ticket="1"), secret=old).json()["outcome"] == "opened"
    assert deliver(api, pair, event(ticket="2"), secret=new).json()["outcome"] == "opened"
    world.clock.advance(timedelta(hours=1))
    assert deliver(api, pair, event(ticket="3"), secret=old).status_code == 401
    assert deliver(api, pair, event(ticket="3"), secret=new).status_code == 200
    # Rotating with no overlap (a leaked secret) ends the old one at once.
    rotated = api.call("provider_admin", "POST", f"/v1/integrations/{integration_id}/rotate")
    newest = rotated.json()["secret"]
    api.call(
        "provider_admin",
        "POST",
        f"/v1/integrations/{integration_id}/rotate",
        json={"keep_previous_seconds": 0},
    )
    assert deliver(api, pair, event(ticket="4"), secret=newest).status_code == 401


def test_a_body_over_the_limit_is_refused(api: Api) -> None:
    integration = add_integration(api)
    body = json.dumps(event(title="x" * 70_000)).encode()
    r = deliver(api, integration, body)
    assert r.status_code == 413 and r.headers["content-type"].startswith(PROBLEM)


# -- events -----------------------------------------------------------------------------------


def test_an_opened_ticket_opens_a_case_acting_as_the_integration(api: Api) -> None:
    world = api.world
    integration = add_integration(api)
    r = deliver(api, integration, event())
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "opened" and r.json()["ticket_id"] == "4521"
    case = case_of(world, r.json()["case_id"])
    assert case.tenant_id == world.contoso and case.engineer_id == world.engineer.id
    assert case.title == "Alice's mailbox does not sync" and case.reference == "4521"
    assert case.opened_by == integration[0]
    opened = [d for op, kind, d in audit_ops(world, world.contoso) if op == "case.opened"]
    assert len(opened) == 1
    details = json.loads(opened[0])
    assert details["integration_id"] == integration[0] and details["ticket_id"] == "4521"
    kinds = {kind for op, kind, _ in audit_ops(world, world.contoso) if op == "case.opened"}
    assert kinds == {"integration"}
    # The assigned engineer works the case as any other: a request on it is theirs to make.
    req = requests.submit_request(
        world.app,
        world.engineer,
        tenant="contoso",
        case_id=case.id,
        resources=[ALICE],
        access_level="read",
        justification="Inspect the sync state",
    )
    assert req.case_id == case.id


def test_a_numeric_ticket_id_and_help_desk_time_formats_are_understood(api: Api) -> None:
    integration = add_integration(api)
    payload = event(updated_at="2026-01-05T08:00Z")
    payload["ticket"]["id"] = 4521
    assert deliver(api, integration, payload).json()["outcome"] == "opened"
    jira_style = event(kind="ticket.updated", updated_at="2026-01-05T09:00:00.0+0100", title="B")
    assert deliver(api, integration, jira_style).json()["outcome"] == "updated"


def test_the_same_delivery_twice_is_harmless(api: Api) -> None:
    world = api.world
    integration = add_integration(api)
    body = json.dumps(event()).encode()
    headers = signed(integration[1], body, msg_id="msg_once", world=world)
    first = deliver(api, integration, body, headers=headers)
    assert first.json()["outcome"] == "opened"
    after_first = fingerprint(world)
    again = deliver(api, integration, body, headers=headers)
    assert again.status_code == 200
    assert again.json() == {**first.json(), "outcome": "duplicate"}
    # The help desk's retry: the same id, signed anew a minute later.
    world.clock.advance(timedelta(minutes=1))
    retry = deliver(api, integration, body, msg_id="msg_once")
    assert retry.json()["outcome"] == "duplicate"
    assert fingerprint(world) == after_first
    # A close delivered twice closes once.
    closed = json.dumps(event("ticket.closed", updated_at="2026-01-05T08:30:00Z")).encode()
    close_headers = signed(integration[1], closed, msg_id="msg_close", world=world)
    assert deliver(api, integration, closed, headers=close_headers).json()["outcome"] == "closed"
    after_close = fingerprint(world)
    assert deliver(api, integration, closed, headers=close_headers).json()["outcome"] == (
        "duplicate"
    )
    assert fingerprint(world) == after_close


def test_updates_apply_in_the_ticket_s_order_whatever_order_they_arrive_in(api: Api) -> None:
    world = api.world
    integration = add_integration(api)
    case_id = deliver(api, integration, event()).json()["case_id"]
    newer = event(
        "ticket.updated", updated_at="2026-01-05T08:20:00Z", title="Sync broken", engineer=EDDIE
    )
    older = event("ticket.updated", updated_at="2026-01-05T08:10:00Z", title="Old subject")
    assert deliver(api, integration, newer).json()["outcome"] == "updated"
    case = case_of(world, case_id)
    assert case.title == "Sync broken" and case.engineer_id == world.engineer2.id
    before = fingerprint(world)
    stale = deliver(api, integration, older)
    assert stale.status_code == 200 and stale.json()["outcome"] == "ignored_stale"
    assert stale.json()["case_id"] == case_id
    after = fingerprint(world)
    assert after["helpdesk_deliveries"] == before["helpdesk_deliveries"] + 1  # recorded only
    assert {k: v for k, v in after.items() if k != "helpdesk_deliveries"} == {
        k: v for k, v in before.items() if k != "helpdesk_deliveries"
    }
    assert case_of(world, case_id).title == "Sync broken"
    # A late "opened" is older still: ignored too.
    assert deliver(api, integration, event(updated_at="2026-01-05T07:59:00Z")).json()[
        "outcome"
    ] == ("ignored_stale")
    # The same state again changes nothing (and writes no audit record).
    same = event(
        "ticket.updated", updated_at="2026-01-05T08:25:00Z", title="Sync broken", engineer=EDDIE
    )
    audit_before = fingerprint(world)["audit_events"]
    assert deliver(api, integration, same).json()["outcome"] == "unchanged"
    assert fingerprint(world)["audit_events"] == audit_before
    updated = [
        json.loads(d) for op, _, d in audit_ops(world, world.contoso) if op == "case.updated"
    ]
    assert len(updated) == 1
    assert updated[0]["title"] == "Sync broken"
    assert updated[0]["previous_title"] == "Alice's mailbox does not sync"
    assert updated[0]["engineer_id"] == world.engineer2.id


def test_an_update_for_a_ticket_never_seen_opens_its_case(api: Api) -> None:
    integration = add_integration(api)
    r = deliver(api, integration, event("ticket.updated", ticket="77"))
    assert r.json()["outcome"] == "opened" and r.json()["case_id"]
    # The "opened" that was overtaken is older: nothing more happens.
    late = deliver(api, integration, event(ticket="77", updated_at="2026-01-05T07:00:00Z"))
    assert late.json()["outcome"] == "ignored_stale"


def test_a_closed_ticket_closes_its_case_and_ends_access_at_once(api: Api) -> None:
    world = api.world
    integration = add_integration(api)
    case_id = deliver(api, integration, event()).json()["case_id"]
    app, erin = world.app, world.engineer
    granted = requests.submit_request(
        app,
        erin,
        tenant="contoso",
        case_id=case_id,
        resources=[ALICE],
        access_level="read",
        justification="Inspect the sync state",
    )
    granted = requests.review_request(app, world.manager, granted.id, approve=True)
    granted = requests.decide_request(app, world.contoso_approver, granted.id, approve=True)
    pending = requests.submit_request(
        app,
        erin,
        tenant="contoso",
        case_id=case_id,
        resources=["exchange/mailbox/bob@contoso.com"],
        access_level="read",
        justification="Compare with another mailbox",
    )
    allowed = check(api, erin)
    assert allowed["allowed"] is True and allowed["request_id"] == granted.id

    r = deliver(api, integration, event("ticket.closed", updated_at="2026-01-05T08:30:00Z"))
    assert r.status_code == 200 and r.json() == {
        "outcome": "closed",
        "ticket_id": "4521",
        "case_id": case_id,
        "webhook_id": r.json()["webhook_id"],
    }
    assert case_of(world, case_id).status.value == "closed"
    op = world.manager
    assert requests.get_request(app, op, granted.id).state.value == "closed"
    assert requests.get_request(app, op, pending.id).state.value == "canceled"
    denied = check(api, erin)
    assert denied["allowed"] is False and denied["reason"] == "closed"
    closed = [json.loads(d) for o, k, d in audit_ops(world, world.contoso) if o == "case.closed"]
    assert len(closed) == 1 and closed[0]["ticket_id"] == "4521"
    ends = [k for o, k, _ in audit_ops(world, world.contoso) if o == "request.case_closed"]
    assert ends == ["integration", "integration"]
    # Every chain still verifies, the integration's records and their signed receipts included.
    verified = api.call("contoso_auditor", "GET", "/v1/tenants/contoso/audit/verify")
    assert verified.status_code == 200 and verified.json()["ok"] is True, verified.text
    chains = api.call("provider_admin", "GET", "/v1/audit/verify").json()["items"]
    assert chains and all(c["ok"] for c in chains), chains


def test_a_closed_ticket_stays_closed(api: Api) -> None:
    world = api.world
    integration = add_integration(api)
    case_id = deliver(api, integration, event()).json()["case_id"]
    deliver(api, integration, event("ticket.closed", updated_at="2026-01-05T08:30:00Z"))
    before = fingerprint(world)
    for late in (
        event("ticket.updated", updated_at="2026-01-05T09:00:00Z", title="Reopened?"),
        event("ticket.opened", updated_at="2026-01-05T09:05:00Z"),
        event("ticket.closed", updated_at="2026-01-05T09:10:00Z"),
    ):
        r = deliver(api, integration, late)
        assert r.status_code == 200 and r.json()["outcome"] == "ignored_closed"
        assert r.json()["case_id"] == case_id
    after = fingerprint(world)
    assert after["cases"] == before["cases"] and after["audit_events"] == before["audit_events"]
    assert case_of(world, case_id).status.value == "closed"


def test_a_close_that_overtakes_the_open_is_remembered(api: Api) -> None:
    world = api.world
    integration = add_integration(api)
    r = deliver(api, integration, event("ticket.closed", ticket="9", updated_at=T0, title=None))
    assert r.json() == {**r.json(), "outcome": "recorded_closed", "case_id": None}
    cases_before = fingerprint(world)["cases"]
    late_open = deliver(api, integration, event(ticket="9", updated_at="2026-01-05T07:00:00Z"))
    assert late_open.json()["outcome"] == "ignored_closed"
    assert fingerprint(world)["cases"] == cases_before


def test_a_close_is_final_even_when_it_arrives_after_a_newer_update(api: Api) -> None:
    world = api.world
    integration = add_integration(api)
    case_id = deliver(api, integration, event()).json()["case_id"]
    update = event("ticket.updated", updated_at="2026-01-05T08:40:00Z", title="Later")
    assert deliver(api, integration, update).json()["outcome"] == "updated"
    late_close = deliver(api, integration, event("ticket.closed", updated_at=T0))
    assert late_close.json()["outcome"] == "closed"
    assert case_of(world, case_id).status.value == "closed"


def test_a_case_closed_in_lockbox_is_not_reopened_by_its_ticket(api: Api) -> None:
    world = api.world
    integration = add_integration(api)
    case_id = deliver(api, integration, event()).json()["case_id"]
    cases.close_case(world.app, world.engineer, case_id, comment="fixed")
    r = deliver(api, integration, event("ticket.updated", updated_at="2026-01-05T08:40:00Z"))
    assert r.json()["outcome"] == "ignored_closed"
    assert case_of(world, case_id).status.value == "closed"


def test_unknown_tenant_or_engineer_is_422_naming_the_field_and_changes_nothing(
    api: Api,
) -> None:
    world = api.world
    integration = add_integration(api)
    before = fingerprint(world)
    refused = {
        "ticket.tenant": event(tenant="initech"),
        "ticket.engineer": event(engineer="nobody@provider.test"),
    }
    # A manager who is no engineer cannot be assigned a case; nor can a customer.
    refused_too = [event(engineer="mark@provider.test"), event(engineer="paula@contoso.test")]
    for field, payload in refused.items():
        r = deliver(api, integration, payload, msg_id="msg_retry")
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [field]
    for payload in refused_too:
        r = deliver(api, integration, payload, msg_id="msg_retry")
        assert [e["field"] for e in r.json()["errors"]] == ["ticket.engineer"]
    missing = event(engineer=None)
    r = deliver(api, integration, missing, msg_id="msg_retry")
    assert [e["field"] for e in r.json()["errors"]] == ["ticket.engineer"]
    assert fingerprint(world) == before
    # Nothing was recorded either: the corrected event under the same id is applied.
    fixed = deliver(api, integration, event(), msg_id="msg_retry")
    assert fixed.json()["outcome"] == "opened"
    # An update that would move the case to another tenant is refused too.
    moved = event("ticket.updated", updated_at="2026-01-05T09:00:00Z", tenant="fabrikam")
    r = deliver(api, integration, moved)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "ticket.tenant"


def test_malformed_events_are_422_naming_the_field(api: Api) -> None:
    world = api.world
    integration = add_integration(api)
    before = fingerprint(world)
    cases_: list[tuple[Any, str]] = [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        ({"type": "ticket.reopened", "ticket": {"id": "1", "updated_at": T0}}, "type"),
        ({"type": "ticket.opened"}, "ticket"),
        (event(enginer="typo@provider.test"), "ticket.enginer"),
        ({**event(), "extra": 1}, "extra"),
        (event(updated_at="2026-01-05 08:00"), "ticket.updated_at"),
        (event(updated_at="yesterday"), "ticket.updated_at"),
        ({"type": "ticket.opened", "ticket": {"updated_at": T0}}, "ticket.id"),
        ({"type": "ticket.closed", "ticket": {"id": "1"}}, "ticket.updated_at"),
        (event(title="\u202e"), "ticket.title"),
    ]
    for payload, field in cases_:
        r = deliver(api, integration, payload)
        assert r.status_code == 422, (payload, r.text)
        assert r.json()["errors"][0]["field"] == field, (payload, r.json())
    assert fingerprint(world) == before


def test_an_integration_cannot_touch_a_case_it_did_not_open(api: Api) -> None:
    world = api.world
    zendesk = add_integration(api, "Zendesk")
    jira = add_integration(api, "Jira")
    case_id = deliver(api, zendesk, event(ticket="100")).json()["case_id"]
    own = cases.open_case(world.app, world.engineer, tenant="contoso", title="Opened by Erin")

    # Jira's ticket 100 is another ticket: closing it closes nothing of Zendesk's.
    r = deliver(api, jira, event("ticket.closed", ticket="100", updated_at="2026-01-05T09:00:00Z"))
    assert r.json()["outcome"] == "recorded_closed" and r.json()["case_id"] is None
    # Nor can it name a Lockbox case (or anything else) as its ticket.
    for ticket in (case_id, own.id):
        r = deliver(api, jira, event("ticket.closed", ticket=ticket))
        assert r.json()["outcome"] == "recorded_closed" and r.json()["case_id"] is None
    assert case_of(world, case_id).status.value == "open"
    assert case_of(world, own.id).status.value == "open"
    # Zendesk still drives its own case.
    closed = deliver(api, zendesk, event("ticket.closed", ticket="100", updated_at=T0))
    assert closed.json()["outcome"] == "closed" and closed.json()["case_id"] == case_id


def test_a_deleted_integration_s_events_are_refused_and_its_cases_stay(api: Api) -> None:
    world = api.world
    integration = add_integration(api)
    case_id = deliver(api, integration, event()).json()["case_id"]
    assert (
        api.call("provider_admin", "DELETE", f"/v1/integrations/{integration[0]}").status_code
        == 204
    )
    r = deliver(api, integration, event("ticket.closed", updated_at="2026-01-05T09:00:00Z"))
    assert r.status_code == 401
    assert case_of(world, case_id).status.value == "open"
    deleted = [
        json.loads(d) for o, _, d in audit_ops(world, "provider") if o == "integration.delete"
    ]
    assert deleted[0]["open_cases"] == 1


def test_the_openapi_document_describes_the_event_endpoint(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    operation = schema["paths"]["/v1/integrations/{integration_id}/events"]["post"]
    assert operation["operationId"] == "receiveIntegrationEvent"
    assert "security" not in operation
    assert {"200", "401", "413", "422"} <= set(operation["responses"])
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["type"]["enum"] == [
        "ticket.opened",
        "ticket.updated",
        "ticket.closed",
    ]
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}


# -- the command line ------------------------------------------------------------------------


def test_the_cli_adds_lists_rotates_and_deletes_integrations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lockbox.cli.main import main

    monkeypatch.setenv("LOCKBOX_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("LOCKBOX_AS", raising=False)
    monkeypatch.delenv("LOCKBOX_SERVER", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["lockbox", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    assert run("db", "upgrade")[0] == 0
    code, out, err = run("--json", "integration", "add", "Freshdesk")
    assert code == 0, err
    added = json.loads(out)
    assert added["secret"].startswith("whsec_") and added["id"].startswith("hdi_")
    code, out, _ = run("--json", "integration", "list")
    assert [i["name"] for i in json.loads(out)] == ["Freshdesk"] and "whsec_" not in out
    code, out, err = run("integration", "add", "freshdesk")
    assert code == 5 and "already exists" in err  # conflicting change
    code, out, _ = run("--json", "integration", "rotate", added["id"], "--keep-previous", "0")
    assert code == 0 and json.loads(out)["secret"] != added["secret"]
    code, out, _ = run("--json", "integration", "delete", added["id"])
    assert code == 0 and json.loads(out)["deleted"] is True
    code, _, err = run("integration", "delete", added["id"])
    assert code == 3  # not found


def test_the_service_refuses_overlaps_out_of_range(world: World) -> None:
    created = helpdesk.create_integration(world.app, world.provider_admin, name="X")
    with pytest.raises(ValidationError, match="keep_previous_seconds"):
        helpdesk.rotate_secret(
            world.app, world.provider_admin, created.row.id, overlap=timedelta(days=8)
        )
