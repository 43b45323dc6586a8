"""Service-level building blocks shared by the integration tests."""

from __future__ import annotations

from datetime import datetime

from lockbox.domain.audit import AuditRecord
from lockbox.domain.lifecycle import State
from lockbox.domain.request import AccessRequest
from lockbox.domain.roles import Principal
from lockbox.service import audit, cases, requests, tenants
from lockbox.service.app import Lockbox
from lockbox.store import repositories as repo
from tests.conftest import World

MAILBOX = "exchange/mailbox/alice@contoso.com"


def submit(
    world: World,
    *,
    tenant: str = "contoso",
    engineer: Principal | None = None,
    case_id: str | None = None,
    resources: list[str] | None = None,
    level: str = "read",
    starts_at: datetime | None = None,
) -> AccessRequest:
    engineer = engineer or world.engineer
    if case_id is None:
        case_id = cases.open_case(world.app, engineer, tenant=tenant, title="Mailbox broken").id
    return requests.submit_request(
        world.app,
        engineer,
        tenant=tenant,
        case_id=case_id,
        resources=resources or [MAILBOX],
        access_level=level,
        justification="Need to inspect the mailbox",
        starts_at=starts_at,
    )


def pending_approval(world: World, **kw: object) -> AccessRequest:
    req = submit(world, **kw)  # type: ignore[arg-type]
    req = requests.review_request(world.app, world.manager, req.id, approve=True)
    assert req.state is State.PENDING_APPROVAL
    return req


def approved(world: World, **kw: object) -> AccessRequest:
    req = pending_approval(world, **kw)
    req = requests.decide_request(world.app, world.contoso_approver, req.id, approve=True)
    assert req.state is State.APPROVED
    return req


def set_policy(world: World, tenant: str = "contoso", **changes: object) -> None:
    admin = world.contoso_admin if tenant == "contoso" else world.fabrikam_admin
    tenants.change_policy(world.app, admin, tenant, dict(changes))


def records(app: Lockbox, tenant_id: str, request_id: str | None = None) -> list[AuditRecord]:
    with app.read() as tx:
        if request_id is None:
            return list(repo.iter_audit(tx.conn, tenant_id))
        return repo.query_audit(
            tx.conn, repo.AuditFilter(tenant_id=tenant_id, request_id=request_id), limit=10_000
        )


def operations(app: Lockbox, tenant_id: str, request_id: str) -> list[str]:
    return [r.operation for r in records(app, tenant_id, request_id)]


def chains_ok(app: Lockbox) -> bool:
    reports = audit.verify(app, Principal.operator())
    return bool(reports) and all(r.ok for r in reports)


def stored(app: Lockbox, request_id: str) -> AccessRequest:
    with app.read() as tx:
        found = repo.get_request(tx.conn, request_id)
    assert found is not None
    return found
