"""Changes waiting for a second tenant admin (four eyes): list, approve, reject, withdraw.

Approving applies the change in the same transaction, re-validated against what it
changes *now*: if the policy or the rule moved on since it was proposed, the change is
marked superseded (audited, committed) and the approval is refused with a conflict, so
nothing the second admin did not see is ever applied. Every decision is audited
(``change.approved``, ``change.rejected``, ``change.withdrawn``, ``change.superseded``),
followed by the record of what was applied (``policy.changed``, ``auto_rule.*``).
Approving needs a fresh sign-in, as the change itself did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lockbox.domain import changes as rules
from lockbox.domain.auto_approval import RuleState, StoredRule
from lockbox.domain.changes import ChangeKind, ChangeState, PendingChange
from lockbox.domain.errors import Conflict, NotFound, ValidationError, present
from lockbox.domain.ids import validate_id
from lockbox.domain.instants import format_optional
from lockbox.domain.permissions import Intent, authorize
from lockbox.domain.roles import Principal
from lockbox.domain.tenant import Tenant
from lockbox.service import auto_approval, four_eyes, step_up, tenants
from lockbox.service.app import Lockbox, Tx
from lockbox.service.tenants import load_tenant
from lockbox.store import auto_approval as store
from lockbox.store import repositories as repo

MAX_LIST = 200


@dataclass(frozen=True)
class Decided:
    """A decided change and what it changed (the tenant or the rule), when it applied."""

    change: PendingChange
    tenant: Tenant | None = None
    rule: StoredRule | None = None


def list_changes(
    app: Lockbox, actor: Principal, tenant_ref: str, *, states: list[str] | None = None
) -> list[PendingChange]:
    """A tenant's changes, newest first (``states``: only those; default: every state)."""
    wanted = []
    for i, value in enumerate(states or []):
        try:
            wanted.append(ChangeState(value))
        except ValueError:
            allowed = ", ".join(s.value for s in ChangeState)
            raise ValidationError(f"state[{i}]", f"must be one of {allowed}") from None
    with app.read() as tx:
        tenant = load_tenant(tx, actor, tenant_ref, Intent.CHANGE_VIEW)
        return store.list_changes(tx.conn, tenant.id, wanted, limit=MAX_LIST)


def second_admin_needed(app: Lockbox, actor: Principal, tenant_ref: str) -> bool:
    """Whether changes that widen access wait for a second tenant admin in this tenant now."""
    with app.read() as tx:
        tenant = load_tenant(tx, actor, tenant_ref, Intent.CHANGE_VIEW)
        return four_eyes.second_admin_needed(tx, tenant.id)


def get_change(app: Lockbox, actor: Principal, tenant_ref: str, change_id: str) -> PendingChange:
    with app.read() as tx:
        tenant = load_tenant(tx, actor, tenant_ref, Intent.CHANGE_VIEW)
        return _load(tx, actor, tenant, change_id, Intent.CHANGE_VIEW)


def _load(
    tx: Tx, actor: Principal, tenant: Tenant, change_id: str, intent: Intent
) -> PendingChange:
    validate_id(change_id, "change", "change_id")
    found = store.get_change(tx.conn, change_id)
    if found is None or found.tenant_id != tenant.id:
        raise NotFound("pending change not found")
    authorize(actor, intent, kind="change", tenant_id=tenant.id)
    return found


