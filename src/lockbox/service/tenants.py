"""Tenant use cases: onboarding and the customer's lockbox policy."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from lockbox.domain.audit import PROVIDER_CHAIN
from lockbox.domain.changes import ChangeKind, PendingChange
from lockbox.domain.errors import AlreadyExists, ChangePending, Conflict, NotFound, ValidationError
from lockbox.domain.ids import new_id, validate_id
from lockbox.domain.permissions import Intent, authorize, list_scope
from lockbox.domain.policy import LockboxPolicy, validate_email
from lockbox.domain.roles import Principal
from lockbox.domain.tenant import Tenant, validate_domains, validate_slug
from lockbox.service import four_eyes, step_up
from lockbox.service.app import Lockbox, Tx
from lockbox.service.notifications import plan_webhooks
from lockbox.store import repositories as repo


def create_tenant(
    app: Lockbox,
    actor: Principal,
    *,
    slug: str,
    name: str,
    policy: dict[str, Any] | None = None,
    email_domains: list[str] | tuple[str, ...] = (),
) -> Tenant:
    authorize(actor, Intent.TENANT_CREATE, kind="tenant_new", tenant_id=None)
    clean_slug = validate_slug(slug)
    if clean_slug == PROVIDER_CHAIN:
        raise ValidationError(
            "slug", f"{PROVIDER_CHAIN!r} is reserved: it names the provider's audit chain"
        )
    clean_name = Tenant.validate_name(name)
    domains = validate_domains(list(email_domains))
    chosen = LockboxPolicy().with_changes(**(policy or {}))
    with app.tx() as tx:
        if repo.slug_taken(tx.conn, clean_slug):
            raise AlreadyExists(f"a tenant with slug {clean_slug!r} already exists", field="slug")
        _refuse_taken_domains(tx, domains, None)
        tenant = Tenant(
            id=new_id("tenant"),
            slug=clean_slug,
            name=clean_name,
            policy=chosen,
            created_at=tx.now,
            email_domains=domains,
        )
        repo.insert_tenant(tx.conn, tenant)
        tx.audit(
            tenant_id=tenant.id,
            actor=actor,
            operation="tenant.created",
            details={
                "slug": tenant.slug,
                "name": tenant.name,
                "policy": chosen.as_dict(),
                "email_domains": list(domains),
            },
        )
        # The provider's own chain too, after the tenant's head (lock order).
        tx.audit(
            tenant_id=PROVIDER_CHAIN,
            actor=actor,
            operation="tenant.created",
            details={"tenant_id": tenant.id, "slug": tenant.slug, "email_domains": list(domains)},
        )
    return tenant


def set_domains(app: Lockbox, actor: Principal, tenant_ref: str, domains: list[str]) -> Tenant:
    """The provider says which e-mail domains are the customer's (its admins add users there)."""
    clean = validate_domains(domains)
    with app.tx() as tx:
        tenant = load_tenant(tx, actor, tenant_ref, Intent.TENANT_DOMAINS, domains=True)
        repo.lock_tenant(tx.conn, tenant.id)
        _refuse_taken_domains(tx, clean, tenant.id)
        if set(clean) == set(tenant.email_domains):
            return tenant
        repo.set_tenant_domains(tx.conn, tenant.id, clean, tx.now)
        tx.audit(
            tenant_id=tenant.id,
            actor=actor,
            operation="tenant.domains_changed",
            details={"from": list(tenant.email_domains), "to": list(clean)},
        )
        tx.audit(
            tenant_id=PROVIDER_CHAIN,
            actor=actor,
            operation="tenant.domains_changed",
            details={"tenant_id": tenant.id, "from": list(tenant.email_domains), "to": list(clean)},
        )
    return replace(tenant, email_domains=clean)


def _refuse_taken_domains(tx: Tx, domains: tuple[str, ...], tenant_id: str | None) -> None:
    taken = repo.domain_owners(tx.conn, domains)
    for index, domain in enumerate(domains):
        owner = taken.get(domain)
        if owner is not None and owner != tenant_id:
            raise AlreadyExists(
                f"the domain {domain} already belongs to another tenant",
                field=f"email_domains[{index}]",
            )


