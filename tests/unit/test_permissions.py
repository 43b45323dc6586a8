"""Properties of the permission matrix (the single table of who may do what)."""

from __future__ import annotations

import pytest

from lockbox.domain.errors import NotFound, PermissionDenied
from lockbox.domain.permissions import (
    MATRIX,
    VISIBILITY,
    Intent,
    Scope,
    allows,
    authorize,
    scopes,
    visible_tenant_filter,
)
from lockbox.domain.roles import CUSTOMER_ROLES, PROVIDER_ROLES, Principal, Role, Side

CONTOSO, FABRIKAM = "ten_contoso", "ten_fabrikam"


def principal(role: Role, pid: str = "usr_1", tenant: str = CONTOSO) -> Principal:
    side = role.side
    return Principal(
        id=pid,
        side=side,
        roles=frozenset({role}),
        tenant_id=tenant if side is Side.CUSTOMER else None,
    )


def test_every_role_has_a_row() -> None:
    assert set(MATRIX) == set(Role)
    assert set(Role) == PROVIDER_ROLES | CUSTOMER_ROLES
    assert not PROVIDER_ROLES & CUSTOMER_ROLES


@pytest.mark.parametrize("role", sorted(CUSTOMER_ROLES))
def test_customer_roles_never_reach_other_tenants(role: Role) -> None:
    assert Scope.ANY_TENANT not in MATRIX[role].values()
    p = principal(role)
    for intent in Intent:
        assert not allows(p, intent, FABRIKAM, owner_id=None)
        assert not allows(p, intent, None, owner_id=None)


@pytest.mark.parametrize("role", sorted(PROVIDER_ROLES))
def test_provider_roles_never_hold_tenant_scoped_grants(role: Role) -> None:
    assert Scope.OWN_TENANT not in MATRIX[role].values()


def test_provider_staff_cannot_decide_or_revoke_and_customers_cannot_act_as_staff() -> None:
    staff_only = {
        Intent.TENANT_CREATE,
        Intent.CASE_OPEN,
        Intent.REQUEST_SUBMIT,
        Intent.REQUEST_REVIEW,
        Intent.REQUEST_CLOSE,
        Intent.ACCESS_TOKEN,
        Intent.ACCESS_CHECK,
        Intent.ACCESS_REPORT,
        Intent.KEYS_MANAGE,
        Intent.OUTBOX_MANAGE,
    }
    customer_only = {Intent.REQUEST_DECIDE, Intent.REQUEST_REVOKE, Intent.POLICY_CHANGE}
    for role in Role:
        granted = set(MATRIX[role])
        if role in CUSTOMER_ROLES:
            assert not granted & staff_only, role
        else:
            assert not granted & customer_only, role


def test_a_role_of_the_other_side_never_counts() -> None:
    # A provider principal holding approver, a customer principal holding manager:
    staff = Principal("usr_s", Side.PROVIDER, frozenset({Role.MANAGER, Role.APPROVER}))
    assert scopes(staff, Intent.REQUEST_DECIDE) == set()
    assert not allows(staff, Intent.REQUEST_DECIDE, CONTOSO)
    cust = Principal("usr_c", Side.CUSTOMER, frozenset({Role.MANAGER, Role.ENGINEER}), CONTOSO)
    for intent in Intent:
        assert not allows(cust, intent, CONTOSO, owner_id="usr_c"), intent
    # a customer principal without a tenant gets nothing from OWN_TENANT grants
    orphan = Principal("usr_o", Side.CUSTOMER, frozenset({Role.TENANT_ADMIN}), None)
    assert not allows(orphan, Intent.REQUEST_VIEW, CONTOSO)
    assert not allows(orphan, Intent.REQUEST_VIEW, None)


def test_self_scope_is_the_owner_only() -> None:
    eng = principal(Role.ENGINEER, "usr_erin")
    assert allows(eng, Intent.REQUEST_VIEW, CONTOSO, owner_id="usr_erin")
    assert not allows(eng, Intent.REQUEST_VIEW, CONTOSO, owner_id="usr_eddie")
    assert not allows(eng, Intent.REQUEST_VIEW, CONTOSO, owner_id=None)


@pytest.mark.parametrize("role", sorted(CUSTOMER_ROLES))
def test_foreign_tenant_objects_are_not_found(role: Role) -> None:
    p = principal(role, tenant=FABRIKAM)
    for kind, visibility in VISIBILITY.items():
        for intent in Intent:
            with pytest.raises(NotFound):
                authorize(p, intent, kind=kind, tenant_id=CONTOSO, owner_id="usr_x")
        assert not allows(p, visibility, CONTOSO)


