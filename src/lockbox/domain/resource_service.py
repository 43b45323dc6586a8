"""What a resource service serves: which tenants, which resource prefixes, which audience.

A resource service (a mail store, a file store) is provider software holding
customer content. It must learn about grants only for the tenants it serves
and the resources it owns: a mail store has no business asking about a file
store's folders or another region's tenants. Anything outside its scope
answers exactly like a missing object, and access tokens carry the audience
of the one service they are for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lockbox.domain.errors import ValidationError
from lockbox.domain.resources import validate_resource

#: The prefix that covers every resource.
ALL_RESOURCES = "*"
MAX_PREFIXES = 50
MAX_TENANTS = 1000
_AUDIENCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")


def validate_prefix(value: object, field: str) -> str:
    """``*`` (everything) or a resource-name prefix ending in ``/`` (``exchange/``)."""
    if value == ALL_RESOURCES:
        return ALL_RESOURCES
    if not isinstance(value, str) or not value.endswith("/") or len(value) < 2:
        raise ValidationError(field, "must be '*' or a resource prefix ending in '/' (exchange/)")
    validate_resource(value[:-1], field, pattern=False)
    return value


def validate_audience(value: object, field: str = "audience") -> str:
    if not isinstance(value, str) or not _AUDIENCE_RE.fullmatch(value):
        raise ValidationError(
            field, "must be 1-200 letters, digits or ._:/- (for example 'mailstore')"
        )
    return value


@dataclass(frozen=True)
class ServiceScope:
    """The registration of one resource-service user. No registration: it serves nothing."""

    user_id: str
    all_tenants: bool = False
    tenant_ids: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    audience: str | None = None

    def serves_tenant(self, tenant_id: str) -> bool:
        return self.all_tenants or tenant_id in self.tenant_ids

    def owns(self, resource: str) -> bool:
        """Whether ``resource`` (a name or a ``prefix/*`` pattern) is under one of its prefixes."""
        return any(p == ALL_RESOURCES or resource.startswith(p) for p in self.prefixes)

    def serves(self, tenant_id: str, resource: str) -> bool:
        return self.serves_tenant(tenant_id) and self.owns(resource)

    def owned(self, resources: tuple[str, ...]) -> tuple[str, ...]:
        """The part of a grant this service may enforce (what its tokens carry)."""
        return tuple(r for r in resources if self.owns(r))


def scope(
    user_id: str,
    *,
    tenant_ids: object,
    prefixes: object,
    audience: object = None,
) -> ServiceScope:
    """A validated registration; ``tenant_ids`` is a list of ids or ``"*"`` (every tenant)."""
    all_tenants = tenant_ids == "*"
    tenants: frozenset[str] = frozenset()
    if not all_tenants:
        if not isinstance(tenant_ids, list | tuple | frozenset | set):
            raise ValidationError("tenants", "must be a list of tenants or '*' for every tenant")
        if len(tenant_ids) > MAX_TENANTS:
            raise ValidationError("tenants", f"at most {MAX_TENANTS} tenants")
        tenants = frozenset(str(t) for t in tenant_ids)
    if not isinstance(prefixes, list | tuple) or not prefixes:
        raise ValidationError("prefixes", "name at least one resource prefix, or '*'")
    if len(prefixes) > MAX_PREFIXES:
        raise ValidationError("prefixes", f"at most {MAX_PREFIXES} prefixes")
    cleaned = tuple(
        dict.fromkeys(validate_prefix(p, f"prefixes[{i}]") for i, p in enumerate(prefixes))
    )
    return ServiceScope(
        user_id=user_id,
        all_tenants=all_tenants,
        tenant_ids=tenants,
        prefixes=cleaned,
        audience=None if audience is None else validate_audience(audience),
    )
