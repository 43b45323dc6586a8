"""The reference scenario through the service layer, on both databases."""

from __future__ import annotations

from datetime import timedelta

from lockbox.domain.lifecycle import State
from lockbox.service import audit, cases, requests, sweeper
from tests.conftest import World

MAILBOX = "exchange/mailbox/alice@contoso.com"


def test_reference_scenario(world: World) -> None:
    app = world.app
    case = cases.open_case(app, world.engineer, tenant="contoso", title="Mailbox broken")
    req = requests.submit_request(
        app,
        world.engineer,
        tenant="contoso",
        case_id=case.id,
        resources=[MAILBOX],
        access_level="read",
        justification="Need to inspect the mailbox",
    )
    assert req.state is State.PENDING_REVIEW
    req = requests.review_request(app, world.manager, req.id, approve=True)
    assert req.state is State.PENDING_APPROVAL
    req = requests.decide_request(app, world.contoso_approver, req.id, approve=True, comment="ok")
    assert req.state is State.APPROVED
    assert req.access_deadline == world.clock.now() + timedelta(hours=4)
    req = requests.close_request(app, world.engineer, req.id, comment="fixed")
    assert req.state is State.CLOSED
    assert sweeper.sweep_deadlines(app).expired == 0
    reports = audit.verify(app, world.provider_admin)
    assert reports and all(r.ok for r in reports)
    ops = [r.operation for r in audit.query(app, world.contoso_auditor, "contoso")[0]]
    assert ops[-4:] == [
        "request.submit",
        "request.review_approve",
        "request.approve",
        "request.close",
    ]
