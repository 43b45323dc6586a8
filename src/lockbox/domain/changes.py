"""Four eyes: a change that widens access waits for a second tenant admin.

When a tenant has more than one active tenant admin, creating an auto-approval rule,
loosening one, and a policy change that widens access (:meth:`LockboxPolicy.widens
<lockbox.domain.policy.LockboxPolicy.widens>`) are not applied at once: they become a
:class:`PendingChange`. Another tenant admin (never its author) approves it, which
applies it, or rejects it; its author may withdraw it. A change is proposed against the
version of what it changes (the policy, the rule); if that moved on before the second
admin decides, the change is *superseded* and never applied: it would no longer mean
what its author proposed. Tightening changes, and every change of a tenant with a
single admin, apply at once.

Nothing here stores or reads the clock: the service passes ``now`` and writes the
result with its audit records in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from lockbox.domain import text
from lockbox.domain.errors import InvalidTransition, SeparationOfDuties
from lockbox.domain.roles import Principal


class ChangeKind(StrEnum):
    POLICY = "policy.change"  # payload: {"changes": policy as_dict keys → values, "base_version"}
    RULE_CREATE = "auto_rule.create"  # payload: {"rule_id", "rule": settings}
    RULE_UPDATE = "auto_rule.update"  # payload: {"rule_id", "rule": settings, "base_version"}


class ChangeState(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    SUPERSEDED = "superseded"  # what it changes moved on before a second admin decided


def needs_second_admin(active_admins: int) -> bool:
    """Four eyes exist only where there are two pairs: more than one active tenant admin."""
    return active_admins > 1


@dataclass(frozen=True)
class PendingChange:
    id: str
    tenant_id: str
    kind: ChangeKind
    payload: dict[str, Any]
    proposed_by: str
    proposed_at: datetime
    state: ChangeState = ChangeState.PENDING
    #: Why it needs a second admin, in words ("turns the lockbox off").
    reasons: tuple[str, ...] = ()
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None  # the decider's (or the author's, withdrawing)
    version: int = 1

    @property
    def target_id(self) -> str | None:
        """The rule it is about (None: the tenant's policy)."""
        found = self.payload.get("rule_id")
        return found if isinstance(found, str) else None

    @property
    def base_version(self) -> int | None:
        found = self.payload.get("base_version")
        return found if isinstance(found, int) else None


def decide(
    change: PendingChange, actor: Principal, *, approve: bool, comment: object, now: datetime
) -> PendingChange:
    """Another tenant admin approves (the caller then applies it) or rejects it.

    The caller has checked the actor's rights (``change.decide`` on the tenant).
    """
    note = text.comment(comment)
    _pending(change, "approve" if approve else "reject")
    if actor.id == change.proposed_by:
        raise SeparationOfDuties(
            "you cannot approve or reject your own change: another tenant admin decides "
            "(you can withdraw it)"
        )
    state = ChangeState.APPLIED if approve else ChangeState.REJECTED
    return _decided(change, state, actor, now, note)


def withdraw(
    change: PendingChange, actor: Principal, *, comment: object, now: datetime
) -> PendingChange:
    """Its author takes it back before anyone decided."""
    note = text.comment(comment)
    _pending(change, "withdraw")
    if actor.id != change.proposed_by:
        raise SeparationOfDuties("only the tenant admin who proposed a change can withdraw it")
    return _decided(change, ChangeState.WITHDRAWN, actor, now, note)


def supersede(change: PendingChange, *, now: datetime, by: str) -> PendingChange:
    """What it changes moved on (``by`` names the change or the person that moved it)."""
    _pending(change, "supersede")
    return replace(
        change,
        state=ChangeState.SUPERSEDED,
        decided_at=now,
        decided_by=by,
        version=change.version + 1,
    )


def _pending(change: PendingChange, verb: str) -> None:
    if change.state is not ChangeState.PENDING:
        raise InvalidTransition(
            f"cannot {verb} a change that is {change.state.value}", state=change.state.value
        )


def _decided(
    change: PendingChange, state: ChangeState, actor: Principal, now: datetime, note: str | None
) -> PendingChange:
    return replace(
        change,
        state=state,
        decided_by=actor.id,
        decided_at=now,
        comment=note,
        version=change.version + 1,
    )
