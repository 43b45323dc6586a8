"""The access request aggregate.

Every change goes through :func:`_transition`, which consults the transition
table, the permission matrix, the stage deadline and the person-level rule, in
that order, and returns a :class:`Change` describing what happened. Nothing
here stores, sends or reads the clock: the caller passes ``now`` and persists
the change (with its audit record and notifications) in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from lockbox.domain import lifecycle, text
from lockbox.domain.auto_approval import CATEGORIES, AutoApprovalRule
from lockbox.domain.case import CaseStatus, SupportCase
from lockbox.domain.delegation import Delegator
from lockbox.domain.errors import (
    AlreadyDecided,
    DeadlinePassed,
    InvalidTransition,
    PermissionDenied,
    SeparationOfDuties,
    ValidationError,
    present,
    require,
)
from lockbox.domain.instants import format_optional, optional_utc_instant
from lockbox.domain.lifecycle import ActorRule, Event, State
from lockbox.domain.permissions import Intent, allows, authorize
from lockbox.domain.policy import WINDOW_BOUNDS, LockboxPolicy
from lockbox.domain.resources import (
    AccessLevel,
    Action,
    in_scope,
    level_allows,
    validate_resource,
    validate_resources,
    within,
)
from lockbox.domain.roles import ActorKind, Principal, Side
from lockbox.domain.stages import PlannedStage, default_stages, plan


class DecisionKind(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


@dataclass(frozen=True)
class Decision:
    """One customer approver's decision."""

    actor_id: str
    kind: DecisionKind
    at: datetime
    comment: str | None = None
    credential: str | None = None  # what the approver acted with (token, session)
    stage: str | None = None  # the key of the stage it was made in (None: before stages)
    on_behalf_of: str | None = None  # made as this person's delegate (None: in own right)


def deciders(decisions: tuple[Decision, ...]) -> set[str]:
    """Everyone who has decided: in their own right, or through their delegate."""
    found = {d.actor_id for d in decisions}
    found.update(d.on_behalf_of for d in decisions if d.on_behalf_of)
    return found


def _stage_approvals(
    stages: tuple[PlannedStage, ...], approvals: tuple[Decision, ...], stage: PlannedStage
) -> tuple[Decision, ...]:
    """The approvals that count for ``stage`` (one without a stage counts for the first)."""
    first = stages[0].key if stages else None
    return tuple(d for d in approvals if (d.stage or first) == stage.key)


def _waiting_stage(
    stages: tuple[PlannedStage, ...], approvals: tuple[Decision, ...]
) -> PlannedStage | None:
    """The first stage still short of approvals; None once every stage is met."""
    for stage in stages:
        if len(_stage_approvals(stages, approvals, stage)) < stage.required:
            return stage
    return None


