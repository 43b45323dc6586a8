"""Who can act: roles, principals and the sides they belong to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Side(StrEnum):
    """Provider staff and software vs. people of a customer tenant."""

    PROVIDER = "provider"
    CUSTOMER = "customer"


class Role(StrEnum):
    ENGINEER = "engineer"
    MANAGER = "manager"
    PROVIDER_ADMIN = "provider_admin"
    RESOURCE_SERVICE = "resource_service"
    TENANT_ADMIN = "tenant_admin"
    APPROVER = "approver"
    AUDITOR = "auditor"

    @property
    def side(self) -> Side:
        return Side.CUSTOMER if self in CUSTOMER_ROLES else Side.PROVIDER


PROVIDER_ROLES = frozenset(
    {Role.ENGINEER, Role.MANAGER, Role.PROVIDER_ADMIN, Role.RESOURCE_SERVICE}
)
CUSTOMER_ROLES = frozenset({Role.TENANT_ADMIN, Role.APPROVER, Role.AUDITOR})


class ActorKind(StrEnum):
    """What kind of actor an audit record names."""

    USER = "user"
    SYSTEM = "system"  # the deadline sweeper and other automatic transitions
    OPERATOR = "operator"  # someone with direct access to the database via the local CLI
    INTEGRATION = "integration"  # a help desk, through a signed event (lockbox.service.helpdesk)


@dataclass(frozen=True)
class Principal:
    """An authenticated actor as the core sees it.

    ``tenant_id`` is set exactly for customer principals; provider principals
    belong to no tenant and work across tenants within their roles.
    """

    id: str
    side: Side
    roles: frozenset[Role] = field(default_factory=frozenset)
    tenant_id: str | None = None
    kind: ActorKind = ActorKind.USER
    display: str = ""
    #: The credential this principal acts with (``token:tok_…``, ``session:ses_…``,
    #: ``local-cli``): recorded with every decision, so one person using two credentials
    #: is visible and two approvals can be told apart by person *and* credential.
    credential: str | None = None
    #: For a session (``session:…``): when and how the person last proved who they are
    #: ("password", "password+totp", "passkey", "sso", …) and with which identity provider.
    #: What grants access needs this to be recent (:mod:`lockbox.domain.authn`).
    auth_time: datetime | None = None
    auth_method: str | None = None
    auth_provider: str | None = None

    def has(self, role: Role) -> bool:
        return role in self.roles

    @classmethod
    def system(cls) -> Principal:
        return cls(id="system", side=Side.PROVIDER, kind=ActorKind.SYSTEM, display="Lockbox")

    @classmethod
    def operator(cls) -> Principal:
        """Someone running the CLI against the database directly (bootstrap, recovery).

        Direct database access already implies full control, so the operator
        holds the provider administrator's rights, and nothing more: it still
        cannot approve on a customer's behalf.
        """
        return cls(
            id="operator",
            side=Side.PROVIDER,
            roles=frozenset({Role.PROVIDER_ADMIN}),
            kind=ActorKind.OPERATOR,
            display="local operator",
            credential="operator",
        )
