"""The main navigation, by role: each person sees the sections their roles can use.

This only decides which links to show; whether a page may be used is decided by
the service layer and the permission matrix behind it, exactly as for the API.
"""

from __future__ import annotations

from dataclasses import dataclass

from lockbox.domain.roles import Principal, Role
from lockbox.web.rendering import NavItem


@dataclass(frozen=True)
class Section:
    key: str
    label: str
    href: str
    roles: frozenset[Role]


_CUSTOMER_DECIDERS = frozenset({Role.APPROVER, Role.TENANT_ADMIN})
_CUSTOMERS = frozenset({Role.APPROVER, Role.TENANT_ADMIN, Role.AUDITOR})
_STAFF_WORK = frozenset({Role.ENGINEER, Role.MANAGER})

SECTIONS: tuple[Section, ...] = (
    Section("approvals", "Approvals", "/approvals", _CUSTOMER_DECIDERS),
    Section("reviews", "Reviews", "/reviews", frozenset({Role.MANAGER})),
    Section("access", "Active access", "/access", _CUSTOMER_DECIDERS | _STAFF_WORK),
    Section("new-request", "Request access", "/requests/new", frozenset({Role.ENGINEER})),
    Section("requests", "Requests", "/requests", _CUSTOMERS | _STAFF_WORK),
    Section("cases", "Cases", "/cases", _STAFF_WORK),
    Section("policy", "Policy", "/policy", frozenset({Role.TENANT_ADMIN})),
    Section("auto-approval", "Auto-approval", "/auto-approval", frozenset({Role.TENANT_ADMIN})),
    Section("users", "People", "/users", frozenset({Role.TENANT_ADMIN})),
    Section("webhooks", "Webhooks", "/webhooks", frozenset({Role.TENANT_ADMIN})),
    Section("sign-in", "Sign-in", "/sign-in", frozenset({Role.TENANT_ADMIN})),
    Section("sessions", "Sessions", "/sessions", frozenset({Role.TENANT_ADMIN})),
    Section("audit", "Audit log", "/audit", frozenset({Role.TENANT_ADMIN, Role.AUDITOR})),
    Section("tenants", "Tenants", "/admin/tenants", frozenset({Role.PROVIDER_ADMIN})),
    Section("staff", "Staff", "/admin/users", frozenset({Role.PROVIDER_ADMIN})),
    Section("outbox", "Outbox", "/admin/outbox", frozenset({Role.PROVIDER_ADMIN})),
    Section("keys", "Signing keys", "/admin/keys", frozenset({Role.PROVIDER_ADMIN})),
    Section("account", "Your account", "/account", frozenset(Role)),
)


def visible(principal: Principal) -> list[Section]:
    return [s for s in SECTIONS if any(principal.has(r) for r in s.roles)]


def items(principal: Principal, current: str | None) -> list[NavItem]:
    return [NavItem(s.label, s.href, s.key == current) for s in visible(principal)]


def home(principal: Principal) -> str:
    """Where a person lands after signing in: the first section of their work."""
    sections = [s for s in visible(principal) if s.key != "account"]
    return sections[0].href if sections else "/account"
