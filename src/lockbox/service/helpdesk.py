"""Help-desk integrations: a help desk opens, updates and closes support cases with signed
events (docs/helpdesk.md).

**Integrations** belong to the provider: whoever may ``integration.manage`` (the provider
admin, the local operator) adds one (its signing secret, ``whsec_…``, is shown once),
lists, rotates and deletes them; each change is a record in the provider's own audit chain.
Anyone else finds none: a list or an addition is refused (403), one by its id is *not found*.

**Events** (:func:`receive`) carry no API token: the Standard Webhooks signature, with the
integration's secret, is the authentication. A missing, malformed, stale or wrong signature
and an integration that does not exist get the same 401, and change nothing. A signed event
then acts as the integration (:func:`principal_of`, an actor of kind ``integration`` that
the permission matrix lets see tenants and open, update and close cases, and nothing else),
through the same use cases as people (:func:`lockbox.service.cases.open_case_in`,
:func:`~lockbox.service.cases.close_case_in`), all in one transaction with the delivery's
record: either all of it happens or none. An integration reaches a case only through its
own ticket links, so it can only ever change the cases it opened itself.

Repeats and disorder are harmless (:func:`lockbox.domain.helpdesk.decide`): a delivery
whose ``webhook-id`` was processed is answered again without doing anything; an event
older than the last one applied to its ticket is ignored; a closed ticket stays closed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lockbox.domain import helpdesk as rules
from lockbox.domain import text
from lockbox.domain.audit import PROVIDER_CHAIN
from lockbox.domain.case import CaseStatus, SupportCase
from lockbox.domain.errors import (
    AlreadyExists,
    AuthenticationFailed,
    BrokenInvariant,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from lockbox.domain.helpdesk import Action, TicketEvent, TicketLink, TicketStatus
from lockbox.domain.ids import new_id, validate_id
from lockbox.domain.instants import format_instant, format_optional
from lockbox.domain.permissions import Intent, allows, authorize
from lockbox.domain.roles import ActorKind, Principal, Side
from lockbox.domain.user import User
from lockbox.service import cases
from lockbox.service.app import Lockbox, Tx
from lockbox.service.webhooks import new_secret
from lockbox.store import helpdesk as store
from lockbox.store import repositories as repo
from lockbox.store.helpdesk import DeliveryRow, IntegrationRow

log = logging.getLogger("lockbox.helpdesk")

#: How long the previous secret keeps verifying after a rotation, by default and at most.
DEFAULT_OVERLAP = timedelta(hours=24)
MAX_OVERLAP = timedelta(days=7)
#: Checked when the integration does not exist, so that answer takes as long as a wrong
#: signature's (it can never succeed: the integration is missing whatever it matches).
_DECOY_SECRET = rules.SECRET_PREFIX + "bG9ja2JveC1oZWxwZGVzay1kZWNveS1zZWNyZXQtLS0="


@dataclass(frozen=True)
class CreatedIntegration:
    """A new (or newly rotated) integration; ``secret`` is shown to the caller once."""

    row: IntegrationRow
    secret: str


@dataclass(frozen=True)
class Outcome:
    """What a delivery did: an :class:`~lockbox.domain.helpdesk.Action` value,
    ``unchanged`` (an update that changed nothing) or ``duplicate`` (seen before)."""

    outcome: str
    ticket_id: str
    case_id: str | None
    webhook_id: str

    def view(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "ticket_id": self.ticket_id,
            "case_id": self.case_id,
            "webhook_id": self.webhook_id,
        }


def principal_of(row: IntegrationRow) -> Principal:
    """The actor a signed event of ``row`` acts as (named in the audit records it causes)."""
    return Principal(
        id=row.id,
        side=Side.PROVIDER,
        kind=ActorKind.INTEGRATION,
        display=f"help desk {row.name}",
        credential=f"integration:{row.id}",
    )


# -- managing integrations --------------------------------------------------------------------


def _may_manage(actor: Principal) -> None:
    if not allows(actor, Intent.INTEGRATION_MANAGE, None):
        raise PermissionDenied("your roles do not allow integration.manage")


def _load(tx: Tx, actor: Principal, integration_id: str, *, lock: bool = False) -> IntegrationRow:
    validate_id(integration_id, "integration", "integration_id")
    row = store.get_integration(tx.conn, integration_id, lock=lock)
    if row is None or not allows(actor, Intent.INTEGRATION_MANAGE, None):
        raise NotFound("integration not found")  # invisible answers exactly like missing
    return row


def create_integration(app: Lockbox, actor: Principal, *, name: object) -> CreatedIntegration:
    """Add an integration; the answer holds its signing secret, which is never shown again."""
    clean = text.required_text(name, "name", max_len=rules.NAME_MAX, multiline=False)
    secret = new_secret()
    with app.tx() as tx:
        _may_manage(actor)
        if store.name_taken(tx.conn, clean):
            raise AlreadyExists(f"an integration named {clean!r} already exists", field="name")
        row = IntegrationRow(
            id=new_id("integration"),
            name=clean,
            secret=secret,
            previous_secret=None,
            previous_until=None,
            created_at=tx.now,
            created_by=actor.id,
            rotated_at=None,
        )
        store.insert_integration(tx.conn, row)
        tx.audit(
            tenant_id=PROVIDER_CHAIN,
            actor=actor,
            operation="integration.create",
            details={"integration_id": row.id, "name": row.name},
        )
    return CreatedIntegration(row=row, secret=secret)


def list_integrations(app: Lockbox, actor: Principal) -> list[IntegrationRow]:
    with app.read() as tx:
        _may_manage(actor)
        return store.list_integrations(tx.conn)


def get_integration(app: Lockbox, actor: Principal, integration_id: str) -> IntegrationRow:
    with app.read() as tx:
        return _load(tx, actor, integration_id)


def rotate_secret(
    app: Lockbox, actor: Principal, integration_id: str, *, overlap: timedelta = DEFAULT_OVERLAP
) -> CreatedIntegration:
    """A new signing secret (shown once). The one it replaces keeps verifying for
    ``overlap`` (0: not at all, after a leak), so the help desk can be switched over."""
    if not (timedelta(0) <= overlap <= MAX_OVERLAP):
        raise ValidationError(
            "keep_previous_seconds", f"must be between 0 and {int(MAX_OVERLAP.total_seconds())}"
        )
    secret = new_secret()
    with app.tx() as tx:
        row = _load(tx, actor, integration_id, lock=True)
        until = tx.now + overlap if overlap else None
        previous = row.secret if overlap else None
        store.rotate_secret(
            tx.conn, row.id, secret=secret, previous=previous, previous_until=until, now=tx.now
        )
        tx.audit(
            tenant_id=PROVIDER_CHAIN,
            actor=actor,
            operation="integration.rotate",
            details={
                "integration_id": row.id,
                "name": row.name,
                "previous_valid_until": format_optional(until),
            },
        )
        rotated = IntegrationRow(
            id=row.id,
            name=row.name,
            secret=secret,
            previous_secret=previous,
            previous_until=until,
            created_at=row.created_at,
            created_by=row.created_by,
            rotated_at=tx.now,
        )
    return CreatedIntegration(row=rotated, secret=secret)


def delete_integration(app: Lockbox, actor: Principal, integration_id: str) -> IntegrationRow:
    """Remove an integration: its events are refused from now on. The cases it opened stay
    open, as ordinary cases (their engineer or a manager closes them)."""
    with app.tx() as tx:
        row = _load(tx, actor, integration_id, lock=True)
        still_open = store.open_links(tx.conn, row.id)
        if not store.delete_integration(tx.conn, row.id):
            raise NotFound("integration not found")  # a concurrent delete won (PostgreSQL)
        tx.audit(
            tenant_id=PROVIDER_CHAIN,
            actor=actor,
            operation="integration.delete",
            details={"integration_id": row.id, "name": row.name, "open_cases": still_open},
        )
    return row


def view(row: IntegrationRow) -> dict[str, Any]:
    """JSON-ready, without any secret."""
    return {
        "id": row.id,
        "name": row.name,
        "events_path": f"/v1/integrations/{row.id}/events",
        "created_at": format_instant(row.created_at),
        "created_by": row.created_by,
        "rotated_at": format_optional(row.rotated_at),
        "previous_secret_valid_until": format_optional(row.previous_until),
    }


# -- receiving events -----------------------------------------------------------------------


def receive(app: Lockbox, integration_id: str, headers: Mapping[str, str], body: bytes) -> Outcome:
    """Verify, then apply, one signed delivery of a help desk (see the module docstring).

    Refusals: 401 for anything wrong with the signature or an unknown integration (one
    answer for both), 422 naming the field for an event that cannot be applied (an unknown
    tenant or engineer); nothing changes in either case.
    """
    validate_id(integration_id, "integration", "integration_id")
    now = app.now()
    delivery = rules.read_headers(headers, now)
    with app.read() as tx:
        row = store.get_integration(tx.conn, integration_id)
        seen = store.get_delivery(tx.conn, row.id, delivery.msg_id) if row else None
    secrets = row.secrets(now) if row is not None else [_DECOY_SECRET]
    if not rules.signature_matches(delivery, body, secrets) or row is None:
        raise AuthenticationFailed(rules.NO_SIGNATURE)
    if seen is not None:
        return _duplicate(app, seen)
    event = rules.parse_event(body)
    with app.tx() as tx:
        # The integration's row lock comes first: its events are applied one at a time.
        current = store.get_integration(tx.conn, integration_id, lock=True)
        if current is None:
            raise AuthenticationFailed(rules.NO_SIGNATURE)  # deleted in the meantime
        again = store.get_delivery(tx.conn, current.id, delivery.msg_id)
        if again is not None:  # the same delivery, applied by a concurrent call
            found = store.get_ticket(tx.conn, current.id, again.ticket_id)
            case_id = found[0].case_id if found else None
            return Outcome("duplicate", again.ticket_id, case_id, delivery.msg_id)
        outcome, case_id = _apply(tx, current, event, delivery.msg_id)
        store.insert_delivery(
            tx.conn,
            DeliveryRow(
                integration_id=current.id,
                webhook_id=delivery.msg_id,
                ticket_id=event.ticket_id,
                event_type=event.type.value,
                outcome=outcome,
                received_at=tx.now,
            ),
        )
    log.info(
        "help-desk event applied",
        extra={
            "integration_id": integration_id,
            "ticket_id": event.ticket_id,
            "event_type": event.type.value,
            "outcome": outcome,
        },
    )
    return Outcome(outcome, event.ticket_id, case_id, delivery.msg_id)


def _duplicate(app: Lockbox, seen: DeliveryRow) -> Outcome:
    with app.read() as tx:
        found = store.get_ticket(tx.conn, seen.integration_id, seen.ticket_id)
    return Outcome(
        "duplicate", seen.ticket_id, found[0].case_id if found else None, seen.webhook_id
    )


def _apply(
    tx: Tx, row: IntegrationRow, event: TicketEvent, webhook_id: str
) -> tuple[str, str | None]:
    """Apply ``event`` to its ticket's case; (outcome, case id)."""
    actor = principal_of(row)
    found = store.get_ticket(tx.conn, row.id, event.ticket_id)
    link = found[0] if found else None
    action = rules.decide(event, link)
    audit = {"integration_id": row.id, "ticket_id": event.ticket_id, "webhook_id": webhook_id}
    if action is Action.OPEN:
        return _open(tx, actor, row, event, audit)
    if action is Action.REMEMBER_CLOSED:
        closed = TicketLink(TicketStatus.CLOSED, event.updated_at, None)
        store.insert_ticket(tx.conn, row.id, event.ticket_id, closed, tx.now)
        return action.value, None
    if link is None or action in (Action.IGNORE_STALE, Action.IGNORE_CLOSED):
        return action.value, link.case_id if link else None
    case_id = link.case_id
    if case_id is None:
        raise BrokenInvariant("an open ticket link without a case")
    case = repo.get_case(tx.conn, case_id, lock=True)  # after the integration's: the case
    if case is None or case.opened_by != row.id:
        raise BrokenInvariant("a ticket link to a case this integration did not open")
    latest = max(link.ticket_updated_at, event.updated_at)
    if case.status is CaseStatus.CLOSED:
        # Closed in Lockbox meanwhile (its engineer or a manager): the ticket follows.
        closed = TicketLink(TicketStatus.CLOSED, latest, case.id)
        store.update_ticket(tx.conn, row.id, event.ticket_id, closed, tx.now)
        return Action.IGNORE_CLOSED.value, case.id
    if action is Action.CLOSE:
        cases.close_case_in(
            tx,
            actor,
            case.id,
            note=f"ticket {event.ticket_id} closed in the help desk ({row.name})",
            details=audit,
        )
        closed = TicketLink(TicketStatus.CLOSED, latest, case.id)
        store.update_ticket(tx.conn, row.id, event.ticket_id, closed, tx.now)
        return action.value, case.id
    return _update(tx, actor, row, event, case, audit), case.id