def load_tenant(
    tx: Tx,
    actor: Principal,
    ref: str,
    intent: Intent = Intent.TENANT_VIEW,
    *,
    domains: bool = False,
) -> Tenant:
    """Find a tenant by id or slug; invisible tenants are 'not found'."""
    validate_id(ref, "tenant", "tenant")
    tenant = repo.get_tenant(tx.conn, ref, domains=domains)
    if tenant is None:
        raise NotFound("tenant not found")
    tx.remember("tenant", tenant.id, tenant)
    authorize(actor, intent, kind="tenant", tenant_id=tenant.id)
    return tenant


def get_tenant(app: Lockbox, actor: Principal, ref: str) -> Tenant:
    with app.read() as tx:
        return load_tenant(tx, actor, ref, domains=True)


def get_policy(app: Lockbox, actor: Principal, ref: str) -> Tenant:
    """A tenant, for reading its lockbox policy (the policy.view intent)."""
    with app.read() as tx:
        return load_tenant(tx, actor, ref, Intent.POLICY_VIEW, domains=True)


def list_tenants(app: Lockbox, actor: Principal) -> list[Tenant]:
    visible, tenant_id = list_scope(actor, Intent.TENANT_VIEW)
    if not visible:
        return []
    with app.read() as tx:
        return repo.list_tenants(tx.conn, tenant_id)


def _group_members(tx: Tx, tenant: Tenant, groups: object) -> dict[str, list[str]]:
    """Named groups with each member (an e-mail address or a user id) resolved to the user
    id of one of this tenant's people; anyone else is refused, naming the entry."""
    if not isinstance(groups, dict):
        raise ValidationError("groups", "must map group names to lists of people")
    resolved: dict[str, list[str]] = {}
    for name, members in groups.items():
        if not isinstance(members, list | tuple):
            raise ValidationError(f"groups.{name}", "must be a list of people")
        ids = []
        for i, member in enumerate(members):
            where = f"groups.{name}[{i}]"
            if not isinstance(member, str) or not member.strip():
                raise ValidationError(where, "must be an e-mail address or a user id")
            if "@" in member:
                ref = validate_email(member, where)
            else:
                ref = validate_id(member.strip(), "user", where)
            user = repo.get_user(tx.conn, ref)
            if user is None or user.tenant_id != tenant.id:
                raise ValidationError(where, f"{member!r} is not one of this organisation's people")
            ids.append(user.id)
        resolved[name] = ids
    return resolved


@dataclass(frozen=True)
class PolicyOutcome:
    """What became of a policy change: the tenant as it is now, and the change waiting for
    a second tenant admin if it widens access and the tenant has more than one admin (the
    policy is then unchanged)."""

    tenant: Tenant
    pending: PendingChange | None = None


def change_policy(
    app: Lockbox,
    actor: Principal,
    tenant_ref: str,
    changes: dict[str, Any],
    *,
    expected_version: int | None = None,
) -> Tenant:
    """A tenant admin turns the lockbox on/off or changes windows, approvals, addresses.

    A change that waits for a second tenant admin (four eyes) is not applied: this raises
    :class:`~lockbox.domain.errors.ChangePending` naming it (it is kept, committed).
    Callers that can show a pending change use :func:`update_policy`.
    """
    outcome = update_policy(app, actor, tenant_ref, changes, expected_version=expected_version)
    if outcome.pending is not None:
        reasons = "; ".join(outcome.pending.reasons)
        raise ChangePending(
            f"the change {reasons}: it waits for another tenant admin's approval "
            f"(pending change {outcome.pending.id}); the policy is unchanged",
            change_id=outcome.pending.id,
        )
    return outcome.tenant