def _check_version(change: PendingChange, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != change.version:
        raise Conflict(
            f"the change is at version {change.version}, not {expected_version}; reload it",
            state=change.state.value,
            version=change.version,
        )


def approve_change(
    app: Lockbox,
    actor: Principal,
    tenant_ref: str,
    change_id: str,
    *,
    comment: str | None = None,
    expected_version: int | None = None,
) -> Decided:
    """Another tenant admin approves: the change applies now, or is superseded (409)."""
    step_up.require_recent(actor, app.now(), "approve a change that widens access")
    superseded: PendingChange | None = None
    decided: Decided | None = None
    with app.tx() as tx:
        tenant, change = _locked(tx, actor, tenant_ref, change_id, expected_version)
        approved = rules.decide(change, actor, approve=True, comment=comment, now=tx.now)
        if _moved_on(tx, change):
            superseded = rules.supersede(change, now=tx.now, by=actor.id)
            store.update_change(tx.conn, superseded, change.version)
            tx.audit(
                tenant_id=tenant.id,
                actor=actor,
                operation="change.superseded",
                details={**four_eyes.summary(superseded), "superseded_by": actor.id},
            )
        else:
            store.update_change(tx.conn, approved, change.version)
            tx.audit(
                tenant_id=tenant.id,
                actor=actor,
                operation="change.approved",
                details=_decision(approved),
            )
            decided = _apply(tx, actor, approved)
    if superseded is not None:
        raise Conflict(
            "what this change would change was changed since it was proposed, so it no "
            "longer means what its author proposed: it is superseded and nothing was applied",
            state=superseded.state.value,
            version=superseded.version,
        )
    return present(decided, "the approved change")


def reject_change(
    app: Lockbox,
    actor: Principal,
    tenant_ref: str,
    change_id: str,
    *,
    comment: str | None = None,
    expected_version: int | None = None,
) -> Decided:
    """Another tenant admin turns the change down: nothing changes (a proposed rule ends)."""
    with app.tx() as tx:
        _, change = _locked(tx, actor, tenant_ref, change_id, expected_version)
        rejected = rules.decide(change, actor, approve=False, comment=comment, now=tx.now)
        return _close(tx, actor, change, rejected, "change.rejected", RuleState.REJECTED)


def withdraw_change(
    app: Lockbox,
    actor: Principal,
    tenant_ref: str,
    change_id: str,
    *,
    comment: str | None = None,
    expected_version: int | None = None,
) -> Decided:
    """Its author takes the change back (a proposed rule ends)."""
    with app.tx() as tx:
        _, change = _locked(tx, actor, tenant_ref, change_id, expected_version)
        withdrawn = rules.withdraw(change, actor, comment=comment, now=tx.now)
        return _close(tx, actor, change, withdrawn, "change.withdrawn", RuleState.WITHDRAWN)


#: What each adapter's "approve", "reject" and "withdraw" do.
DECISIONS = {
    "approve": approve_change,
    "reject": reject_change,
    "withdraw": withdraw_change,
}


def _locked(
    tx: Tx, actor: Principal, tenant_ref: str, change_id: str, expected_version: int | None
) -> tuple[Tenant, PendingChange]:
    """The tenant, locked (pending changes are decided one at a time per tenant), and the
    change, at ``expected_version`` when one is given."""
    tenant = load_tenant(tx, actor, tenant_ref, Intent.CHANGE_DECIDE)
    repo.lock_tenant(tx.conn, tenant.id)
    change = _load(tx, actor, tenant, change_id, Intent.CHANGE_DECIDE)
    _check_version(change, expected_version)
    return tenant, change


def _close(
    tx: Tx,
    actor: Principal,
    before: PendingChange,
    after: PendingChange,
    operation: str,
    rule_state: RuleState,
) -> Decided:
    store.update_change(tx.conn, after, before.version)
    tx.audit(tenant_id=after.tenant_id, actor=actor, operation=operation, details=_decision(after))
    rule = None
    if after.kind is ChangeKind.RULE_CREATE and after.target_id is not None:
        proposed = store.get_rule(tx.conn, after.target_id)
        if proposed is not None and proposed.state is RuleState.PENDING:
            rule = auto_approval.end_proposal(tx, actor, proposed, rule_state)
    return Decided(after, rule=rule)


def _moved_on(tx: Tx, change: PendingChange) -> bool:
    """Whether what ``change`` changes is no longer what it was proposed on."""
    if change.kind is ChangeKind.POLICY:
        current = present(repo.get_tenant(tx.conn, change.tenant_id), "the change's tenant")
        return current.version != change.base_version
    rule = store.get_rule(tx.conn, change.target_id or "")
    if rule is None:
        return True
    if change.kind is ChangeKind.RULE_CREATE:
        return rule.state is not RuleState.PENDING
    return rule.version != change.base_version or rule.state.final


def _apply(tx: Tx, actor: Principal, change: PendingChange) -> Decided:
    """Apply an approved change (its base checked by :func:`_moved_on`)."""
    if change.kind is ChangeKind.POLICY:
        tenant = present(repo.get_tenant(tx.conn, change.tenant_id), "the change's tenant")
        new_policy = tenant.policy.with_changes(
            **tenants.policy_changes(change.payload.get("changes") or {})
        )
        updated = tenants.apply_policy(tx, actor, tenant, new_policy, change=change)
        return Decided(change, tenant=updated)
    stored = present(store.get_rule(tx.conn, change.target_id or ""), "the change's rule")
    if change.kind is ChangeKind.RULE_CREATE:
        return Decided(change, rule=auto_approval.apply_creation(tx, actor, stored, change))
    new_rule = stored.rule.patched(change.payload["rule"], field="")
    return Decided(
        change, rule=auto_approval.apply_update(tx, actor, stored, new_rule, change=change)
    )


def _decision(change: PendingChange) -> dict[str, Any]:
    details = four_eyes.summary(change)
    if change.comment:
        details["comment"] = change.comment
    return details


def view(change: PendingChange) -> dict[str, Any]:
    """A change as the API, the CLI and the pages show it."""
    return {
        "id": change.id,
        "tenant_id": change.tenant_id,
        "kind": change.kind.value,
        "state": change.state.value,
        "reasons": list(change.reasons),
        "payload": change.payload,
        "proposed_by": change.proposed_by,
        "proposed_at": format_optional(change.proposed_at),
        "decided_by": change.decided_by,
        "decided_at": format_optional(change.decided_at),
        "comment": change.comment,
        "version": change.version,
    }
