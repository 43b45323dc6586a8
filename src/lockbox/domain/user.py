"""Users and their role assignments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lockbox.domain.errors import ValidationError
from lockbox.domain.roles import CUSTOMER_ROLES, Principal, Role, Side


@dataclass(frozen=True)
class User:
    id: str
    email: str
    display_name: str
    side: Side
    tenant_id: str | None
    roles: frozenset[Role]
    created_at: datetime
    active: bool = True
    time_zone: str | None = None  # chosen for pages; None: UTC, refined by the browser

    def principal(self, credential: str | None = None) -> Principal:
        return Principal(
            id=self.id,
            side=self.side,
            roles=self.roles if self.active else frozenset(),
            tenant_id=self.tenant_id,
            display=self.display_name or self.email,
            credential=credential,
        )


def check_roles(side: Side, tenant_id: str | None, roles: frozenset[Role]) -> None:
    """Keep the two sides apart: customer roles need a tenant, provider roles must not have one."""
    if side is Side.CUSTOMER and not tenant_id:
        raise ValidationError("tenant", "a customer user belongs to exactly one tenant")
    if side is Side.PROVIDER and tenant_id:
        raise ValidationError("tenant", "provider staff do not belong to a tenant")
    for role in roles:
        if (role in CUSTOMER_ROLES) != (side is Side.CUSTOMER):
            raise ValidationError(
                "roles", f"role {role.value!r} is not available to {side.value} users"
            )


def parse_roles(values: list[str] | tuple[str, ...], field: str = "roles") -> frozenset[Role]:
    roles = set()
    for i, value in enumerate(values):
        try:
            roles.add(Role(value))
        except ValueError:
            allowed = ", ".join(r.value for r in Role)
            raise ValidationError(
                f"{field}[{i}]", f"unknown role {value!r}; one of {allowed}"
            ) from None
    return frozenset(roles)


def side_of(roles: frozenset[Role]) -> Side:
    sides = {r.side for r in roles}
    if len(sides) > 1:
        raise ValidationError("roles", "a user cannot hold both provider and customer roles")
    return sides.pop() if sides else Side.PROVIDER
