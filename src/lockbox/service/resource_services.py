"""Registering what a resource service serves, and looking it up on the enforcement path.

A resource-service user is provider software (a mail store) with an API token. By
default it serves nothing; the provider admin registers the tenants it serves (or
every tenant) and the resource prefixes it owns (``exchange/``), and the audience
its access tokens carry. The enforcement use cases (:mod:`lockbox.service.access`)
answer anything outside that scope exactly like a missing object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lockbox.domain.audit import PROVIDER_CHAIN
from lockbox.domain.errors import AlreadyExists, NotFound, ValidationError
from lockbox.domain.permissions import Intent, authorize
from lockbox.domain.resource_service import ServiceScope, scope
from lockbox.domain.roles import Principal, Role
from lockbox.service.app import Lockbox, Tx
from lockbox.service.tenants import load_tenant
from lockbox.service.users import load_user
from lockbox.store import resource_services as store


@dataclass(frozen=True)
class Registration:
    scope: ServiceScope
    tenant_slugs: tuple[str, ...]  # of ``scope.tenant_ids``, for people


def register(
    app: Lockbox,
    actor: Principal,
    user_ref: str,
    *,
    tenants: list[str] | str,
    prefixes: list[str],
    audience: str | None = None,
) -> Registration:
    """Replace what ``user_ref`` (a resource service) serves. ``tenants`` may be ``"*"``."""
    with app.tx() as tx:
        user = load_user(tx, actor, user_ref, Intent.USER_VIEW)
        authorize(actor, Intent.SERVICE_REGISTER, kind="service", tenant_id=None)
        if Role.RESOURCE_SERVICE not in user.roles:
            raise ValidationError("user", "is not a resource service (role resource_service)")
        tenant_ids: list[str] | str = "*"
        if tenants != "*":
            if not isinstance(tenants, list):
                raise ValidationError("tenants", "must be a list of tenants or '*'")
            tenant_ids = [
                _tenant_id(tx, actor, ref, f"tenants[{i}]") for i, ref in enumerate(tenants)
            ]
        registered = scope(user.id, tenant_ids=tenant_ids, prefixes=prefixes, audience=audience)
        if registered.audience is not None:
            holder = store.by_audience(tx.conn, registered.audience)
            if holder is not None and holder.user_id != user.id:
                raise AlreadyExists(
                    f"another resource service already uses the audience {audience!r}",
                    field="audience",
                )
        store.put(tx.conn, registered, tx.now)
        # Which tenants' access a service can check is the provider's doing: its own chain.
        tx.audit(
            tenant_id=PROVIDER_CHAIN,
            actor=actor,
            operation="service.registered",
            details={
                "user_id": user.id,
                "tenants": "*" if registered.all_tenants else sorted(registered.tenant_ids),
                "prefixes": list(registered.prefixes),
                "audience": registered.audience,
            },
        )
        return Registration(registered, _slugs(tx, registered))


def get_registration(app: Lockbox, actor: Principal, user_ref: str) -> Registration:
    with app.read() as tx:
        user = load_user(tx, actor, user_ref, Intent.USER_VIEW)
        authorize(actor, Intent.SERVICE_REGISTER, kind="service", tenant_id=None)
        found = store.get(tx.conn, user.id) or ServiceScope(user_id=user.id)
        return Registration(found, _slugs(tx, found))


def scope_of(tx: Tx, actor: Principal) -> ServiceScope:
    """The caller's registration (empty: serves nothing) — on every enforcement call."""
    return store.get(tx.conn, actor.id) or ServiceScope(user_id=actor.id)


def _tenant_id(tx: Tx, actor: Principal, ref: object, field: str) -> str:
    if not isinstance(ref, str) or not ref:
        raise ValidationError(field, "must be a tenant slug or id")
    try:
        return load_tenant(tx, actor, ref).id
    except NotFound as exc:
        raise ValidationError(field, f"no tenant {ref!r}") from exc


def _slugs(tx: Tx, found: ServiceScope) -> tuple[str, ...]:
    slugs = []
    for tenant_id in sorted(found.tenant_ids):
        tenant = tx.tenant(tenant_id)
        slugs.append(tenant.slug if tenant else tenant_id)
    return tuple(sorted(slugs))


def view(registration: Registration) -> dict[str, Any]:
    s = registration.scope
    return {
        "user_id": s.user_id,
        "tenants": "*" if s.all_tenants else list(registration.tenant_slugs),
        "prefixes": list(s.prefixes),
        "audience": s.audience,
    }