def update_policy(
    app: Lockbox,
    actor: Principal,
    tenant_ref: str,
    changes: dict[str, Any],
    *,
    expected_version: int | None = None,
) -> PolicyOutcome:
    """Change the policy at once, or, if the change widens access
    (:meth:`~lockbox.domain.policy.LockboxPolicy.widens`) and the tenant has more than one
    active tenant admin, keep it for a second admin's approval (:mod:`lockbox.service.changes`)."""
    with app.tx() as tx:
        tenant = load_tenant(tx, actor, tenant_ref, Intent.POLICY_CHANGE, domains=True)
        if expected_version is not None and expected_version != tenant.version:
            # The current version (and whether the lockbox is on) go with the refusal, as
            # for requests, so a client can show what changed and retry with that ETag.
            raise Conflict(
                f"the policy is at version {tenant.version}, not {expected_version}; "
                "reload it and try again",
                state="enabled" if tenant.policy.enabled else "disabled",
                version=tenant.version,
            )
        if "groups" in changes:
            changes = {**changes, "groups": _group_members(tx, tenant, changes["groups"])}
        new_policy = tenant.policy.with_changes(**changes)
        diff = policy_diff(tenant.policy, new_policy)
        if not diff:
            return PolicyOutcome(tenant)
        step_up.require_recent(actor, tx.now, "change the lockbox policy")
        repo.lock_tenant(tx.conn, tenant.id)  # the tenant's changes queue (lock order, step 3)
        reasons = new_policy.widenings(tenant.policy)
        if reasons and four_eyes.second_admin_needed(tx, tenant.id):
            payload = {"base_version": tenant.version, "changes": diff}
            pending = four_eyes.propose(tx, actor, tenant.id, ChangeKind.POLICY, payload, reasons)
            return PolicyOutcome(tenant, pending)
        updated = apply_policy(tx, actor, tenant, new_policy)
    return PolicyOutcome(updated)


def policy_diff(before: LockboxPolicy, after: LockboxPolicy) -> dict[str, dict[str, Any]]:
    """``{setting: {"from": …, "to": …}}`` for every setting that differs (as ``as_dict``)."""
    old, new = before.as_dict(), after.as_dict()
    return {k: {"from": old.get(k), "to": new[k]} for k in new if old.get(k) != new[k]}


def policy_changes(diff: dict[str, Any]) -> dict[str, Any]:
    """A stored diff's new values as :meth:`LockboxPolicy.with_changes` keywords."""
    changes: dict[str, Any] = {}
    for key, value in diff.items():
        target = value.get("to") if isinstance(value, dict) else None
        if key.endswith("_window_seconds") and isinstance(target, int):
            changes[key.removesuffix("_seconds")] = timedelta(seconds=target)
        elif key == "notify_emails" and isinstance(target, list):
            changes[key] = tuple(target)
        else:
            changes[key] = target
    return changes


def apply_policy(
    tx: Tx,
    actor: Principal,
    tenant: Tenant,
    new_policy: LockboxPolicy,
    *,
    change: PendingChange | None = None,
) -> Tenant:
    """Write the new policy with a version check, audited (``policy.changed``); proposals
    made on the old version are superseded (they would no longer mean what they said)."""
    diff = policy_diff(tenant.policy, new_policy)
    updated = replace(tenant, policy=new_policy, version=tenant.version + 1)
    try:
        repo.update_tenant(tx.conn, updated, tenant.version)
    except Conflict as exc:  # a concurrent change committed between our read and write
        winner = repo.get_tenant(tx.conn, tenant.id)
        raise Conflict(
            exc.message,
            state="enabled" if winner is None or winner.policy.enabled else "disabled",
            version=winner.version if winner is not None else tenant.version + 1,
        ) from exc
    details: dict[str, Any] = {"changes": diff}
    if change is not None:
        details.update(change_id=change.id, proposed_by=change.proposed_by)
    tx.audit(tenant_id=tenant.id, actor=actor, operation="policy.changed", details=details)
    plan_webhooks(tx, "policy.changed", tenant.id, None, {"tenant_id": tenant.id, "changes": diff})
    four_eyes.supersede(
        tx,
        actor,
        tenant.id,
        kind=ChangeKind.POLICY,
        rule_id=None,
        by=change.id if change is not None else actor.id,
    )
    return updated
