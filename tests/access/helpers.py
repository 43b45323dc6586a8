"""Helpers for the access tests: an approved request in one call."""

from __future__ import annotations

from lockbox.domain.request import AccessRequest
from lockbox.domain.roles import Principal
from lockbox.service import cases, requests
from tests.conftest import World

ALICE = "exchange/mailbox/alice@contoso.com"
BOB = "exchange/mailbox/bob@contoso.com"


def submit(
    world: World,
    *,
    resources: list[str] | None = None,
    level: str = "read",
    tenant: str = "contoso",
    engineer: Principal | None = None,
) -> AccessRequest:
    who = engineer or world.engineer
    case = cases.open_case(world.app, who, tenant=tenant, title="Mailbox does not sync")
    return requests.submit_request(
        world.app,
        who,
        tenant=tenant,
        case_id=case.id,
        resources=resources or [ALICE],
        access_level=level,
        justification="Inspect the sync state",
    )


def approved(
    world: World,
    *,
    resources: list[str] | None = None,
    level: str = "read",
    tenant: str = "contoso",
    engineer: Principal | None = None,
) -> AccessRequest:
    req = submit(world, resources=resources, level=level, tenant=tenant, engineer=engineer)
    req = requests.review_request(world.app, world.manager, req.id, approve=True)
    approver = world.contoso_approver if tenant == "contoso" else world.fabrikam_approver
    return requests.decide_request(world.app, approver, req.id, approve=True, comment="ok")
