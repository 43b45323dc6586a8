"""Access request use cases: the lifecycle of DESIGN.md, one function per intent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from lockbox.domain import request as domain
from lockbox.domain.audit import AuditRecord
from lockbox.domain.errors import Conflict, NotFound, ValidationError, present
from lockbox.domain.ids import new_id, optional_id, optional_ref, validate_cursor, validate_id
from lockbox.domain.instants import optional_utc_instant
from lockbox.domain.lifecycle import State
from lockbox.domain.permissions import Intent, Scope, authorize, scopes, visible_tenant_filter
from lockbox.domain.policy import LockboxPolicy
from lockbox.domain.request import AccessRequest, Change
from lockbox.domain.roles import Principal
from lockbox.service import approvers, auto_approval, delegations, step_up
from lockbox.service.app import Lockbox, Tx
from lockbox.service.cases import load_case
from lockbox.service.tenants import load_tenant
from lockbox.store import repositories as repo

MAX_PAGE = 200


@dataclass(frozen=True)
class RequestView:
    """A request as someone sees it at a moment: its effective state and history."""

    request: AccessRequest
    state: State  # effective state at ``as_of``
    as_of: datetime
    history: tuple[AuditRecord, ...] = ()
    history_truncated: bool = False  # more records than ``history_limit``: page the audit log
    #: Who may still approve it now (user ids, single-request reads of a pending request).
    can_approve: tuple[str, ...] = ()

    @classmethod
    def of(cls, request: AccessRequest, now: datetime) -> RequestView:
        """The view of a request a use case just wrote: no second read needed."""
        return cls(request, request.effective_state(now), now)


def submit_request(
    app: Lockbox,
    actor: Principal,
    *,
    tenant: str,
    case_id: str,
    resources: object,
    access_level: object,
    justification: object,
    category: object = "other",
    starts_at: object = None,
) -> AccessRequest:
    with app.tx() as tx:
        tenant_obj = load_tenant(tx, actor, tenant)
        # The case row stays locked until commit, so a concurrent close_case either ran
        # before (we see it closed) or waits and then ends the request we insert.
        case = load_case(tx, actor, case_id, lock=True)
        change = domain.submit(
            request_id=new_id("request"),
            actor=actor,
            case=case,
            tenant_id=tenant_obj.id,
            policy=tenant_obj.policy,
            resources=resources,
            access_level=access_level,
            justification=justification,
            now=tx.now,
            category=category,
            starts_at=starts_at,
        )
        repo.insert_request(tx.conn, change.request)
        tx.record(change)
    return change.request


def _transition(
    app: Lockbox,
    actor: Principal,
    request_id: str,
    decide: Callable[[AccessRequest, LockboxPolicy, datetime, Tx], Change],
    expected_version: int | None,
    *,
    customer_decision: bool = False,
) -> AccessRequest:
    """Load, decide, write with a version check, audit and notify — in one transaction.

    A customer decision locks the request row first (step 2 of the lock order), so
    approvals by several people at once queue and each sees the ones before it; with
    ``expected_version`` it applies on any version that only other approvals changed
    (:func:`~lockbox.domain.request.decision_applies`). Other transitions stay
    optimistic: the loser of two gets a conflict.
    """
    with app.tx() as tx:
        current = load_request(tx, actor, request_id, lock=customer_decision)
        if expected_version is not None and not (
            expected_version == current.version
            or (customer_decision and domain.decision_applies(current, expected_version))
        ):
            raise Conflict(
                f"the request is at version {current.version}, not {expected_version}; "
                "reload it and decide again",
                state=current.effective_state(tx.now).value,
                version=current.version,
            )
        tenant = present(tx.tenant(current.tenant_id), "the request's tenant")
        change = decide(current, tenant.policy, tx.now, tx)
        repo.update_request(tx.conn, change.request, current)
        tx.record(change)
    return change.request


def review_request(
    app: Lockbox,
    actor: Principal,
    request_id: str,
    *,
    approve: bool,
    comment: str | None = None,
    expected_version: int | None = None,
) -> AccessRequest:
    """A support manager forwards (or rejects) a request. With the lockbox on, the first of
    the tenant's active auto-approval rules that approves it (read in this transaction)
    grants it at once; with none, it waits for the customer."""

    def review(current: AccessRequest, policy: LockboxPolicy, now: datetime, tx: Tx) -> Change:
        rule = auto_approval.matching_rule(tx, current, policy) if approve else None
        return domain.review(
            current, actor, approve=approve, comment=comment, policy=policy, now=now, rule=rule
        )

    return _transition(app, actor, request_id, review, expected_version)


def decide_request(
    app: Lockbox,
    actor: Principal,
    request_id: str,
    *,
    approve: bool,
    comment: str | None = None,
    expected_version: int | None = None,
    narrow: domain.Narrowing | None = None,
) -> AccessRequest:
    """Approve (possibly granting less: ``narrow``) or deny, as a customer approver."""
    step_up.require_recent(actor, app.now(), "approve or deny access")
    return _transition(
        app,
        actor,
        request_id,
        lambda r, p, now, tx: domain.decide(
            r,
            actor,
            approve=approve,
            comment=comment,
            policy=p,
            now=now,
            narrow=narrow,
            delegators=delegations.delegators_of(tx, actor),
        ),
        expected_version,
        customer_decision=True,
    )


def extend_request(
    app: Lockbox,
    actor: Principal,
    request_id: str,
    *,
    by: timedelta,
    reason: str,
    expected_version: int | None = None,
) -> AccessRequest:
    """The engineer asks for ``by`` more time on granted access (the customer approves)."""
    return _transition(
        app,
        actor,
        request_id,
        lambda r, p, now, _tx: domain.ask_extension(
            r, actor, by=by, reason=reason, policy=p, now=now
        ),
        expected_version,
    )


def decide_extension(
    app: Lockbox,
    actor: Principal,
    request_id: str,
    *,
    approve: bool,
    comment: str | None = None,
    expected_version: int | None = None,
) -> AccessRequest:
    """Approve or deny the extension waiting on granted access, as a customer approver."""
    step_up.require_recent(actor, app.now(), "approve or deny more time")
    return _transition(
        app,
        actor,
        request_id,
        lambda r, p, now, tx: domain.decide_extension(
            r,
            actor,
            approve=approve,
            comment=comment,
            policy=p,
            now=now,
            delegators=delegations.delegators_of(tx, actor),
        ),
        expected_version,
        customer_decision=True,
    )


def cancel_request(
    app: Lockbox,
    actor: Principal,
    request_id: str,
    *,
    comment: str | None = None,
    expected_version: int | None = None,
) -> AccessRequest:
    return _transition(
        app,
        actor,
        request_id,
        lambda r, _p, now, _tx: domain.cancel(r, actor, comment=comment, now=now),
        expected_version,
    )


def close_request(
    app: Lockbox,
    actor: Principal,
    request_id: str,
    *,
    comment: str | None = None,
    expected_version: int | None = None,
) -> AccessRequest:
    return _transition(
        app,
        actor,
        request_id,
        lambda r, _p, now, _tx: domain.close(r, actor, comment=comment, now=now),
        expected_version,
    )


def revoke_request(
    app: Lockbox,
    actor: Principal,
    request_id: str,
    *,
    comment: str | None = None,
    expected_version: int | None = None,
) -> AccessRequest:
    step_up.require_recent(actor, app.now(), "revoke access")
    return _transition(
        app,
        actor,
        request_id,
        lambda r, _p, now, _tx: domain.revoke(r, actor, comment=comment, now=now),
        expected_version,
    )


# -- queries ------------------------------------------------------------------------


def load_request(tx: Tx, actor: Principal, request_id: str, *, lock: bool = False) -> AccessRequest:
    validate_id(request_id, "request", "request_id")
    request = repo.get_request(tx.conn, request_id, lock=lock)
    if request is None:
        raise NotFound("access request not found")
    authorize(
        actor,
        Intent.REQUEST_VIEW,
        kind="request",
        tenant_id=request.tenant_id,
        owner_id=request.requester_id,
    )
    return request


HISTORY_LIMIT = 200


def get_request(
    app: Lockbox,
    actor: Principal,
    request_id: str,
    *,
    history: bool = True,
    history_limit: int = HISTORY_LIMIT,
) -> RequestView:
    """One request; with ``history``, its first ``history_limit`` audit records (oldest first).

    A grant used thousands of times has thousands of records: the rest is read page by
    page from the audit log (filter ``request_id``), never all at once here.
    """
    with app.read() as tx:
        request = load_request(tx, actor, request_id)
        records: list[AuditRecord] = []
        if history:
            records = repo.query_audit(
                tx.conn,
                repo.AuditFilter(tenant_id=request.tenant_id, request_id=request.id),
                limit=history_limit + 1,
            )
        state = request.effective_state(tx.now)
        waiting = approvers.eligible(tx, request) if state is request.state else []
        return RequestView(
            request,
            state,
            tx.now,
            tuple(records[:history_limit]),
            history_truncated=len(records) > history_limit,
            can_approve=tuple(u.id for u in waiting),
        )


@dataclass(frozen=True)
class RequestPage:
    items: list[RequestView]
    next_cursor: str | None


def list_requests(
    app: Lockbox,
    actor: Principal,
    *,
    tenant: str | None = None,
    states: list[str] | None = None,
    requester: str | None = None,
    case_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
    extension_pending: bool = False,
) -> RequestPage:
    """Requests the actor may see, newest first, filtered, a page at a time;
    ``extension_pending``: only granted access with more time asked, waiting for approval."""
    optional_id(tenant, "tenant", "tenant")
    optional_ref(requester, "requester")
    optional_id(case_id, "case", "case_id")
    cursor = validate_cursor(cursor)
    created_after = optional_utc_instant(created_after, "created_after")
    created_before = optional_utc_instant(created_before, "created_before")
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationError("limit", f"must be from 1 to {MAX_PAGE}")
    wanted: list[State] = []
    for i, value in enumerate(states or []):
        try:
            wanted.append(State(value))
        except ValueError:
            allowed = ", ".join(s.value for s in State)
            raise ValidationError(
                f"state[{i}]", f"unknown state {value!r}; one of {allowed}"
            ) from None
    any_tenant, only = visible_tenant_filter(actor, Intent.REQUEST_VIEW)
    self_only = not any_tenant and only is None and Scope.SELF in scopes(actor, Intent.REQUEST_VIEW)
    with app.read() as tx:
        tenant_id = load_tenant(tx, actor, tenant).id if tenant else None
        requester_id = None
        if requester is not None:
            user = repo.get_user(tx.conn, requester)
            requester_id = user.id if user else "-none-"
        if not any_tenant:
            if self_only:
                if requester_id not in (None, actor.id):
                    return RequestPage([], None)
                requester_id = actor.id
            elif only is None or (tenant_id is not None and tenant_id != only):
                return RequestPage([], None)
            else:
                tenant_id = only
        flt = repo.RequestFilter(
            tenant_id=tenant_id,
            states=tuple(wanted),
            requester_id=requester_id,
            case_id=case_id,
            created_after=created_after,
            created_before=created_before,
            extension_pending=extension_pending,
        )
        items, next_cursor = repo.list_requests(
            tx.conn, flt, now=tx.now, limit=limit, cursor=cursor
        )
        return RequestPage(
            [RequestView(r, r.effective_state(tx.now), tx.now) for r in items], next_cursor
        )
