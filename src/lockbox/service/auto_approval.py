"""Auto-approval rules: what a tenant's lockbox approves without a person (tenant admins).

Writing a rule, loosening one and switching one on need a second tenant admin when the
tenant has more than one (four eyes, :mod:`lockbox.domain.changes`): the use case then
keeps the change for them and answers with it (``RuleOutcome.pending``), and nothing
approves more until a second admin applies it (:mod:`lockbox.service.changes`).
Tightening a rule, switching it off and deleting it apply at once. Every change is
audited (``auto_rule.created``, ``.updated``, ``.disabled``, ``.enabled``, ``.deleted``,
and ``change.*`` for proposals) and, like policy changes, needs a fresh sign-in.

:func:`matching_rule` is what a manager's review asks: the first active rule (oldest
first) that approves the request at the transaction's time, read in one query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from lockbox.domain.auto_approval import (
    AutoApprovalRule,
    RuleState,
    StoredRule,
    first_match,
    parse_rule,
)
from lockbox.domain.changes import ChangeKind, ChangeState, PendingChange
from lockbox.domain.errors import Conflict, InvalidTransition, NotFound
from lockbox.domain.ids import new_id, validate_id
from lockbox.domain.instants import format_instant
from lockbox.domain.permissions import Intent, authorize
from lockbox.domain.policy import LockboxPolicy
from lockbox.domain.request import AccessRequest
from lockbox.domain.roles import Principal
from lockbox.domain.tenant import Tenant
from lockbox.service import four_eyes, step_up
from lockbox.service.app import Lockbox, Tx
from lockbox.service.tenants import load_tenant
from lockbox.store import auto_approval as store
from lockbox.store import repositories as repo

#: The states a rule can still change from (the others are final or wait for a decision).
_LIVE = (RuleState.ACTIVE, RuleState.DISABLED)


@dataclass(frozen=True)
class RuleOutcome:
    """A rule as it is now, and the change waiting for a second tenant admin, if any (the
    rule is then as it was: pending for a new rule, unchanged for an update)."""

    rule: StoredRule
    pending: PendingChange | None = None


# -- reading ----------------------------------------------------------------------------------


def list_rules(
    app: Lockbox, actor: Principal, tenant_ref: str, *, include_ended: bool = False
) -> list[StoredRule]:
    """A tenant's rules in the order they are tried; deleted, rejected and withdrawn ones
    only with ``include_ended``."""
    with app.read() as tx:
        tenant = load_tenant(tx, actor, tenant_ref, Intent.AUTO_RULE_VIEW)
        found = store.list_rules(tx.conn, tenant.id)
    return [r for r in found if include_ended or not r.state.final]


def rule_views(
    app: Lockbox,
    actor: Principal,
    tenant_ref: str,
    *,
    rule_id: str | None = None,
    include_ended: bool = False,
) -> list[dict[str, Any]]:
    """The rules (or the one ``rule_id``) as :func:`view` shows them, each with the ids of
    its changes waiting for a second admin; read together, in one transaction."""
    with app.read() as tx:
        tenant = load_tenant(tx, actor, tenant_ref, Intent.AUTO_RULE_VIEW)
        if rule_id is not None:
            found = [load_rule(tx, actor, tenant, rule_id, Intent.AUTO_RULE_VIEW)]
        else:
            found = [
                r
                for r in store.list_rules(tx.conn, tenant.id)
                if include_ended or not r.state.final
            ]
        pending = store.list_changes(tx.conn, tenant.id, [ChangeState.PENDING])
    return [view(r, pending) for r in found]


def get_rule(app: Lockbox, actor: Principal, tenant_ref: str, rule_id: str) -> StoredRule:
    with app.read() as tx:
        tenant = load_tenant(tx, actor, tenant_ref, Intent.AUTO_RULE_VIEW)
        return load_rule(tx, actor, tenant, rule_id, Intent.AUTO_RULE_VIEW)


def load_rule(tx: Tx, actor: Principal, tenant: Tenant, rule_id: str, intent: Intent) -> StoredRule:
    """One rule of ``tenant``; another tenant's (or a missing) one is not found."""
    validate_id(rule_id, "auto_rule", "rule_id")
    found = store.get_rule(tx.conn, rule_id)
    if found is None or found.rule.tenant_id != tenant.id:
        raise NotFound("auto-approval rule not found")
    authorize(actor, intent, kind="auto_rule", tenant_id=tenant.id)
    return found


