"""The permission matrix: role × intent → scope.

This is the single place that says who may do what. The service layer asks
:func:`authorize` before every use case; adapters never re-implement it.
Object-level rules that depend on the person, not the role (the requester may
not review their own request), live in the transition table in
:mod:`lockbox.domain.lifecycle`.
"""

from __future__ import annotations

from enum import StrEnum

from lockbox.domain.errors import NotFound, PermissionDenied
from lockbox.domain.roles import ActorKind, Principal, Role, Side


class Intent(StrEnum):
    TENANT_CREATE = "tenant.create"
    TENANT_LIST = "tenant.list"
    TENANT_VIEW = "tenant.view"
    POLICY_VIEW = "policy.view"
    POLICY_CHANGE = "policy.change"
    USER_MANAGE = "user.manage"
    USER_VIEW = "user.view"
    TENANT_DOMAINS = "tenant.domains"  # which e-mail domains belong to a tenant
    USER_PASSWORD_RESET = "user.password_reset"  # e-mail another user a one-time reset code
    #: List and revoke other users' credentials (API tokens, sessions). Revoking takes a
    #: credential away; nothing in the matrix lets anyone *obtain* another person's.
    TOKEN_MANAGE = "token.manage"
    #: Create a credential another person can act with (an API token or a password for
    #: someone else). Granted to no role: only the local operator, to bootstrap a tenant.
    CREDENTIAL_ISSUE = "credential.issue"
    SERVICE_REGISTER = "service.register"  # which tenants and resources a resource service serves
    CASE_OPEN = "case.open"
    CASE_CLOSE = "case.close"
    CASE_VIEW = "case.view"
    REQUEST_SUBMIT = "request.submit"
    REQUEST_VIEW = "request.view"
    REQUEST_REVIEW = "request.review"
    REQUEST_DECIDE = "request.decide"
    REQUEST_CANCEL = "request.cancel"
    #: Ask for more time on granted access (the customer approves it like the request).
    REQUEST_EXTEND = "request.extend"
    #: Hand one's own approvals to another approver of the tenant for a period (and see
    #: the tenant's delegations).
    APPROVAL_DELEGATE = "approval.delegate"
    REQUEST_CLOSE = "request.close"
    REQUEST_REVOKE = "request.revoke"
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    #: Read, export and verify the provider's own chain (staff, credentials, tenants, keys).
    AUDIT_PROVIDER = "audit.provider"
    #: See who at the provider could act on a tenant: the holders of staff roles and the
    #: provider-chain records that concern the tenant (a filtered view for its auditors).
    AUDIT_STAFF = "audit.staff"
    ACCESS_TOKEN = "access.token"  # an engineer obtains a signed access token
    ACCESS_CHECK = "access.check"  # a resource service asks whether access is allowed
    ACCESS_REPORT = "access.report"  # a resource service reports what the engineer did
    WEBHOOK_MANAGE = "webhook.manage"
    OUTBOX_MANAGE = "outbox.manage"
    KEYS_MANAGE = "keys.manage"
    #: Add, list, rotate and delete help-desk integrations (their signing secrets).
    INTEGRATION_MANAGE = "integration.manage"
    #: Change a case's title or assignee. Only a help-desk integration does, for its tickets.
    CASE_UPDATE = "case.update"
    #: Read a tenant's auto-approval rules (what its lockbox approves without a person).
    AUTO_RULE_VIEW = "auto_rule.view"
    #: Write, loosen, tighten, switch off and delete auto-approval rules.
    AUTO_RULE_MANAGE = "auto_rule.manage"
    #: Read the changes waiting for a second tenant admin (four eyes), and their outcome.
    CHANGE_VIEW = "change.view"
    #: Approve or reject another admin's pending change, or withdraw one's own.
    CHANGE_DECIDE = "change.decide"


class Scope(StrEnum):
    """How far a grant reaches."""

    SELF = "self"  # only objects the principal owns (their own requests, tokens)
    OWN_TENANT = "own_tenant"  # objects of the principal's tenant (customer roles)
    ANY_TENANT = "any_tenant"  # provider roles, across tenants
    STAFF = "staff"  # provider roles, only objects of provider staff (no tenant)


_I = Intent
_ANY, _OWN, _SELF, _STAFF = Scope.ANY_TENANT, Scope.OWN_TENANT, Scope.SELF, Scope.STAFF

