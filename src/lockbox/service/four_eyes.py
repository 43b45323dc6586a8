"""Four eyes inside a use case's transaction: whether a change needs a second tenant admin,
proposing it, and superseding the proposals whose base moved on.

The rules are :mod:`lockbox.domain.changes`; the use cases that propose are
:func:`lockbox.service.tenants.update_policy` and :mod:`lockbox.service.auto_approval`;
deciding a proposal is :mod:`lockbox.service.changes`.
"""

from __future__ import annotations

from typing import Any

from lockbox.domain import changes as rules
from lockbox.domain.changes import ChangeKind, ChangeState, PendingChange
from lockbox.domain.ids import new_id
from lockbox.domain.roles import Principal, Role
from lockbox.service.app import Tx
from lockbox.store import auto_approval as store
from lockbox.store import repositories as repo


def active_admins(tx: Tx, tenant_id: str) -> int:
    """How many active tenant admins the tenant has now."""
    return len(repo.users_with_roles(tx.conn, [Role.TENANT_ADMIN], tenant_id=tenant_id))


def second_admin_needed(tx: Tx, tenant_id: str) -> bool:
    return rules.needs_second_admin(active_admins(tx, tenant_id))


def summary(change: PendingChange) -> dict[str, Any]:
    """What the audit records of a change say about it."""
    details: dict[str, Any] = {
        "change_id": change.id,
        "kind": change.kind.value,
        "reasons": list(change.reasons),
        "proposed_by": change.proposed_by,
    }
    for key in ("changes", "rule_id", "rule", "base_version"):
        if key in change.payload:
            details[key] = change.payload[key]
    return details


def propose(
    tx: Tx,
    actor: Principal,
    tenant_id: str,
    kind: ChangeKind,
    payload: dict[str, Any],
    reasons: list[str],
) -> PendingChange:
    """Keep a change for a second tenant admin instead of applying it; audited."""
    change = PendingChange(
        id=new_id("change"),
        tenant_id=tenant_id,
        kind=kind,
        payload=payload,
        proposed_by=actor.id,
        proposed_at=tx.now,
        reasons=tuple(reasons),
    )
    store.insert_change(tx.conn, change)
    tx.audit(tenant_id=tenant_id, actor=actor, operation="change.proposed", details=summary(change))
    return change


def supersede(
    tx: Tx, actor: Principal, tenant_id: str, *, kind: ChangeKind, rule_id: str | None, by: str
) -> list[PendingChange]:
    """Every pending change of ``kind`` (about ``rule_id``) is superseded: what it would change
    just moved on (``by``: the change or person that moved it). Audited, one record each."""
    found = []
    for change in store.list_changes(tx.conn, tenant_id, [ChangeState.PENDING]):
        if change.kind is not kind or change.target_id != rule_id:
            continue
        done = rules.supersede(change, now=tx.now, by=by)
        store.update_change(tx.conn, done, change.version)
        tx.audit(
            tenant_id=tenant_id,
            actor=actor,
            operation="change.superseded",
            details={**summary(done), "superseded_by": by},
        )
        found.append(done)
    return found