def test_visible_but_forbidden_is_permission_denied() -> None:
    cases = [
        (principal(Role.AUDITOR), Intent.REQUEST_DECIDE, "request"),
        (principal(Role.APPROVER), Intent.REQUEST_REVIEW, "request"),
        (principal(Role.APPROVER), Intent.AUDIT_READ, "tenant"),
        (principal(Role.APPROVER), Intent.POLICY_CHANGE, "tenant"),
        (principal(Role.MANAGER), Intent.REQUEST_DECIDE, "request"),
        (principal(Role.ENGINEER, "usr_x"), Intent.REQUEST_REVOKE, "request"),
    ]
    for p, intent, kind in cases:
        with pytest.raises(PermissionDenied) as info:
            authorize(p, intent, kind=kind, tenant_id=CONTOSO, owner_id="usr_x")
        assert not isinstance(info.value, NotFound)
        assert intent.value in str(info.value)


def test_everything_not_granted_is_denied() -> None:
    nobody = Principal("usr_n", Side.PROVIDER, frozenset())
    for intent in Intent:
        assert not allows(nobody, intent, CONTOSO, owner_id="usr_n")
    assert not allows(Principal.system(), Intent.REQUEST_VIEW, CONTOSO)


def test_matrix_grants_match_allows() -> None:
    """For every role and intent: granted exactly when the matrix says so (for own objects)."""
    for role in Role:
        p = principal(role)
        for intent in Intent:
            expected = intent in MATRIX[role] and MATRIX[role][intent] is not Scope.STAFF
            assert allows(p, intent, CONTOSO, owner_id=p.id) is expected, (role, intent)


def test_staff_scope_reaches_only_provider_staff_objects() -> None:
    """Provider admins manage staff credentials; a customer's credentials are out of reach,
    or provider staff could approve on the customer's behalf."""
    admin = principal(Role.PROVIDER_ADMIN)
    assert allows(admin, Intent.TOKEN_MANAGE, None)
    assert not allows(admin, Intent.TOKEN_MANAGE, CONTOSO)
    assert allows(principal(Role.TENANT_ADMIN), Intent.TOKEN_MANAGE, CONTOSO)
    assert not allows(principal(Role.TENANT_ADMIN), Intent.TOKEN_MANAGE, None)
    for role in Role:
        if role.side is Side.CUSTOMER:
            assert Scope.STAFF not in MATRIX[role].values()


def test_visible_tenant_filter() -> None:
    assert visible_tenant_filter(principal(Role.MANAGER), Intent.REQUEST_VIEW) == (True, None)
    assert visible_tenant_filter(principal(Role.APPROVER), Intent.REQUEST_VIEW) == (False, CONTOSO)
    assert visible_tenant_filter(principal(Role.ENGINEER), Intent.REQUEST_VIEW) == (False, None)
    assert visible_tenant_filter(principal(Role.APPROVER), Intent.AUDIT_READ) == (False, None)
    assert visible_tenant_filter(principal(Role.PROVIDER_ADMIN), Intent.REQUEST_VIEW) == (
        False,
        None,
    )


def test_operator_is_a_provider_admin_not_an_approver() -> None:
    op = Principal.operator()
    assert allows(op, Intent.TENANT_CREATE, None)
    assert allows(op, Intent.TOKEN_MANAGE, CONTOSO)  # onboarding: first customer credentials
    assert not allows(op, Intent.REQUEST_DECIDE, CONTOSO)
    assert not allows(op, Intent.POLICY_CHANGE, CONTOSO)


def test_list_scope() -> None:
    from lockbox.domain.permissions import list_scope

    manager, approver = principal(Role.MANAGER), principal(Role.APPROVER)
    assert list_scope(manager, Intent.CASE_VIEW) == (True, None)  # every tenant
    assert list_scope(manager, Intent.CASE_VIEW, "ten_x") == (True, "ten_x")
    assert list_scope(approver, Intent.CASE_VIEW) == (True, CONTOSO)  # own tenant only
    assert list_scope(approver, Intent.CASE_VIEW, CONTOSO) == (True, CONTOSO)
    assert list_scope(approver, Intent.CASE_VIEW, "ten_other") == (False, None)
    assert list_scope(approver, Intent.AUDIT_READ) == (False, None)  # no grant at all