def matching_rule(tx: Tx, request: AccessRequest, policy: LockboxPolicy) -> AutoApprovalRule | None:
    """The first active rule that approves ``request`` now (None with the lockbox off, where
    no customer approval is asked for anyway)."""
    if not policy.enabled:
        return None
    return first_match(
        store.active_rules(tx.conn, request.tenant_id),
        resources=request.resources,
        level=request.access_level,
        category=request.category,
        now=tx.now,
    )


# -- writing ----------------------------------------------------------------------------------


def create_rule(
    app: Lockbox, actor: Principal, tenant_ref: str, settings: dict[str, Any]
) -> RuleOutcome:
    """Write a rule: active at once with one tenant admin, else pending a second one."""
    with app.tx() as tx:
        tenant = load_tenant(tx, actor, tenant_ref, Intent.AUTO_RULE_MANAGE)
        rule = parse_rule(settings, rule_id=new_id("auto_rule"), tenant_id=tenant.id, field="")
        step_up.require_recent(actor, tx.now, "write an auto-approval rule")
        repo.lock_tenant(tx.conn, tenant.id)
        four = four_eyes.second_admin_needed(tx, tenant.id)
        state = RuleState.PENDING if four else _state_of(rule)
        stored = StoredRule(
            rule=replace(rule, enabled=state is RuleState.ACTIVE),
            state=state,
            created_by=actor.id,
            created_at=tx.now,
            updated_by=actor.id,
            updated_at=tx.now,
        )
        store.insert_rule(tx.conn, stored)
        if four:
            payload = {"rule_id": rule.id, "rule": _settings(rule)}
            reasons = ["writes a new auto-approval rule"]
            pending = four_eyes.propose(
                tx, actor, tenant.id, ChangeKind.RULE_CREATE, payload, reasons
            )
            return RuleOutcome(stored, pending)
        tx.audit(
            tenant_id=tenant.id,
            actor=actor,
            operation="auto_rule.created",
            details={"rule_id": rule.id, "rule": _settings(rule), "state": state.value},
        )
    return RuleOutcome(stored)


def update_rule(
    app: Lockbox,
    actor: Principal,
    tenant_ref: str,
    rule_id: str,
    changes: dict[str, Any],
    *,
    expected_version: int | None = None,
) -> RuleOutcome:
    """Change a rule's settings (``enabled``: switch it on or off). Narrowing applies at once;
    loosening (:meth:`AutoApprovalRule.looser_than`) waits for a second tenant admin."""
    with app.tx() as tx:
        tenant = load_tenant(tx, actor, tenant_ref, Intent.AUTO_RULE_MANAGE)
        repo.lock_tenant(tx.conn, tenant.id)
        stored = load_rule(tx, actor, tenant, rule_id, Intent.AUTO_RULE_MANAGE)
        _check(stored, expected_version, "change")
        new_rule = stored.rule.patched(changes, field="")
        if new_rule == stored.rule:
            return RuleOutcome(stored)
        step_up.require_recent(actor, tx.now, "change an auto-approval rule")
        reasons = new_rule.loosenings(stored.rule)
        if reasons and four_eyes.second_admin_needed(tx, tenant.id):
            payload = {
                "rule_id": stored.id,
                "base_version": stored.version,
                "rule": _settings(new_rule),
            }
            pending = four_eyes.propose(
                tx, actor, tenant.id, ChangeKind.RULE_UPDATE, payload, reasons
            )
            return RuleOutcome(stored, pending)
        updated = apply_update(tx, actor, stored, new_rule)
    return RuleOutcome(updated)


def delete_rule(
    app: Lockbox,
    actor: Principal,
    tenant_ref: str,
    rule_id: str,
    *,
    expected_version: int | None = None,
) -> StoredRule:
    """Delete a rule at once (it approves nothing more); kept for the audit records."""
    with app.tx() as tx:
        tenant = load_tenant(tx, actor, tenant_ref, Intent.AUTO_RULE_MANAGE)
        repo.lock_tenant(tx.conn, tenant.id)
        stored = load_rule(tx, actor, tenant, rule_id, Intent.AUTO_RULE_MANAGE)
        _check(stored, expected_version, "delete")
        step_up.require_recent(actor, tx.now, "delete an auto-approval rule")
        deleted = _write(tx, actor, stored, replace(stored.rule, enabled=False), RuleState.DELETED)
        tx.audit(
            tenant_id=tenant.id,
            actor=actor,
            operation="auto_rule.deleted",
            details={"rule_id": stored.id, "name": stored.rule.name},
        )
        four_eyes.supersede(
            tx, actor, tenant.id, kind=ChangeKind.RULE_UPDATE, rule_id=stored.id, by=actor.id
        )
    return deleted


