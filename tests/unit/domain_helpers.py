"""Pure-domain fixtures shared by the unit tests: principals of every role and requests in
every state, built through the real domain transitions (never by hand-setting a state)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lockbox.domain import request as domain
from lockbox.domain.case import CaseStatus, SupportCase
from lockbox.domain.lifecycle import State
from lockbox.domain.policy import LockboxPolicy
from lockbox.domain.request import AccessRequest
from lockbox.domain.roles import Principal, Role, Side

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
MAILBOX = "exchange/mailbox/alice@contoso.com"
CONTOSO = "ten_contoso"
FABRIKAM = "ten_fabrikam"

ON = LockboxPolicy()
OFF = LockboxPolicy(enabled=False)
TWO = LockboxPolicy(required_approvals=2)


def provider(pid: str, *roles: Role) -> Principal:
    return Principal(id=pid, side=Side.PROVIDER, roles=frozenset(roles))


def customer(pid: str, tenant: str, *roles: Role) -> Principal:
    return Principal(id=pid, side=Side.CUSTOMER, roles=frozenset(roles), tenant_id=tenant)


ENGINEER = provider("usr_erin", Role.ENGINEER)
ENGINEER2 = provider("usr_eddie", Role.ENGINEER)
MANAGER = provider("usr_mark", Role.MANAGER)
MANAGER_ENGINEER = provider("usr_mona", Role.MANAGER, Role.ENGINEER)
PROVIDER_ADMIN = provider("usr_pat", Role.PROVIDER_ADMIN)
SERVICE = provider("usr_mailstore", Role.RESOURCE_SERVICE)
# Provider staff who somehow hold a customer role: that role must never count.
STAFF_WITH_APPROVER = provider("usr_sneaky", Role.MANAGER, Role.APPROVER)
TENANT_ADMIN = customer("usr_ines", CONTOSO, Role.TENANT_ADMIN)
APPROVER = customer("usr_paula", CONTOSO, Role.APPROVER)
APPROVER2 = customer("usr_quinn", CONTOSO, Role.APPROVER)
AUDITOR = customer("usr_audrey", CONTOSO, Role.AUDITOR)
# A customer user who somehow holds provider roles: they must never count.
CUSTOMER_WITH_STAFF = customer("usr_cuthbert", CONTOSO, Role.APPROVER, Role.MANAGER, Role.ENGINEER)
FOREIGN_ADMIN = customer("usr_fay", FABRIKAM, Role.TENANT_ADMIN)
FOREIGN_APPROVER = customer("usr_fred", FABRIKAM, Role.APPROVER)
SYSTEM = Principal.system()


def case(
    engineer: Principal = ENGINEER, *, tenant: str = CONTOSO, open_: bool = True
) -> SupportCase:
    return SupportCase(
        id="case_1",
        tenant_id=tenant,
        title="Mailbox does not sync",
        engineer_id=engineer.id,
        status=CaseStatus.OPEN if open_ else CaseStatus.CLOSED,
        opened_at=T0,
        opened_by=engineer.id,
    )


def submitted(
    *, requester: Principal = ENGINEER, policy: LockboxPolicy = ON, at: datetime = T0
) -> AccessRequest:
    return domain.submit(
        request_id="req_1",
        actor=requester,
        case=case(requester),
        tenant_id=CONTOSO,
        policy=policy,
        resources=[MAILBOX],
        access_level="read",
        justification="Inspect sync state",
        now=at,
    ).request


def in_state(
    state: State, *, policy: LockboxPolicy = ON, requester: Principal = ENGINEER
) -> AccessRequest:
    """A request in ``state``, reached through real transitions starting at :data:`T0`."""
    r = submitted(requester=requester, policy=policy)
    if state is State.PENDING_REVIEW:
        return r
    if state is State.REJECTED:
        return domain.review(r, MANAGER, approve=False, comment=None, policy=policy, now=T0).request
    if state is State.EXPIRED:
        change = domain.expire(r, now=r.review_deadline)
        assert change is not None
        return change.request
    if state is State.CANCELED:
        return domain.cancel(r, requester, comment=None, now=T0).request
    r = domain.review(r, MANAGER, approve=True, comment=None, policy=policy, now=T0).request
    if state is State.PENDING_APPROVAL:
        assert r.state is state
        return r
    if r.state is State.PENDING_APPROVAL:
        if state is State.DENIED:
            return domain.decide(
                r, APPROVER, approve=False, comment=None, policy=policy, now=T0
            ).request
        r = domain.decide(r, APPROVER, approve=True, comment=None, policy=policy, now=T0).request
    assert r.state is State.APPROVED
    if state is State.APPROVED:
        return r
    if state is State.CLOSED:
        return domain.close(r, requester, comment=None, now=T0).request
    if state is State.REVOKED:
        return domain.revoke(r, APPROVER, comment=None, now=T0).request
    if state is State.ACCESS_ENDED:
        assert r.access_deadline is not None
        change = domain.expire(r, now=r.access_deadline)
        assert change is not None
        return change.request
    raise AssertionError(state)