#: The matrix. A missing entry means: denied.
MATRIX: dict[Role, dict[Intent, Scope]] = {
    Role.ENGINEER: {
        _I.TENANT_LIST: _ANY,
        _I.TENANT_VIEW: _ANY,
        _I.POLICY_VIEW: _ANY,
        _I.CASE_OPEN: _ANY,
        _I.CASE_CLOSE: _SELF,
        _I.CASE_VIEW: _ANY,
        _I.REQUEST_SUBMIT: _ANY,
        _I.REQUEST_VIEW: _SELF,
        _I.REQUEST_CANCEL: _SELF,
        _I.REQUEST_EXTEND: _SELF,
        _I.REQUEST_CLOSE: _SELF,
        _I.ACCESS_TOKEN: _SELF,
    },
    Role.MANAGER: {
        _I.TENANT_LIST: _ANY,
        _I.TENANT_VIEW: _ANY,
        _I.POLICY_VIEW: _ANY,
        _I.USER_VIEW: _ANY,
        _I.CASE_OPEN: _ANY,
        _I.CASE_CLOSE: _ANY,
        _I.CASE_VIEW: _ANY,
        _I.REQUEST_VIEW: _ANY,
        _I.REQUEST_REVIEW: _ANY,
        _I.REQUEST_CLOSE: _ANY,
    },
    Role.PROVIDER_ADMIN: {
        _I.TENANT_CREATE: _ANY,
        _I.TENANT_LIST: _ANY,
        _I.TENANT_VIEW: _ANY,
        _I.POLICY_VIEW: _ANY,
        _I.TENANT_DOMAINS: _ANY,
        _I.USER_MANAGE: _ANY,
        _I.USER_VIEW: _ANY,
        # Staff credentials only: provider staff never touch a customer's credentials.
        _I.TOKEN_MANAGE: _STAFF,
        _I.USER_PASSWORD_RESET: _STAFF,
        _I.SERVICE_REGISTER: _ANY,
        _I.AUDIT_VERIFY: _ANY,
        _I.AUDIT_PROVIDER: _ANY,
        _I.AUDIT_STAFF: _ANY,
        _I.WEBHOOK_MANAGE: _ANY,
        _I.OUTBOX_MANAGE: _ANY,
        _I.KEYS_MANAGE: _ANY,
        _I.INTEGRATION_MANAGE: _ANY,
    },
    Role.RESOURCE_SERVICE: {
        _I.ACCESS_CHECK: _ANY,
        _I.ACCESS_REPORT: _ANY,
    },
    Role.TENANT_ADMIN: {
        _I.TENANT_VIEW: _OWN,
        _I.POLICY_VIEW: _OWN,
        _I.POLICY_CHANGE: _OWN,
        _I.USER_MANAGE: _OWN,
        _I.USER_VIEW: _OWN,
        _I.TOKEN_MANAGE: _OWN,
        _I.USER_PASSWORD_RESET: _OWN,
        _I.CASE_VIEW: _OWN,
        _I.REQUEST_VIEW: _OWN,
        _I.REQUEST_DECIDE: _OWN,
        _I.REQUEST_REVOKE: _OWN,
        _I.APPROVAL_DELEGATE: _OWN,
        _I.AUDIT_READ: _OWN,
        _I.AUDIT_VERIFY: _OWN,
        _I.AUDIT_STAFF: _OWN,
        _I.WEBHOOK_MANAGE: _OWN,
        _I.AUTO_RULE_VIEW: _OWN,
        _I.AUTO_RULE_MANAGE: _OWN,
        _I.CHANGE_VIEW: _OWN,
        _I.CHANGE_DECIDE: _OWN,
    },
    Role.APPROVER: {
        _I.TENANT_VIEW: _OWN,
        _I.POLICY_VIEW: _OWN,
        _I.CASE_VIEW: _OWN,
        _I.REQUEST_VIEW: _OWN,
        _I.REQUEST_DECIDE: _OWN,
        _I.REQUEST_REVOKE: _OWN,
        _I.APPROVAL_DELEGATE: _OWN,
    },
    Role.AUDITOR: {
        _I.TENANT_VIEW: _OWN,
        _I.POLICY_VIEW: _OWN,
        _I.CASE_VIEW: _OWN,
        _I.REQUEST_VIEW: _OWN,
        _I.AUDIT_READ: _OWN,
        _I.AUDIT_VERIFY: _OWN,
        _I.AUDIT_STAFF: _OWN,
        _I.AUTO_RULE_VIEW: _OWN,
        _I.CHANGE_VIEW: _OWN,
    },
}

#: What the local operator (direct database access through the CLI) may do beyond the
#: provider administrator: issue the first credentials of a tenant's users when
#: onboarding it. Anyone with the database can do that anyway; over the API nobody can
#: create a credential for another person, so two approvals are always two people.
OPERATOR_EXTRA = frozenset(
    {Intent.TOKEN_MANAGE, Intent.CREDENTIAL_ISSUE, Intent.USER_PASSWORD_RESET}
)