# -- applying (also when a second admin approves) -----------------------------------------------


def apply_update(
    tx: Tx,
    actor: Principal,
    stored: StoredRule,
    new_rule: AutoApprovalRule,
    *,
    change: PendingChange | None = None,
) -> StoredRule:
    """Write a rule's new settings, audited; proposals on its old version are superseded."""
    before, after = _settings(stored.rule), _settings(new_rule)
    diff = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    updated = _write(tx, actor, stored, new_rule, _state_of(new_rule))
    operation = "auto_rule.updated"
    if set(diff) == {"enabled"}:
        operation = "auto_rule.enabled" if new_rule.enabled else "auto_rule.disabled"
    details: dict[str, Any] = {"rule_id": stored.id, "name": new_rule.name, "changes": diff}
    if change is not None:
        details.update(change_id=change.id, proposed_by=change.proposed_by)
    tx.audit(tenant_id=stored.rule.tenant_id, actor=actor, operation=operation, details=details)
    four_eyes.supersede(
        tx,
        actor,
        stored.rule.tenant_id,
        kind=ChangeKind.RULE_UPDATE,
        rule_id=stored.id,
        by=change.id if change is not None else actor.id,
    )
    return updated


def apply_creation(
    tx: Tx, actor: Principal, stored: StoredRule, change: PendingChange
) -> StoredRule:
    """A second admin approved a new rule: it approves from now on (if it is switched on)."""
    rule = parse_rule(
        change.payload["rule"], rule_id=stored.id, tenant_id=stored.rule.tenant_id, field=""
    )
    created = _write(tx, actor, stored, rule, _state_of(rule))
    tx.audit(
        tenant_id=rule.tenant_id,
        actor=actor,
        operation="auto_rule.created",
        details={
            "rule_id": rule.id,
            "rule": _settings(rule),
            "state": created.state.value,
            "change_id": change.id,
            "proposed_by": change.proposed_by,
        },
    )
    return created


def end_proposal(tx: Tx, actor: Principal, stored: StoredRule, state: RuleState) -> StoredRule:
    """A proposed rule's change was rejected or withdrawn: the rule never approves anything."""
    return _write(tx, actor, stored, replace(stored.rule, enabled=False), state)


def _write(
    tx: Tx, actor: Principal, stored: StoredRule, rule: AutoApprovalRule, state: RuleState
) -> StoredRule:
    updated = replace(
        stored,
        rule=replace(rule, enabled=state is RuleState.ACTIVE),
        state=state,
        updated_by=actor.id,
        updated_at=tx.now,
        version=stored.version + 1,
    )
    store.update_rule(tx.conn, updated, stored.version)
    return updated


def _check(stored: StoredRule, expected_version: int | None, verb: str) -> None:
    if expected_version is not None and expected_version != stored.version:
        raise Conflict(
            f"the rule is at version {stored.version}, not {expected_version}; reload it",
            state=stored.state.value,
            version=stored.version,
        )
    if stored.state is RuleState.PENDING:
        raise InvalidTransition(
            f"cannot {verb} a rule that waits for a second tenant admin: its author can "
            "withdraw the proposal, another admin can approve or reject it",
            state=stored.state.value,
        )
    if stored.state not in _LIVE:
        raise InvalidTransition(
            f"cannot {verb} a rule that is {stored.state.value}", state=stored.state.value
        )


def _state_of(rule: AutoApprovalRule) -> RuleState:
    return RuleState.ACTIVE if rule.enabled else RuleState.DISABLED


def _settings(rule: AutoApprovalRule) -> dict[str, Any]:
    """A rule's settings as people give them (``parse_rule`` takes them back)."""
    return {k: v for k, v in rule.as_dict().items() if k != "id"}


def view(stored: StoredRule, pending: Sequence[PendingChange] = ()) -> dict[str, Any]:
    """A rule as the API, the CLI and the pages show it; ``pending``: the tenant's changes
    waiting for a second admin (those of this rule are named)."""
    data = stored.rule.as_dict()
    data.update(
        tenant_id=stored.rule.tenant_id,
        state=stored.state.value,
        created_by=stored.created_by,
        created_at=format_instant(stored.created_at),
        updated_by=stored.updated_by,
        updated_at=format_instant(stored.updated_at),
        version=stored.version,
        pending_changes=[
            c.id for c in pending if c.target_id == stored.id and c.state is ChangeState.PENDING
        ],
    )
    return data
