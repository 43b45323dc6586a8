"""``lockbox demo``: DESIGN.md's reference scenario, narrated, on a throw-away database.

A simulated clock moves time forward, so the 12-hour approval window and the
4-hour access window play out in a second. Everything goes through the same
service layer the API and CLI use.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from lockbox.clock import ManualClock
from lockbox.domain import request as domain
from lockbox.domain.resources import Action
from lockbox.domain.roles import Principal
from lockbox.service import audit, cases, requests, sweeper, tenants, users
from lockbox.service.app import Lockbox
from lockbox.store.db import Database, upgrade

console = Console(highlight=False)


def say(clock: ManualClock, text: str) -> None:
    console.print(f"[dim]{clock.now():%a %H:%M}[/]  {text}")


def run_demo(keep: Path | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="lockbox-demo-") as tmp:
        path = keep or Path(tmp) / "demo.db"
        if keep and keep.exists():
            keep.unlink()
        db = Database(f"sqlite:///{path}")
        try:
            upgrade(db)
            return _play(Lockbox(db, ManualClock()))
        finally:
            db.dispose()


def _play(app: Lockbox) -> int:
    clock = app.clock
    if not isinstance(clock, ManualClock):
        raise TypeError("the demo needs a manual clock")
    op = Principal.operator()
    console.rule("Setting the scene")
    contoso = tenants.create_tenant(app, op, slug="contoso", name="Contoso Ltd")
    say(
        clock,
        f"Tenant [b]{contoso.name}[/] onboarded; lockbox on, approval window 12h, access window 4h.",
    )
    eng = users.create_user(
        app,
        op,
        email="erin@provider.example",
        roles=["engineer"],
        display_name="Erin (support engineer)",
    ).principal()
    mgr = users.create_user(
        app,
        op,
        email="mark@provider.example",
        roles=["manager"],
        display_name="Mark (support manager)",
    ).principal()
    alice = users.create_user(
        app,
        op,
        email="it-admin@contoso.example",
        roles=["tenant_admin"],
        tenant="contoso",
        display_name="Ines (Contoso IT admin)",
    ).principal()
    appr = users.create_user(
        app,
        op,
        email="paula@contoso.example",
        roles=["approver"],
        tenant="contoso",
        display_name="Paula (Contoso approver)",
    ).principal()
    say(
        clock,
        "Staff: Erin (engineer), Mark (manager). Contoso: Ines (tenant admin), Paula (approver).",
    )

    console.rule("1-7. The reference scenario")
    case = cases.open_case(app, eng, tenant="contoso", title="Alice's mailbox does not sync")
    say(clock, f"Contoso opens a support case; Erin works it ({case.id}).")
    mailbox = "exchange/mailbox/alice@contoso.example"
    req = requests.submit_request(
        app,
        eng,
        tenant="contoso",
        case_id=case.id,
        resources=[mailbox],
        access_level="read",
        justification="Inspect sync state of Alice's mailbox to find the corrupt item.",
    )
    say(clock, f"Erin asks for [b]read[/] access to {mailbox}: {req.id} is [yellow]{req.state}[/].")
    clock.advance(timedelta(minutes=20))
    req = requests.review_request(
        app, mgr, req.id, approve=True, comment="Justified; forward to customer."
    )
    say(
        clock,
        f"Mark reviews and forwards it: [yellow]{req.state}[/]; Contoso's approvers are e-mailed (no links).",
    )
    clock.advance(timedelta(hours=1))
    req = requests.decide_request(app, appr, req.id, approve=True, comment="OK for today.")
    say(
        clock,
        f"Paula approves in the admin center: [green]{req.state}[/] until {req.access_deadline:%H:%M} UTC.",
    )
    _show_check(clock, req, eng.id, mailbox, Action.READ)
    _show_check(clock, req, eng.id, "exchange/mailbox/bob@contoso.example", Action.READ)
    _show_check(clock, req, eng.id, mailbox, Action.WRITE)
    clock.advance(timedelta(hours=1))
    req = requests.close_request(app, eng, req.id, comment="Corrupt item removed; sync works.")
    say(clock, f"Erin fixes the problem and closes the request: [blue]{req.state}[/].")
    _show_check(clock, req, eng.id, mailbox, Action.READ)
    cases.close_case(app, mgr, case.id)
    say(clock, "Mark closes the support case.")

    console.rule("Ending 2: nobody approves")
    case2 = cases.open_case(app, eng, tenant="contoso", title="Calendar permissions")
    req2 = requests.submit_request(
        app,
        eng,
        tenant="contoso",
        case_id=case2.id,
        resources=["exchange/calendar/*"],
        access_level="read",
        justification="Check delegate permissions on shared calendars.",
    )
    req2 = requests.review_request(app, mgr, req2.id, approve=True)
    say(clock, f"A second request {req2.id} waits for Contoso: [yellow]{req2.state}[/].")
    clock.advance(timedelta(hours=12))
    view = requests.get_request(app, eng, req2.id, history=False)
    say(
        clock,
        f"12 hours pass without a decision: it reads as [red]{view.state}[/] even before the sweeper runs.",
    )
    result = sweeper.sweep_deadlines(app)
    say(
        clock,
        f"The sweeper records {result.expired} expiry, with an audit record and a mail to Erin.",
    )

    console.rule("Ending 3: the access window runs out")
    req3 = requests.submit_request(
        app,
        eng,
        tenant="contoso",
        case_id=case2.id,
        resources=["exchange/calendar/*"],
        access_level="read",
        justification="Second attempt: check delegate permissions.",
    )
    requests.review_request(app, mgr, req3.id, approve=True)
    req3 = requests.decide_request(app, alice, req3.id, approve=True)
    say(
        clock,
        f"Ines approves {req3.id}: [green]{req3.state}[/] until {req3.access_deadline:%H:%M} UTC.",
    )
    _show_check(clock, req3, eng.id, "exchange/calendar/room-12", Action.READ)
    clock.advance(timedelta(hours=4))
    _show_check(clock, req3, eng.id, "exchange/calendar/room-12", Action.READ)
    sweeper.sweep_deadlines(app)
    say(clock, "The sweeper records access_ended; Ines hears that the access she granted ended.")

    console.rule("The audit log")
    auditor = users.create_user(
        app, op, email="audit@contoso.example", roles=["auditor"], tenant="contoso"
    ).principal()
    records, _ = audit.query(app, auditor, "contoso", limit=1000)
    for record in records:
        console.print(
            f"  {record.seq:>3}  {record.at:%H:%M}  {record.operation:<24} {record.actor_id}"
        )
    reports = audit.verify(app, op)
    for report in reports:
        console.print(report.summary())
    return 0 if all(r.ok for r in reports) else 1


def _show_check(
    clock: ManualClock, req: domain.AccessRequest, engineer: str, resource: str, action: Action
) -> None:
    decision = domain.check_access(req, engineer, resource, action, clock.now())
    verdict = "[green]ALLOW[/]" if decision.allowed else f"[red]DENY[/] ({decision.reason})"
    say(clock, f"  resource service asks: {action.value} {resource} -> {verdict}")
