"""Delegations: an approver hands their approvals to a colleague for a period.

The rules are in :mod:`lockbox.domain.delegation`; here they meet the stored people. A
person delegates their own approvals (nobody else's); the delegator, the delegate or a
tenant admin of the tenant can end a delegation early. Every step is in the tenant's
audit log. The decisions themselves read :func:`delegators_of` in their own transaction,
and :mod:`lockbox.service.approvers` asks delegates along with the people they stand for.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from lockbox.domain import text
from lockbox.domain.delegation import Delegation, Delegator, check_people, check_period
from lockbox.domain.errors import NotFound, PermissionDenied, ValidationError, present
from lockbox.domain.ids import new_id, validate_id
from lockbox.domain.instants import format_instant, format_optional, optional_utc_instant
from lockbox.domain.permissions import Intent, allows, authorize
from lockbox.domain.policy import validate_email
from lockbox.domain.roles import Principal, Role
from lockbox.domain.user import User
from lockbox.store import delegations as store
from lockbox.store import repositories as repo

if TYPE_CHECKING:  # the transaction's module plans notifications, which ask this one
    from lockbox.service.app import Lockbox, Tx


def _person(tx: Tx, ref: object, field: str) -> User | None:
    if not isinstance(ref, str) or not ref.strip():
        raise ValidationError(field, "name a person by e-mail address or user id")
    ref = ref.strip()
    key = validate_email(ref, field) if "@" in ref else validate_id(ref, "user", field)
    return repo.get_user(tx.conn, key)


def create_delegation(
    app: Lockbox,
    actor: Principal,
    *,
    to: object,
    ends_at: object,
    starts_at: object = None,
    reason: object = None,
) -> Delegation:
    """``actor`` hands their approvals to ``to`` from ``starts_at`` (default now) until
    ``ends_at``."""
    authorize(actor, Intent.APPROVAL_DELEGATE, kind="tenant", tenant_id=actor.tenant_id)
    ends = optional_utc_instant(ends_at, "ends_at")
    if ends is None:
        raise ValidationError("ends_at", "say until when")
    why = text.text(reason, "reason", max_len=text.COMMENT_MAX, required=False)
    with app.tx() as tx:
        starts = optional_utc_instant(starts_at, "starts_at") or tx.now
        check_period(starts, ends, tx.now)
        delegate = _person(tx, to, "to")
        check_people(
            from_id=actor.id,
            from_roles=actor.roles,
            from_tenant=actor.tenant_id,
            to_id=delegate.id if delegate else "",
            to_roles=delegate.roles if delegate else frozenset(),
            to_tenant=delegate.tenant_id if delegate else None,
            to_active=bool(delegate and delegate.active),
        )
        delegation = Delegation(
            id=new_id("delegation"),
            tenant_id=present(actor.tenant_id, "the delegator's tenant"),
            from_user=actor.id,
            to_user=present(delegate, "the delegate").id,
            starts_at=starts,
            ends_at=ends,
            created_at=tx.now,
            created_by=actor.id,
            reason=why,
        )
        store.insert_delegation(tx.conn, delegation)
        tx.audit(
            tenant_id=delegation.tenant_id,
            actor=actor,
            operation="delegation.created",
            details=_details(delegation),
        )
    return delegation


def list_delegations(app: Lockbox, actor: Principal) -> list[Delegation]:
    """The delegations of the actor's tenant not yet over: all of them for a tenant
    admin, those from or to the actor for anyone else who can delegate."""
    authorize(actor, Intent.APPROVAL_DELEGATE, kind="tenant", tenant_id=actor.tenant_id)
    tenant_id = present(actor.tenant_id, "the tenant of a customer principal")
    person = None if actor.has(Role.TENANT_ADMIN) else actor.id
    with app.read() as tx:
        return store.list_delegations(tx.conn, tenant_id, person=person, now=tx.now)


def revoke_delegation(app: Lockbox, actor: Principal, delegation_id: str) -> Delegation:
    """End a delegation now: its delegator, its delegate, or a tenant admin."""
    validate_id(delegation_id, "delegation", "delegation_id")
    with app.tx() as tx:
        found = store.get_delegation(tx.conn, delegation_id)
        if found is None or not allows(actor, Intent.APPROVAL_DELEGATE, found.tenant_id):
            raise NotFound("delegation not found")
        party = actor.id in (found.from_user, found.to_user)
        if not party and not actor.has(Role.TENANT_ADMIN):
            raise PermissionDenied("only its two people or a tenant admin can end a delegation")
        if found.revoked_at is not None or found.ends_at <= tx.now:
            return found
        if not store.revoke(tx.conn, found.id, tx.now, actor.id):
            return present(store.get_delegation(tx.conn, found.id), "the delegation")  # raced
        tx.audit(
            tenant_id=found.tenant_id,
            actor=actor,
            operation="delegation.revoked",
            details=_details(found),
        )
    return replace(found, revoked_at=tx.now, revoked_by=actor.id)


def delegators_of(tx: Tx, actor: Principal) -> list[Delegator]:
    """Whose approvals ``actor`` holds now (active people of the actor's own tenant)."""
    if actor.tenant_id is None:
        return []
    found = []
    for delegation in store.held_by(tx.conn, actor.id, tx.now):
        person = tx.user(delegation.from_user)
        if person is not None and person.active and person.tenant_id == actor.tenant_id:
            found.append(Delegator(person.id, person.roles))
    return found


def delegates_of(tx: Tx, people: list[str], now: datetime) -> dict[str, list[str]]:
    """For each of ``people``, who holds their approvals now."""
    held: dict[str, list[str]] = {}
    for delegation in store.given_by(tx.conn, people, now):
        held.setdefault(delegation.from_user, []).append(delegation.to_user)
    return held


def view(d: Delegation) -> dict[str, object]:
    """The JSON form (API and CLI)."""
    return {
        "id": d.id,
        "tenant_id": d.tenant_id,
        "from_user": d.from_user,
        "to_user": d.to_user,
        "starts_at": format_instant(d.starts_at),
        "ends_at": format_instant(d.ends_at),
        "reason": d.reason,
        "created_at": format_instant(d.created_at),
        "revoked_at": format_optional(d.revoked_at),
        "revoked_by": d.revoked_by,
    }


def _details(d: Delegation) -> dict[str, object]:
    return {
        "delegation_id": d.id,
        "from": d.from_user,
        "to": d.to_user,
        "starts_at": format_instant(d.starts_at),
        "ends_at": format_instant(d.ends_at),
        "reason": d.reason,
    }
