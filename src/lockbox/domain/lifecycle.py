"""The request lifecycle as data.

:data:`TRANSITIONS` is the one place that says which event may move a request
from which state to which, and who may cause it. The aggregate in
:mod:`lockbox.domain.request` consults it for every change, and the docs and
the state diagram are generated from it (``lockbox docs lifecycle``), never
retyped.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lockbox.domain.errors import require
from lockbox.domain.permissions import Intent


class State(StrEnum):
    PENDING_REVIEW = "pending_review"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    DENIED = "denied"
    CANCELED = "canceled"
    EXPIRED = "expired"
    CLOSED = "closed"
    REVOKED = "revoked"
    ACCESS_ENDED = "access_ended"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {
        State.REJECTED,
        State.DENIED,
        State.CANCELED,
        State.EXPIRED,
        State.CLOSED,
        State.REVOKED,
        State.ACCESS_ENDED,
    }
)
OPEN_STATES = frozenset({State.PENDING_REVIEW, State.PENDING_APPROVAL, State.APPROVED})


#: The deadline of each state that has one: the name of the request's field that holds it
#: and the state the request reads as from that instant. The one definition the aggregate
#: (``effective_state``), the list filters and the sweeper's due query are built from.
DEADLINES: dict[State, tuple[str, State]] = {
    State.PENDING_REVIEW: ("review_deadline", State.EXPIRED),
    State.PENDING_APPROVAL: ("approval_deadline", State.EXPIRED),
    State.APPROVED: ("access_deadline", State.ACCESS_ENDED),
}


class Event(StrEnum):
    SUBMIT = "submit"
    REVIEW_APPROVE = "review_approve"
    REVIEW_REJECT = "review_reject"
    CANCEL = "cancel"
    APPROVE = "approve"
    DENY = "deny"
    EXPIRE = "expire"
    CLOSE = "close"
    REVOKE = "revoke"
    END_ACCESS = "end_access"
    CASE_CLOSED = "case_closed"
    EXTEND = "extend"
    EXTEND_APPROVE = "extend_approve"
    EXTEND_DENY = "extend_deny"


class ActorRule(StrEnum):
    """Person-level rules on top of the role-level permission matrix."""

    ENGINEER_ON_CASE = "the engineer assigned to the case"
    MANAGER_NOT_REQUESTER = "a support manager other than the requester"
    REQUESTER = "the requester"
    TENANT_APPROVER = "a tenant approver or tenant admin of the request's tenant"
    REQUESTER_OR_MANAGER = "the requester or a support manager"
    CASE_CLOSER = "whoever closes the support case"
    SYSTEM = "the system (deadline passed)"


@dataclass(frozen=True)
class Transition:
    source: State | None  # None: the request does not exist yet
    event: Event
    targets: tuple[State, ...]
    rule: ActorRule
    intent: Intent | None  # the permission-matrix intent checked; None for the system
    note: str = ""


_S, _E, _R, _I = State, Event, ActorRule, Intent

TRANSITIONS: tuple[Transition, ...] = (
    Transition(None, _E.SUBMIT, (_S.PENDING_REVIEW,), _R.ENGINEER_ON_CASE, _I.REQUEST_SUBMIT),
    Transition(
        _S.PENDING_REVIEW,
        _E.REVIEW_APPROVE,
        (_S.PENDING_APPROVAL, _S.APPROVED),
        _R.MANAGER_NOT_REQUESTER,
        _I.REQUEST_REVIEW,
        "to pending_approval when the tenant's lockbox is on, straight to approved when off "
        "or when one of the tenant's auto-approval rules approves it",
    ),
    Transition(
        _S.PENDING_REVIEW,
        _E.REVIEW_REJECT,
        (_S.REJECTED,),
        _R.MANAGER_NOT_REQUESTER,
        _I.REQUEST_REVIEW,
    ),
    Transition(_S.PENDING_REVIEW, _E.CANCEL, (_S.CANCELED,), _R.REQUESTER, _I.REQUEST_CANCEL),
    Transition(_S.PENDING_APPROVAL, _E.CANCEL, (_S.CANCELED,), _R.REQUESTER, _I.REQUEST_CANCEL),
    Transition(
        _S.PENDING_APPROVAL,
        _E.APPROVE,
        (_S.PENDING_APPROVAL, _S.APPROVED),
        _R.TENANT_APPROVER,
        _I.REQUEST_DECIDE,
        "stays pending_approval, counting, until the required number of distinct approvals",
    ),
    Transition(_S.PENDING_APPROVAL, _E.DENY, (_S.DENIED,), _R.TENANT_APPROVER, _I.REQUEST_DECIDE),
    Transition(_S.PENDING_REVIEW, _E.EXPIRE, (_S.EXPIRED,), _R.SYSTEM, None, "review deadline"),
    Transition(_S.PENDING_APPROVAL, _E.EXPIRE, (_S.EXPIRED,), _R.SYSTEM, None, "approval deadline"),
    Transition(_S.APPROVED, _E.CLOSE, (_S.CLOSED,), _R.REQUESTER_OR_MANAGER, _I.REQUEST_CLOSE),
    Transition(_S.APPROVED, _E.REVOKE, (_S.REVOKED,), _R.TENANT_APPROVER, _I.REQUEST_REVOKE),
    Transition(_S.APPROVED, _E.END_ACCESS, (_S.ACCESS_ENDED,), _R.SYSTEM, None, "access deadline"),
    Transition(_S.PENDING_REVIEW, _E.CASE_CLOSED, (_S.CANCELED,), _R.CASE_CLOSER, _I.CASE_CLOSE),
    Transition(_S.PENDING_APPROVAL, _E.CASE_CLOSED, (_S.CANCELED,), _R.CASE_CLOSER, _I.CASE_CLOSE),
    Transition(_S.APPROVED, _E.CASE_CLOSED, (_S.CLOSED,), _R.CASE_CLOSER, _I.CASE_CLOSE),
    Transition(
        _S.APPROVED,
        _E.EXTEND,
        (_S.APPROVED,),
        _R.REQUESTER,
        _I.REQUEST_EXTEND,
        "asks for more time before access ends; granted at once when the lockbox is off",
    ),
    Transition(
        _S.APPROVED,
        _E.EXTEND_APPROVE,
        (_S.APPROVED,),
        _R.TENANT_APPROVER,
        _I.REQUEST_DECIDE,
        "counts towards the extension's stages; the last one moves the access deadline",
    ),
    Transition(
        _S.APPROVED,
        _E.EXTEND_DENY,
        (_S.APPROVED,),
        _R.TENANT_APPROVER,
        _I.REQUEST_DECIDE,
        "refuses the extension; access still ends at its deadline",
    ),
)

_BY_KEY: dict[tuple[State | None, Event], Transition] = {
    (t.source, t.event): t for t in TRANSITIONS
}
require(len(_BY_KEY) == len(TRANSITIONS), "duplicate (source, event) in TRANSITIONS")
require(not any(t.source in TERMINAL for t in TRANSITIONS), "a transition leaves a terminal state")


def find(source: State | None, event: Event) -> Transition | None:
    """The transition for ``event`` from ``source``, or None if the table has none."""
    return _BY_KEY.get((source, event))


def render_markdown() -> str:
    """The transition table as Markdown, for the docs (generated, never retyped)."""
    lines = [
        "| from | event | actor | to | note |",
        "|---|---|---|---|---|",
    ]
    for t in TRANSITIONS:
        source = f"`{t.source.value}`" if t.source else "(new)"
        targets = " / ".join(f"`{s.value}`" for s in t.targets)
        lines.append(f"| {source} | {t.event.value} | {t.rule.value} | {targets} | {t.note} |")
    terminal = ", ".join(f"`{s.value}`" for s in State if s.terminal)
    lines += ["", f"Terminal states: {terminal}. No transition leaves a terminal state."]
    return "\n".join(lines)


def render_mermaid() -> str:
    """The lifecycle as a Mermaid state diagram."""
    lines = ["stateDiagram-v2"]
    for t in TRANSITIONS:
        source = "[*]" if t.source is None else t.source.value
        for target in t.targets:
            if target is t.source:
                continue
            lines.append(f"    {source} --> {target.value}: {t.event.value}")
    for state in State:
        if state.terminal:
            lines.append(f"    {state.value} --> [*]")
    return "\n".join(lines)


def render_document() -> str:
    """``docs/lifecycle.md``: the table and the diagram, generated from :data:`TRANSITIONS`."""
    return "\n".join(
        [
            "# The request lifecycle",
            "",
            "Generated from `lockbox.domain.lifecycle.TRANSITIONS` by `make docs`"
            " (`lockbox docs lifecycle`); a test fails if this file and the code disagree."
            " Do not edit by hand.",
            "",
            "A deadline is passed *at* the deadline instant: every window is half-open,"
            " `[start, deadline)`. A request past its deadline reads as `expired` /"
            " `access_ended` at once, whether or not the sweeper has recorded it.",
            "",
            render_markdown(),
            "",
            "```mermaid",
            render_mermaid(),
            "```",
            "",
        ]
    )
