"""Support case use cases. Closing a case ends every open request on it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lockbox.domain import request as domain
from lockbox.domain import text
from lockbox.domain.case import CaseStatus, SupportCase
from lockbox.domain.errors import NotFound, ValidationError
from lockbox.domain.ids import new_id, optional_ref, validate_id
from lockbox.domain.permissions import Intent, allows, authorize, list_scope
from lockbox.domain.roles import Principal
from lockbox.service.app import Lockbox, Tx
from lockbox.service.tenants import load_tenant
from lockbox.store import repositories as repo


def open_case(
    app: Lockbox,
    actor: Principal,
    *,
    tenant: str,
    title: str,
    engineer: str | None = None,
    reference: str | None = None,
) -> SupportCase:
    """Open a case for a tenant, assigned to an engineer (by default the one opening it)."""
    clean_title = text.required_text(title, "title", max_len=text.NAME_MAX, multiline=False)
    clean_ref = text.text(reference, "reference", max_len=100, required=False, multiline=False)
    optional_ref(engineer, "engineer")
    with app.tx() as tx:
        return open_case_in(
            tx, actor, tenant=tenant, title=clean_title, engineer=engineer, reference=clean_ref
        )


def open_case_in(
    tx: Tx,
    actor: Principal,
    *,
    tenant: str,
    title: str,
    engineer: str | None = None,
    reference: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> SupportCase:
    """:func:`open_case` inside the caller's transaction (a help-desk event opens a case and
    links it to its ticket in one); ``details`` are added to the audit record."""
    clean_title = text.required_text(title, "title", max_len=text.NAME_MAX, multiline=False)
    clean_ref = text.text(reference, "reference", max_len=100, required=False, multiline=False)
    optional_ref(engineer, "engineer")
    tenant_obj = load_tenant(tx, actor, tenant)
    # A new case has nothing to hide yet: the tenant's visibility was checked above,
    # so a role without case.open on a visible tenant is refused (403), not "not found".
    authorize(actor, Intent.CASE_OPEN, kind="case_new", tenant_id=tenant_obj.id)
    assignee = repo.get_user(tx.conn, engineer) if engineer else repo.get_user(tx.conn, actor.id)
    # The assignee must be someone who may request access on the case: an active engineer.
    if assignee is None or not allows(assignee.principal(), Intent.REQUEST_SUBMIT, tenant_obj.id):
        raise ValidationError("engineer", "must name an active support engineer")
    case = SupportCase(
        id=new_id("case"),
        tenant_id=tenant_obj.id,
        title=clean_title,
        reference=clean_ref,
        engineer_id=assignee.id,
        status=CaseStatus.OPEN,
        opened_at=tx.now,
        opened_by=actor.id,
    )
    repo.insert_case(tx.conn, case)
    tx.audit(
        tenant_id=case.tenant_id,
        actor=actor,
        operation="case.opened",
        details={
            "case_id": case.id,
            "title": case.title,
            "engineer_id": case.engineer_id,
            **(details or {}),
        },
    )
    return case


def load_case(tx: Tx, actor: Principal, case_id: str, *, lock: bool = False) -> SupportCase:
    """A case the actor may see; ``lock`` row-locks it for the rest of the transaction."""
    validate_id(case_id, "case", "case_id")
    case = repo.get_case(tx.conn, case_id, lock=lock)
    if case is None:
        raise NotFound("support case not found")
    tx.remember("case", case.id, case)
    authorize(actor, Intent.CASE_VIEW, kind="case", tenant_id=case.tenant_id)
    return case


def get_case(app: Lockbox, actor: Principal, case_id: str) -> SupportCase:
    with app.read() as tx:
        return load_case(tx, actor, case_id)


def list_cases(
    app: Lockbox, actor: Principal, *, tenant: str | None = None, status: str | None = None
) -> list[SupportCase]:
    try:
        wanted = CaseStatus(status) if status else None
    except ValueError:
        raise ValidationError("status", "must be 'open' or 'closed'") from None
    with app.read() as tx:
        requested = load_tenant(tx, actor, tenant).id if tenant else None
        visible, tenant_id = list_scope(actor, Intent.CASE_VIEW, requested)
        if not visible:
            return []
        return repo.list_cases(tx.conn, tenant_id=tenant_id, status=wanted)


def close_case(
    app: Lockbox, actor: Principal, case_id: str, *, comment: str | None = None
) -> tuple[SupportCase, list[domain.AccessRequest]]:
    """Close the case and, in the same transaction, end every open request on it.

    Locks follow the documented order (case, then its requests by id, then the audit
    head): a submit on this case waits for the case lock and then sees it closed, and a
    transition holding a request lock never waits for the audit head this holds.
    """
    note = text.comment(comment)
    with app.tx() as tx:
        return close_case_in(tx, actor, case_id, note=note)


def close_case_in(
    tx: Tx,
    actor: Principal,
    case_id: str,
    *,
    note: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> tuple[SupportCase, list[domain.AccessRequest]]:
    """:func:`close_case` inside the caller's transaction (a help-desk event closes the case
    and records its ticket closed in one); ``details`` are added to the audit record."""
    case = load_case(tx, actor, case_id, lock=True)
    authorize(
        actor,
        Intent.CASE_CLOSE,
        kind="case",
        tenant_id=case.tenant_id,
        owner_id=case.engineer_id,
    )
    open_requests = repo.open_requests_for_case(tx.conn, case.id, lock=True)
    closed = case.close(actor.id, tx.now)
    repo.close_case(tx.conn, closed)
    tx.audit(
        tenant_id=case.tenant_id,
        actor=actor,
        operation="case.closed",
        details={"case_id": case.id, **({"comment": note} if note else {}), **(details or {})},
    )
    ended = []
    for request in open_requests:
        change = domain.expire(request, now=tx.now) or domain.end_for_closed_case(
            request, actor, now=tx.now
        )
        repo.update_request(tx.conn, change.request, request)
        tx.record(change)
        ended.append(change.request)
    return closed, ended
