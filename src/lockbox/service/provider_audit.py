"""Who at the provider could act on a tenant: the tenant's filtered view of the provider's chain.

The provider's own chain (``provider``) records staff created, their roles and
credentials, tenants onboarded, keys rotated and provider-level webhooks. A
tenant's auditors and admins (``audit.staff``) see the staff who hold an
engineer, manager or provider admin role now, and the records of that chain
that concern their tenant (:func:`lockbox.domain.provider_chain.concerns_tenant`),
each with its sequence number and hash and the chain's latest signed
checkpoint, so they can match the view against a checkpoint they hold.
"""

from __future__ import annotations

from typing import Any

from lockbox.domain.audit import PROVIDER_CHAIN
from lockbox.domain.errors import ValidationError
from lockbox.domain.permissions import Intent
from lockbox.domain.provider_chain import POWERFUL_ROLES, concerns_tenant, powerful_people
from lockbox.domain.roles import Principal, Role
from lockbox.service.app import Lockbox
from lockbox.service.tenants import load_tenant
from lockbox.store import checkpoints as checkpoint_store
from lockbox.store import repositories as repo

MAX_PAGE = 1000
_ROLES = [Role(r) for r in sorted(POWERFUL_ROLES)]


def staff_view(
    app: Lockbox, actor: Principal, tenant: str, *, after_seq: int = 0, limit: int = 100
) -> dict[str, Any]:
    """The staff who could act on ``tenant`` and a page of the provider records about it."""
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationError("limit", f"must be from 1 to {MAX_PAGE}")
    if not isinstance(after_seq, int) or after_seq < 0:
        raise ValidationError("cursor", "is not a cursor returned by this service")
    with app.read() as tx:
        found = load_tenant(tx, actor, tenant, Intent.AUDIT_STAFF)
        holders = repo.users_with_roles(tx.conn, _ROLES, tenant_id=None)
        records = list(repo.iter_audit(tx.conn, PROVIDER_CHAIN))
        head = repo.audit_head(tx.conn, PROVIDER_CHAIN) or (0, "0" * 64)
        latest = checkpoint_store.latest(tx.conn, PROVIDER_CHAIN)
    powerful = powerful_people(records)
    relevant = [r for r in records if r.seq > after_seq and concerns_tenant(r, found.id, powerful)]
    page = relevant[:limit]
    return {
        "tenant_id": found.id,
        "holders": [
            {
                "id": u.id,
                "email": u.email,
                "display_name": u.display_name,
                "roles": sorted(r.value for r in u.roles if r.value in POWERFUL_ROLES),
                "active": u.active,
            }
            for u in sorted(holders, key=lambda u: u.email)
        ],
        "items": [r.as_dict() for r in page],
        "next_cursor": str(page[-1].seq) if len(relevant) > limit else None,
        "head": {"seq": head[0], "hash": head[1]},
        "checkpoint": latest.checkpoint.document() if latest else None,
    }
