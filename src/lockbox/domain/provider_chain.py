"""Which of the provider's own audit records concern a customer.

The provider's chain records who at the provider could act: staff created,
their roles and credentials, tenants onboarded, keys rotated, provider-level
webhooks. A customer's auditor may read the part of it that bears on their
tenant, without seeing the provider's whole administration: see
:func:`concerns_tenant`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lockbox.domain.audit import AuditRecord
from lockbox.domain.roles import Role

#: Staff roles that can bring a person near a customer's data: engineers ask for and use
#: access, managers review (and grant it alone while a tenant's lockbox is off), provider
#: admins manage both.
POWERFUL_ROLES = frozenset({Role.ENGINEER.value, Role.MANAGER.value, Role.PROVIDER_ADMIN.value})

#: Record kinds that concern every tenant: the keys that sign every tenant's checkpoints
#: and receipts, and provider-level webhooks, which hear every tenant's events.
EVERY_TENANT = ("keys.", "webhook.")
PERSON_OPERATIONS = ("user.", "token.")


def _roles(value: object) -> set[str]:
    return {str(v) for v in value} if isinstance(value, list) else set()


def powerful_people(records: Iterable[AuditRecord]) -> set[str]:
    """Ids of staff who held a powerful role at any point in ``records``."""
    found: set[str] = set()
    for record in records:
        details = record.details
        roles = (
            _roles(details.get("roles")) | _roles(details.get("from")) | _roles(details.get("to"))
        )
        if record.operation in ("user.created", "user.roles_changed") and roles & POWERFUL_ROLES:
            found.add(str(details.get("user_id")))
    return found


def concerns_tenant(record: AuditRecord, tenant_id: str, powerful: set[str]) -> bool:
    """Whether a provider-chain record bears on ``tenant_id``.

    ``powerful`` is :func:`powerful_people` of the whole chain, so a person's
    token issued before their promotion still shows.
    """
    details: dict[str, Any] = record.details
    operation = record.operation
    if operation.startswith(EVERY_TENANT):
        return True
    if operation.startswith("tenant."):
        return details.get("tenant_id") == tenant_id
    if operation.startswith("service."):
        served = details.get("tenants")
        return served == "*" or (isinstance(served, list) and tenant_id in served)
    if operation.startswith(PERSON_OPERATIONS):
        return str(details.get("user_id")) in powerful
    return False