def _open(
    tx: Tx, actor: Principal, row: IntegrationRow, event: TicketEvent, audit: dict[str, Any]
) -> tuple[str, str | None]:
    title, tenant_ref, engineer_ref = rules.opening(event)
    tenant = repo.get_tenant(tx.conn, tenant_ref)
    if tenant is None:
        raise ValidationError("ticket.tenant", "names no tenant (give the tenant's slug)")
    engineer = _engineer(tx, engineer_ref, tenant.id)
    case = cases.open_case_in(
        tx,
        actor,
        tenant=tenant.id,
        title=title,
        engineer=engineer.id,
        reference=event.ticket_id,
        details=audit,
    )
    link = TicketLink(TicketStatus.OPEN, event.updated_at, case.id)
    store.insert_ticket(tx.conn, row.id, event.ticket_id, link, tx.now)
    return Action.OPEN.value, case.id


def _update(
    tx: Tx,
    actor: Principal,
    row: IntegrationRow,
    event: TicketEvent,
    case: SupportCase,
    audit: dict[str, Any],
) -> str:
    """Change the open case's title or engineer to the ticket's (``unchanged``: the same)."""
    authorize(actor, Intent.CASE_UPDATE, kind="case", tenant_id=case.tenant_id)
    if event.tenant is not None:
        tenant = repo.get_tenant(tx.conn, event.tenant)
        if tenant is None:
            raise ValidationError("ticket.tenant", "names no tenant (give the tenant's slug)")
        if tenant.id != case.tenant_id:
            raise ValidationError(
                "ticket.tenant",
                "differs from the case's tenant: a case cannot move to another tenant "
                "(close this ticket and open another)",
            )
    title = event.title or case.title
    engineer_id = case.engineer_id
    if event.engineer is not None:
        engineer_id = _engineer(tx, event.engineer, case.tenant_id).id
    changes: dict[str, Any] = {}
    if title != case.title:
        changes.update(title=title, previous_title=case.title)
    if engineer_id != case.engineer_id:
        changes.update(engineer_id=engineer_id, previous_engineer_id=case.engineer_id)
    if changes and not store.update_case(tx.conn, case.id, title=title, engineer_id=engineer_id):
        raise BrokenInvariant("the locked open case could not be updated")
    if changes:
        tx.audit(
            tenant_id=case.tenant_id,
            actor=actor,
            operation="case.updated",
            details={"case_id": case.id, **changes, **audit},
        )
    updated = TicketLink(TicketStatus.OPEN, event.updated_at, case.id)
    store.update_ticket(tx.conn, row.id, event.ticket_id, updated, tx.now)
    return Action.UPDATE.value if changes else "unchanged"


def _engineer(tx: Tx, ref: str, tenant_id: str) -> User:
    """The active support engineer ``ref`` names (the case's assignee)."""
    user = repo.get_user(tx.conn, ref)
    if user is None or not allows(user.principal(), Intent.REQUEST_SUBMIT, tenant_id):
        raise ValidationError(
            "ticket.engineer", "must be the e-mail address of an active support engineer"
        )
    return user
