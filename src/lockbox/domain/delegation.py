"""Delegation: an approver hands their approvals to a colleague for a while.

While a delegation is in force, the delegate may approve (or deny) what the delegator
could: the delegator's roles and groups count as the delegate's for a stage, and the
"approval needed" messages reach the delegate too. It never adds approvals: a decision
made on someone's behalf is recorded with ``on_behalf_of``, and the delegator and
their delegate together decide at most once per request, so a stage that needs two
distinct people still needs two.

Rules (checked here, on plain values): both are people of the same tenant who may
approve (approver or tenant admin), not the same person, the period starts no earlier
than now (a few seconds of clock skew aside) and lasts at most :data:`MAX_PERIOD`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from lockbox.domain.errors import ValidationError
from lockbox.domain.roles import Role

MAX_PERIOD = timedelta(days=90)
MIN_PERIOD = timedelta(minutes=15)
DECIDERS = frozenset({Role.APPROVER, Role.TENANT_ADMIN})


@dataclass(frozen=True)
class Delegation:
    id: str
    tenant_id: str
    from_user: str
    to_user: str
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    created_by: str
    reason: str | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None


@dataclass(frozen=True)
class Delegator:
    """Someone whose approvals the acting person holds now, and their roles."""

    user_id: str
    roles: frozenset[Role]


def check_period(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    """A delegation's period: from now (or later) for at least 15 minutes, at most 90 days."""
    if starts_at < now - timedelta(minutes=5):
        raise ValidationError("starts_at", "must not lie in the past")
    if ends_at - starts_at < MIN_PERIOD:
        raise ValidationError("ends_at", "must be at least 15 minutes after the start")
    if ends_at - starts_at > MAX_PERIOD:
        raise ValidationError("ends_at", "a delegation lasts at most 90 days")


def check_people(
    *,
    from_id: str,
    from_roles: frozenset[Role],
    from_tenant: str | None,
    to_id: str,
    to_roles: frozenset[Role],
    to_tenant: str | None,
    to_active: bool,
) -> None:
    """Both may approve, in the same tenant; nobody delegates to themselves."""
    if not from_roles & DECIDERS:
        raise ValidationError("from", "only an approver or tenant admin has approvals to hand on")
    if to_id == from_id:
        raise ValidationError("to", "choose someone else than yourself")
    if to_tenant is None or to_tenant != from_tenant or not to_active:
        raise ValidationError("to", "is not an active person of your organisation")
    if not to_roles & DECIDERS:
        raise ValidationError("to", "can only be an approver or tenant admin of your organisation")