@dataclass(frozen=True)
class Extension:
    """More time the engineer asked for, waiting for the customer's approvals.

    Access goes on meanwhile, until the current deadline; the last approval moves the
    deadline by ``by``, a denial drops the extension.
    """

    by: timedelta
    reason: str
    asked_at: datetime
    stages: tuple[PlannedStage, ...]
    approvals: tuple[Decision, ...] = ()

    def stage_approvals(self, stage: PlannedStage) -> tuple[Decision, ...]:
        return _stage_approvals(self.stages, self.approvals, stage)

    def current_stage(self) -> PlannedStage | None:
        return _waiting_stage(self.stages, self.approvals)

    def as_dict(self) -> dict[str, Any]:
        return {
            "by_seconds": int(self.by.total_seconds()),
            "reason": self.reason,
            "asked_at": _iso(self.asked_at),
            "stages": [stage.as_dict() for stage in self.stages],
            "approvals": [
                {
                    "actor_id": d.actor_id,
                    "at": _iso(d.at),
                    "comment": d.comment,
                    "credential": d.credential,
                    "stage": d.stage,
                    "on_behalf_of": d.on_behalf_of,
                }
                for d in self.approvals
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Extension:
        return cls(
            by=timedelta(seconds=int(data["by_seconds"])),
            reason=str(data["reason"]),
            asked_at=datetime.fromisoformat(str(data["asked_at"]).replace("Z", "+00:00")),
            stages=tuple(PlannedStage.from_dict(s) for s in data["stages"]),
            approvals=tuple(
                Decision(
                    actor_id=str(d["actor_id"]),
                    kind=DecisionKind.APPROVE,
                    at=datetime.fromisoformat(str(d["at"]).replace("Z", "+00:00")),
                    comment=d.get("comment"),
                    credential=d.get("credential"),
                    stage=d.get("stage"),
                    on_behalf_of=d.get("on_behalf_of"),
                )
                for d in data.get("approvals") or ()
            ),
        )


@dataclass(frozen=True)
class Narrowing:
    """Less than was asked, as an approver grants it: a subset of the resources, read
    instead of read_write, a shorter access window (None: as asked)."""

    resources: tuple[str, ...] | None = None
    access_level: AccessLevel | None = None
    access_window: timedelta | None = None

    @classmethod
    def of(
        cls,
        *,
        resources: Sequence[str] | None = None,
        access_level: str | None = None,
        access_window_seconds: int | None = None,
    ) -> Narrowing | None:
        """From what an adapter received (API body, CLI options, form); None: as asked.
        Only the shapes are read here: :func:`decide` checks it grants no more."""
        if resources is None and access_level is None and access_window_seconds is None:
            return None
        return cls(
            resources=None if resources is None else tuple(resources),
            access_level=None if access_level is None else _parse_level(access_level),
            access_window=None
            if access_window_seconds is None
            else timedelta(seconds=access_window_seconds),
        )


@dataclass(frozen=True)
class AccessRequest:
    id: str
    tenant_id: str
    case_id: str
    requester_id: str
    resources: tuple[str, ...]
    access_level: AccessLevel
    justification: str
    state: State
    created_at: datetime
    review_deadline: datetime
    updated_at: datetime
    reviewer_id: str | None = None
    reviewed_at: datetime | None = None
    review_comment: str | None = None
    customer_step: bool | None = None  # decided at review: was the tenant's lockbox on?
    required_approvals: int = 1  # in all stages together
    approval_deadline: datetime | None = None
    decisions: tuple[Decision, ...] = field(default_factory=tuple)
    #: The customer's stages, frozen when the request reached the customer (a later
    #: policy change never moves the goalposts); empty before that, and for requests
    #: from before stages existed (see :meth:`planned_stages`).
    stages: tuple[PlannedStage, ...] = ()
    #: What the engineer asked for, once an approver granted less (None: as asked);
    #: ``resources`` and ``access_level`` always hold what is granted, so tokens, checks,
    #: the grant feed and later stages all see the granted scope.
    asked_resources: tuple[str, ...] | None = None
    asked_level: AccessLevel | None = None
    #: The access window granted so far (the shortest an approver chose); None: the policy's.
    access_window: timedelta | None = None
    #: An extension waiting for the customer's approvals, and how many were granted.
    extension: Extension | None = None
    extensions: int = 0
    #: When the engineer asked access to start (a planned maintenance); None: at approval.
    #: Approvals may come before; access runs from then for one window.
    starts_at: datetime | None = None
    approved_at: datetime | None = None
    access_deadline: datetime | None = None
    ended_at: datetime | None = None
    ended_by: str | None = None
    end_comment: str | None = None
    version: int = 1
    #: What the engineer says the access is for (``auto_approval.CATEGORIES``); rules select on it.
    category: str = "other"

    # -- reading -----------------------------------------------------------------

    def stage_deadline(self) -> datetime | None:
        """The deadline of the current stage, or None in a terminal state."""
        deadline = lifecycle.DEADLINES.get(self.state)
        return None if deadline is None else getattr(self, deadline[0])

    def deadline_passed(self, now: datetime) -> bool:
        """A deadline is passed *at* the deadline instant: windows are half-open ``[start, end)``."""
        deadline = self.stage_deadline()
        return deadline is not None and now >= deadline

    def effective_state(self, now: datetime) -> State:
        """The state as of ``now``, whether or not the sweeper has recorded an expiry yet.

        Time is a value, not a job: a request whose access window is over
        reads as ``access_ended`` even if no worker ran.
        """
        if not self.deadline_passed(now):
            return self.state
        return lifecycle.DEADLINES[self.state][1]

    def approvals(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.kind is DecisionKind.APPROVE)

    def planned_stages(self) -> tuple[PlannedStage, ...]:
        """The stages this request must pass; a request stored before stages existed has
        the one stage it was created with: ``required_approvals`` approvers or admins."""
        if self.stages or not self.customer_step or self.required_approvals == 0:
            return self.stages  # none: the lockbox was off, or a rule approved it
        return (PlannedStage.of(default_stages(self.required_approvals)[0]),)

    def stage_approvals(self, stage: PlannedStage) -> tuple[Decision, ...]:
        """The approvals that count for ``stage`` (one before stages counts for the first)."""
        return _stage_approvals(self.planned_stages(), self.approvals(), stage)

    def current_stage(self) -> PlannedStage | None:
        """The first stage still short of approvals; None once every stage is met."""
        return _waiting_stage(self.planned_stages(), self.approvals())

    def decided_by(self, actor_id: str) -> bool:
        """Whether ``actor_id`` decided, themselves or through their delegate."""
        return actor_id in deciders(self.decisions)

    def is_active(self, now: datetime) -> bool:
        """Access can be used now: granted, started, and its window not over."""
        return self.effective_state(now) is State.APPROVED and not self.not_started(now)

    def not_started(self, now: datetime) -> bool:
        """Granted for a scheduled start that has not come yet."""
        return self.starts_at is not None and now < self.starts_at


@dataclass(frozen=True)
class Change:
    """What one transition did; the service turns it into an audit record and notifications."""

    request: AccessRequest
    event: Event
    source: State | None
    target: State
    actor: Principal
    at: datetime
    comment: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def operation(self) -> str:
        return f"request.{self.event.value}"


def decision_applies(request: AccessRequest, seen_version: int) -> bool:
    """Whether a customer decision made on ``seen_version`` may apply to ``request`` now.

    While a request waits for the customer, the only change that leaves it waiting is
    another person's approval (each one version, each one decision), and approvals by
    different people that arrive together must all count: a decision made on any version
    since the request reached the customer answers the same question. Anything else
    (the request moved on meanwhile) has to be reloaded and decided again.
    """
    if seen_version == request.version:
        return True
    if request.state is State.PENDING_APPROVAL:
        counted = len(request.decisions)
    elif request.state is State.APPROVED and request.extension is not None:
        counted = len(request.extension.approvals)  # the same, for an extension
    else:
        return False
    asked = request.version - counted
    return asked <= seen_version < request.version


# -- creating ----------------------------------------------------------------------


def submit(
    *,
    request_id: str,
    actor: Principal,
    case: SupportCase,
    tenant_id: str,
    policy: LockboxPolicy,
    resources: object,
    access_level: object,
    justification: object,
    now: datetime,
    category: object = "other",
    starts_at: object = None,
) -> Change:
    """An engineer asks for access to named resources of a tenant, on a case, from now or
    from ``starts_at`` (up to :data:`MAX_START_AHEAD` ahead)."""
    authorize(actor, Intent.CASE_VIEW, kind="case", tenant_id=case.tenant_id)
    if not allows(actor, Intent.REQUEST_SUBMIT, case.tenant_id):
        raise PermissionDenied("only support engineers can submit access requests")
    if case.tenant_id != tenant_id:
        raise ValidationError("case_id", "the support case belongs to another tenant")
    if case.status is not CaseStatus.OPEN:
        raise ValidationError("case_id", "the support case is closed")
    if case.engineer_id != actor.id:
        raise SeparationOfDuties(
            "only the engineer assigned to the support case can request access on it"
        )
    cleaned_resources = validate_resources(resources)
    level = _parse_level(access_level)
    reason = text.required_text(justification, "justification", max_len=text.JUSTIFICATION_MAX)
    if not isinstance(category, str) or category not in CATEGORIES:
        raise ValidationError("category", f"must be one of {', '.join(CATEGORIES)}")
    start = optional_utc_instant(starts_at, "starts_at")
    if start is not None and not now < start <= now + MAX_START_AHEAD:
        raise ValidationError("starts_at", "the start must lie in the future, at most 7 days ahead")
    request = AccessRequest(
        id=request_id,
        tenant_id=tenant_id,
        case_id=case.id,
        requester_id=actor.id,
        resources=cleaned_resources,
        access_level=level,
        justification=reason,
        state=State.PENDING_REVIEW,
        created_at=now,
        updated_at=now,
        review_deadline=now + policy.review_window,
        category=category,
        starts_at=start,
    )
    return Change(
        request=request,
        event=Event.SUBMIT,
        source=None,
        target=State.PENDING_REVIEW,
        actor=actor,
        at=now,
        details={
            "case_id": case.id,
            "resources": list(cleaned_resources),
            "access_level": level.value,
            "justification": reason,
            "category": category,
            "review_deadline": _iso(request.review_deadline),
            **({"starts_at": _iso(start)} if start else {}),
        },
    )


MAX_START_AHEAD = timedelta(days=7)


def _access_start(request: AccessRequest, now: datetime) -> datetime:
    """When granted access starts: at approval, or at the scheduled start if later."""
    return max(now, request.starts_at) if request.starts_at is not None else now


def _parse_level(value: object) -> AccessLevel:
    try:
        return AccessLevel(str(value))
    except ValueError:
        raise ValidationError("access_level", "must be 'read' or 'read_write'") from None


# -- transitions --------------------------------------------------------------------


def review(
    request: AccessRequest,
    actor: Principal,
    *,
    approve: bool,
    comment: object,
    policy: LockboxPolicy,
    now: datetime,
    rule: AutoApprovalRule | None = None,
) -> Change:
    """A support manager approves (forwards) or rejects a request before the customer sees it.

    With the lockbox on, a forwarded request that ``rule`` (one of the customer's own
    auto-approval rules, checked again here) approves is granted at once, for the shorter
    of the policy's and the rule's access window; without one it waits for the customer.
    """
    event = Event.REVIEW_APPROVE if approve else Event.REVIEW_REJECT
    note = text.comment(comment)
    _guard(request, event, actor, now)
    base = replace(request, reviewer_id=actor.id, reviewed_at=now, review_comment=note)
    if not approve:
        return _finish(base, event, State.REJECTED, actor, now, note)
    if policy.enabled and rule is not None:
        require(
            rule.tenant_id == request.tenant_id
            and rule.miss(
                resources=request.resources,
                level=request.access_level,
                category=request.category,
                now=now,
            )
            is None,
            "an auto-approval rule that does not approve this request was passed",
        )
        window = min(policy.access_window, rule.max_access_window)
        granted = replace(
            base,
            state=State.APPROVED,
            customer_step=True,
            required_approvals=0,
            approved_at=now,
            access_deadline=_access_start(request, now) + window,
        )
        return _change(
            request,
            granted,
            event,
            actor,
            now,
            note,
            auto_approved_by_rule=rule.id,
            rule_name=rule.name,
            access_deadline=_iso(granted.access_deadline),
        )
    if policy.enabled:
        planned = plan(
            policy.approval_stages(),
            request.access_level,
            request.resources,
            fallback=default_stages(policy.required_approvals),
        )
        required = sum(stage.required for stage in planned)
        changed = replace(
            base,
            state=State.PENDING_APPROVAL,
            customer_step=True,
            required_approvals=required,
            stages=planned,
            approval_deadline=now + policy.approval_window,
        )
        return _change(
            request,
            changed,
            event,
            actor,
            now,
            note,
            approval_deadline=_iso(changed.approval_deadline),
            required_approvals=required,
            stages=[stage.as_dict() for stage in planned],
        )
    changed = replace(
        base,
        state=State.APPROVED,
        customer_step=False,
        required_approvals=0,
        approved_at=now,
        access_deadline=_access_start(request, now) + policy.access_window,
    )
    return _change(
        request,
        changed,
        event,
        actor,
        now,
        note,
        lockbox="off",
        access_deadline=_iso(changed.access_deadline),
    )


def decide(
    request: AccessRequest,
    actor: Principal,
    *,
    approve: bool,
    comment: object,
    policy: LockboxPolicy,
    now: datetime,
    narrow: Narrowing | None = None,
    delegators: Sequence[Delegator] = (),
) -> Change:
    """A customer approver approves or denies; approvals count until the required number.

    An approval may grant less than was asked (``narrow``), never more; later stages and
    everything that enforces access see what was granted.
    """
    event = Event.APPROVE if approve else Event.DENY
    note = text.comment(comment)
    _guard(request, event, actor, now)
    if request.decided_by(actor.id):
        raise AlreadyDecided("you have already decided on this request", state=request.state.value)
    if narrow is not None and not approve:
        raise ValidationError("decision", "only an approval can grant less than was asked")
    stage = present(request.current_stage(), "the stage of a request waiting for approval")
    usable = [d for d in delegators if not request.decided_by(d.user_id)]
    for_whom = _admit(stage, request.planned_stages(), actor, policy, approve, usable)
    decision = Decision(
        actor_id=actor.id,
        kind=DecisionKind.APPROVE if approve else DecisionKind.DENY,
        at=now,
        comment=note,
        credential=actor.credential,
        stage=stage.key,
        on_behalf_of=for_whom,
    )
    with_decision = replace(request, decisions=(*request.decisions, decision))
    acting = {"on_behalf_of": for_whom} if for_whom else {}
    if not approve:
        return _finish(
            with_decision, event, State.DENIED, actor, now, note, stage=stage.key, **acting
        )
    following = with_decision.current_stage()
    progress = _progress(stage, with_decision.stage_approvals(stage), following, for_whom)
    progress.update(
        approvals=len(with_decision.approvals()), required_approvals=request.required_approvals
    )
    if narrow is not None:
        with_decision, granted = _narrowed(with_decision, narrow, policy)
        progress.update(granted)
    if following is not None:
        return _change(request, with_decision, event, actor, now, note, **progress)
    window = policy.access_window
    if with_decision.access_window is not None:
        window = min(window, with_decision.access_window)
    approved = replace(
        with_decision,
        state=State.APPROVED,
        approved_at=now,
        access_deadline=_access_start(request, now) + window,
    )
    return _change(
        request,
        approved,
        event,
        actor,
        now,
        note,
        **progress,
        access_deadline=_iso(approved.access_deadline),
    )


def _progress(
    stage: PlannedStage,
    counted: tuple[Decision, ...],
    following: PlannedStage | None,
    for_whom: str | None,
) -> dict[str, Any]:
    """The audit details of one approval: its stage, how far that stage is, the stage that
    waits next (when another one), and for whom it was made (a delegation)."""
    progress: dict[str, Any] = {
        "stage": stage.key,
        "stage_approvals": len(counted),
        "stage_required": stage.required,
    }
    if for_whom:
        progress["on_behalf_of"] = for_whom
    if following is not None and following.key != stage.key:
        progress["next_stage"] = following.key
    return progress


def _admit(
    stage: PlannedStage,
    stages: tuple[PlannedStage, ...],
    actor: Principal,
    policy: LockboxPolicy,
    approve: bool,
    delegators: Sequence[Delegator] = (),
) -> str | None:
    """An approval needs the waiting stage's role or group; anyone who may approve one of
    the stages may deny (one denial at any stage denies). The actor's own standing
    first, then that of each person who delegated to them; returns that person's id
    when only a delegation admits the decision (None: in the actor's own right)."""
    standings = [(None, actor.roles), *((d.user_id, d.roles) for d in delegators)]
    for for_whom, roles in standings:
        groups = policy.groups_of(for_whom or actor.id)
        if approve and stage.admits(roles, groups):
            return for_whom
        if not approve and any(s.admits(roles, groups) for s in stages):
            return for_whom
    if approve:
        raise PermissionDenied(f"the {stage.name} stage needs {_who(stage)} to approve it")
    raise PermissionDenied("only someone who can approve one of its stages can deny it")


def _narrowed(
    request: AccessRequest, narrow: Narrowing, policy: LockboxPolicy
) -> tuple[AccessRequest, dict[str, Any]]:
    """``request`` granting what ``narrow`` says, checked to be no more than it grants now;
    and the audit details saying what was asked and what is granted."""
    resources = request.resources
    if narrow.resources is not None:
        resources = validate_resources(list(narrow.resources), "resources")
        for i, name in enumerate(resources):
            if not any(within(granted, name) for granted in request.resources):
                raise ValidationError(
                    f"resources[{i}]",
                    f"{name} was not asked for: an approver can grant less, never more",
                )
    level = request.access_level
    if narrow.access_level is not None:
        if narrow.access_level is AccessLevel.READ_WRITE and level is AccessLevel.READ:
            raise ValidationError(
                "access_level", "read access was asked for: an approver can grant less, never more"
            )
        level = narrow.access_level
    window = request.access_window or policy.access_window
    if narrow.access_window is not None:
        low = WINDOW_BOUNDS["access_window"][0]
        if not low <= narrow.access_window <= window:
            raise ValidationError(
                "access_window_seconds",
                f"must be from {int(low.total_seconds())} to {int(window.total_seconds())} "
                "seconds: an approver can grant a shorter window, never a longer one",
            )
        window = narrow.access_window
    changed = replace(
        request,
        resources=resources,
        access_level=level,
        access_window=window if narrow.access_window is not None else request.access_window,
    )
    if (changed.resources, changed.access_level, changed.access_window) == (
        request.resources,
        request.access_level,
        request.access_window,
    ):
        return request, {}
    changed = replace(
        changed,
        asked_resources=request.asked_resources or request.resources,
        asked_level=request.asked_level or request.access_level,
    )
    granted: dict[str, Any] = {
        "granted": {
            "resources": list(changed.resources),
            "access_level": changed.access_level.value,
            "access_window_seconds": int(
                (changed.access_window or policy.access_window).total_seconds()
            ),
        },
        "asked": {
            "resources": list(changed.asked_resources or ()),
            "access_level": (changed.asked_level or changed.access_level).value,
        },
    }
    return changed, granted


def _who(stage: PlannedStage) -> str:
    """Who may approve a stage, in words."""
    names = {"approver": "an approver", "tenant_admin": "a tenant admin"}
    parts = [names[role.value] for role in sorted(stage.roles) if role.value in names]
    if stage.group is not None:
        parts.append(f"a member of the group {stage.group!r}")
    return " or ".join(parts) or "someone the policy names"


# -- extensions ---------------------------------------------------------------------


def ask_extension(
    request: AccessRequest,
    actor: Principal,
    *,
    by: object,
    reason: object,
    policy: LockboxPolicy,
    now: datetime,
) -> Change:
    """The engineer asks for more time before access ends; the customer approves it like
    the request (the policy's extension stages, no manager review), or at once when the
    tenant's lockbox is off. At most ``max_extensions`` per request, each at most one
    access window long."""
    _guard(request, Event.EXTEND, actor, now)
    if request.extension is not None:
        raise InvalidTransition(
            "an extension is already waiting for approval", state=request.state.value
        )
    if request.extensions >= policy.max_extensions:
        limit = policy.max_extensions
        raise ValidationError(
            "by",
            "the policy allows no extension"
            if limit == 0
            else f"access was already extended {limit} time{'s' if limit != 1 else ''}, "
            "the most the policy allows: ask for a new request",
        )
    if isinstance(by, bool) or not isinstance(by, timedelta):
        raise ValidationError("by", "must be a duration")
    low = WINDOW_BOUNDS["access_window"][0]
    if not low <= by <= policy.access_window:
        raise ValidationError(
            "by",
            f"must be from {int(low.total_seconds())} to "
            f"{int(policy.access_window.total_seconds())} seconds (one access window)",
        )
    why = text.required_text(reason, "reason", max_len=text.JUSTIFICATION_MAX)
    deadline = present(request.access_deadline, "the deadline of granted access")
    details: dict[str, Any] = {"by_seconds": int(by.total_seconds()), "reason": why}
    if not policy.enabled:
        extended = replace(
            request, access_deadline=deadline + by, extensions=request.extensions + 1
        )
        return _change(
            request,
            extended,
            Event.EXTEND,
            actor,
            now,
            None,
            **details,
            lockbox="off",
            access_deadline=_iso(extended.access_deadline),
        )
    stages = plan(
        policy.extension_rules(),
        request.access_level,
        request.resources,
        fallback=default_stages(policy.required_approvals),
    )
    extension = Extension(by=by, reason=why, asked_at=now, stages=stages)
    return _change(
        request,
        replace(request, extension=extension),
        Event.EXTEND,
        actor,
        now,
        None,
        **details,
        stages=[stage.as_dict() for stage in stages],
    )


def decide_extension(
    request: AccessRequest,
    actor: Principal,
    *,
    approve: bool,
    comment: object,
    policy: LockboxPolicy,
    now: datetime,
    delegators: Sequence[Delegator] = (),
) -> Change:
    """A customer approver approves or denies the extension waiting on granted access."""
    event = Event.EXTEND_APPROVE if approve else Event.EXTEND_DENY
    note = text.comment(comment)
    _guard(request, event, actor, now)
    extension = request.extension
    if extension is None:
        raise InvalidTransition("no extension is waiting for approval", state=request.state.value)
    decided = deciders(extension.approvals)
    if actor.id in decided:
        raise AlreadyDecided("you have already approved this extension", state="approved")
    stage = present(extension.current_stage(), "the stage of an extension")
    usable = [d for d in delegators if d.user_id not in decided]
    for_whom = _admit(stage, extension.stages, actor, policy, approve, usable)
    acting = {"on_behalf_of": for_whom} if for_whom else {}
    if not approve:
        return _change(
            request,
            replace(request, extension=None),
            event,
            actor,
            now,
            note,
            stage=stage.key,
            **acting,
        )
    decision = Decision(
        actor_id=actor.id,
        kind=DecisionKind.APPROVE,
        at=now,
        comment=note,
        credential=actor.credential,
        stage=stage.key,
        on_behalf_of=for_whom,
    )
    counted = replace(extension, approvals=(*extension.approvals, decision))
    following = counted.current_stage()
    progress = _progress(stage, counted.stage_approvals(stage), following, for_whom)
    progress["by_seconds"] = int(extension.by.total_seconds())
    if following is not None:
        return _change(
            request, replace(request, extension=counted), event, actor, now, note, **progress
        )
    deadline = present(request.access_deadline, "the deadline of granted access")
    extended = replace(
        request,
        extension=None,
        extensions=request.extensions + 1,
        access_deadline=deadline + extension.by,
    )
    return _change(
        request,
        extended,
        event,
        actor,
        now,
        note,
        **progress,
        extended=True,
        access_deadline=_iso(extended.access_deadline),
    )


def cancel(request: AccessRequest, actor: Principal, *, comment: object, now: datetime) -> Change:
    """The requester withdraws a request that is still pending."""
    return _end(request, Event.CANCEL, actor, comment, now)


def close(request: AccessRequest, actor: Principal, *, comment: object, now: datetime) -> Change:
    """The work is done: granted access ends at once."""
    return _end(request, Event.CLOSE, actor, comment, now)


def revoke(request: AccessRequest, actor: Principal, *, comment: object, now: datetime) -> Change:
    """The customer ends granted access early."""
    return _end(request, Event.REVOKE, actor, comment, now)


def _end(
    request: AccessRequest, event: Event, actor: Principal, comment: object, now: datetime
) -> Change:
    """An event with a single terminal target; the target comes from the transition table."""
    note = text.comment(comment)
    _guard(request, event, actor, now)
    return _finish(request, event, _lookup(request, event).targets[0], actor, now, note)


def end_for_closed_case(request: AccessRequest, actor: Principal, *, now: datetime) -> Change:
    """Closing a support case ends the open requests on it (pending → canceled, approved → closed).

    The actor's right to close the case was checked by the caller; deadlines
    do not block this event, because ending access is always allowed.
    """
    transition = _lookup(request, Event.CASE_CLOSED)
    return _finish(
        request, Event.CASE_CLOSED, transition.targets[0], actor, now, "support case closed"
    )


def expire(request: AccessRequest, *, now: datetime) -> Change | None:
    """Record a passed deadline (the sweeper). None when nothing is due yet."""
    if request.state.terminal or not request.deadline_passed(now):
        return None
    event = Event.END_ACCESS if request.state is State.APPROVED else Event.EXPIRE
    transition = _lookup(request, event)
    deadline = present(request.stage_deadline(), "the deadline that passed")
    # Dated when recorded; the deadline that passed is kept in the details.
    return _finish(
        request,
        event,
        transition.targets[0],
        Principal.system(),
        now,
        None,
        deadline=_iso(deadline),
    )


# -- access decisions ---------------------------------------------------------------


class DenyReason(StrEnum):
    NO_REQUEST = "no_request"
    NOT_APPROVED = "not_approved"
    EXPIRED = "expired"
    REVOKED = "revoked"
    CLOSED = "closed"
    OUT_OF_SCOPE = "out_of_scope"
    LEVEL_TOO_LOW = "level_too_low"
    NOT_REQUESTER = "not_requester"
    NOT_STARTED = "not_started"


@dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    reason: str
    request: AccessRequest | None = None


_ENDED_REASONS = {
    State.REVOKED: DenyReason.REVOKED,
    State.CLOSED: DenyReason.CLOSED,
    State.EXPIRED: DenyReason.EXPIRED,
    State.ACCESS_ENDED: DenyReason.EXPIRED,
}


def check_access(
    request: AccessRequest, engineer_id: str, resource: str, action: Action, now: datetime
) -> AccessDecision:
    """Bounded access: allow only the requester, in ``approved``, before the deadline,
    on a named resource, at or below the granted level. Everything else is denied."""
    validate_resource(resource, "resource", pattern=False)
    if request.requester_id != engineer_id:
        return AccessDecision(False, DenyReason.NOT_REQUESTER, request)
    state = request.effective_state(now)
    if state is not State.APPROVED:
        return AccessDecision(False, _ENDED_REASONS.get(state, DenyReason.NOT_APPROVED), request)
    if request.not_started(now):
        return AccessDecision(False, DenyReason.NOT_STARTED, request)
    if not in_scope(request.resources, resource):
        return AccessDecision(False, DenyReason.OUT_OF_SCOPE, request)
    if not level_allows(request.access_level, action):
        return AccessDecision(False, DenyReason.LEVEL_TOO_LOW, request)
    return AccessDecision(True, "approved", request)


# -- internals ----------------------------------------------------------------------


#: The permission-matrix intent of each event people cause (from the transition table).
_INTENTS: dict[Event, Intent] = {
    t.event: t.intent for t in reversed(lifecycle.TRANSITIONS) if t.intent is not None
}


def _lookup(request: AccessRequest, event: Event) -> lifecycle.Transition:
    transition = lifecycle.find(request.state, event)
    if transition is None:
        raise InvalidTransition(
            f"cannot {event.value.replace('_', ' ')} a request that is {request.state.value}",
            state=request.state.value,
        )
    return transition


def _guard(request: AccessRequest, event: Event, actor: Principal, now: datetime) -> None:
    """Visibility and role, then state, then deadline, then the person-level rule."""
    intent = present(_INTENTS.get(event), f"the intent of {event.value}")
    authorize(
        actor,
        intent,
        kind="request",
        tenant_id=request.tenant_id,
        owner_id=request.requester_id,
    )
    effective = request.effective_state(now)
    if request.state.terminal:
        _lookup(request, event)  # raises InvalidTransition naming the state
    if effective is not request.state:
        raise DeadlinePassed(
            f"the deadline passed at {_iso(request.stage_deadline())}; the request is "
            f"{effective.value}",
            state=effective.value,
        )
    transition = _lookup(request, event)
    _check_rule(transition.rule, request, actor)


def _check_rule(rule: ActorRule, request: AccessRequest, actor: Principal) -> None:
    if rule is ActorRule.MANAGER_NOT_REQUESTER and actor.id == request.requester_id:
        raise SeparationOfDuties("you cannot review your own access request")
    if rule is ActorRule.REQUESTER and actor.id != request.requester_id:
        raise SeparationOfDuties("only the requester can do this")
    if rule is ActorRule.REQUESTER_OR_MANAGER and not allows(
        actor, Intent.REQUEST_CLOSE, request.tenant_id, request.requester_id
    ):
        raise SeparationOfDuties("only the requester or a support manager can close a request")
    if rule is ActorRule.TENANT_APPROVER and (
        actor.side is not Side.CUSTOMER or actor.tenant_id != request.tenant_id
    ):
        raise SeparationOfDuties("only the customer's approvers can decide on its requests")
    if rule is ActorRule.SYSTEM and actor.kind is not ActorKind.SYSTEM:
        raise PermissionDenied("only the system records deadlines")


def _finish(
    request: AccessRequest,
    event: Event,
    target: State,
    actor: Principal,
    now: datetime,
    comment: str | None,
    **details: Any,
) -> Change:
    ended = replace(request, state=target, ended_at=now, ended_by=actor.id, end_comment=comment)
    return _change(request, ended, event, actor, now, comment, **details)


def _change(
    before: AccessRequest,
    after: AccessRequest,
    event: Event,
    actor: Principal,
    now: datetime,
    comment: str | None,
    **details: Any,
) -> Change:
    transition = lifecycle.find(before.state, event)
    require(
        transition is not None and after.state in transition.targets,
        f"{event.value} from {before.state.value} cannot lead to {after.state.value}",
    )
    after = replace(after, updated_at=now, version=before.version + 1)
    payload = dict(details)
    if comment:
        payload["comment"] = comment
    return Change(
        request=after,
        event=event,
        source=before.state,
        target=after.state,
        actor=actor,
        at=now,
        comment=comment,
        details=payload,
    )


_iso = format_optional