#: What a help-desk integration may do when a signed event of its help desk arrives. It is
#: software, not a person, and holds no role: it names tenants, opens support cases, and
#: updates and closes cases. :mod:`lockbox.service.helpdesk` reaches a case only through
#: the integration's own ticket links, so it only ever touches the cases it opened itself.
INTEGRATION_GRANTS: dict[Intent, Scope] = {
    Intent.TENANT_VIEW: Scope.ANY_TENANT,
    Intent.CASE_VIEW: Scope.ANY_TENANT,
    Intent.CASE_OPEN: Scope.ANY_TENANT,
    Intent.CASE_UPDATE: Scope.ANY_TENANT,
    Intent.CASE_CLOSE: Scope.ANY_TENANT,
}

#: Which intent makes an object *visible*; without it the object answers "not found".
VISIBILITY: dict[str, Intent] = {
    "tenant": Intent.TENANT_VIEW,
    "policy": Intent.TENANT_VIEW,
    "request": Intent.REQUEST_VIEW,
    "case": Intent.CASE_VIEW,
    "audit": Intent.TENANT_VIEW,
    "user": Intent.USER_VIEW,
    "auto_rule": Intent.AUTO_RULE_VIEW,
    "change": Intent.CHANGE_VIEW,
}


#: How a missing object of each kind is named, so an invisible one reads exactly the same.
NOT_FOUND_NAMES: dict[str, str] = {
    "request": "access request",
    "case": "support case",
    "auto_rule": "auto-approval rule",
    "change": "pending change",
}


def scopes(principal: Principal, intent: Intent) -> set[Scope]:
    """Every scope under which any of the principal's roles grants ``intent``."""
    found: set[Scope] = set()
    if principal.kind is ActorKind.INTEGRATION and intent in INTEGRATION_GRANTS:
        found.add(INTEGRATION_GRANTS[intent])
    for role in principal.roles:
        if role.side != principal.side:
            continue  # a role of the other side never counts (customers cannot act as staff)
        scope = MATRIX.get(role, {}).get(intent)
        if scope is not None:
            found.add(scope)
    return found


def allows(
    principal: Principal, intent: Intent, tenant_id: str | None, owner_id: str | None = None
) -> bool:
    """Whether ``principal`` may perform ``intent`` on an object of ``tenant_id`` owned by ``owner_id``."""
    if principal.kind is ActorKind.OPERATOR and intent in OPERATOR_EXTRA:
        return True
    for scope in scopes(principal, intent):
        if scope is Scope.ANY_TENANT and principal.side is Side.PROVIDER:
            return True
        if scope is Scope.STAFF and principal.side is Side.PROVIDER and tenant_id is None:
            return True
        if (
            scope is Scope.OWN_TENANT
            and principal.side is Side.CUSTOMER
            and tenant_id is not None
            and principal.tenant_id == tenant_id
        ):
            return True
        if scope is Scope.SELF and owner_id is not None and owner_id == principal.id:
            return True
    return False


def authorize(
    principal: Principal,
    intent: Intent,
    *,
    kind: str,
    tenant_id: str | None,
    owner_id: str | None = None,
    view_owner_id: str | None = None,
) -> None:
    """Raise unless the intent is allowed; invisible objects raise :class:`NotFound`.

    An object the principal may not even see answers exactly like a missing
    one, so a foreign tenant's ids leak nothing. ``view_owner_id`` is whom
    the object belongs to for visibility purposes, if it differs from
    ``owner_id``.
    """
    visibility = VISIBILITY.get(kind)
    if visibility is not None and not allows(
        principal, visibility, tenant_id, view_owner_id or owner_id
    ):
        raise NotFound(f"{NOT_FOUND_NAMES.get(kind, kind)} not found")
    if not allows(principal, intent, tenant_id, owner_id):
        raise PermissionDenied(f"your roles do not allow {intent.value}")


def visible_tenant_filter(principal: Principal, intent: Intent) -> tuple[bool, str | None]:
    """For list queries: (any tenant allowed?, the only tenant allowed otherwise).

    Returns ``(False, None)`` when nothing at all is visible.
    """
    granted = scopes(principal, intent)
    if Scope.ANY_TENANT in granted and principal.side is Side.PROVIDER:
        return True, None
    if Scope.OWN_TENANT in granted and principal.side is Side.CUSTOMER:
        return False, principal.tenant_id
    return False, None


def list_scope(
    principal: Principal, intent: Intent, requested: str | None = None
) -> tuple[bool, str | None]:
    """What a list query may return: ``(anything visible?, tenant to filter by)``.

    ``requested`` is a tenant the caller asked for (already resolved); a filter
    tenant of None means "every tenant". A customer asking for another tenant
    sees nothing, exactly as if that tenant had nothing.
    """
    any_tenant, only = visible_tenant_filter(principal, intent)
    if any_tenant:
        return True, requested
    if only is None or (requested is not None and requested != only):
        return False, None
    return True, only
