"""The grant feed: every grant that starts and every grant that ends, in one global order.

Writes happen inside the transaction of the change itself (:meth:`Tx.record`,
user deactivation and role changes), so the feed can never announce a change
that did not commit, nor miss one that did. A grant's end by its deadline needs
no message: each ``grant`` event carries ``access_deadline``, and a follower
enforces it from its own clock. ``end`` events are still written when the
sweeper records the expiry, for followers that want to tidy up.

Readers (resource services) see only what they serve: events of other tenants
are skipped and a grant's resources are cut to the service's prefixes, as for
access tokens. A follower without a cursor starts from :func:`snapshot`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lockbox.domain.instants import format_instant, format_optional
from lockbox.domain.lifecycle import Event, State
from lockbox.domain.permissions import Intent, allows, authorize
from lockbox.domain.request import AccessRequest, Change
from lockbox.domain.resource_service import ServiceScope
from lockbox.domain.roles import Principal
from lockbox.domain.user import User
from lockbox.store import grant_feed as store
from lockbox.store import repositories as repo

if TYPE_CHECKING:
    from lockbox.service.app import Lockbox, Tx

MAX_BATCH = 500
#: Why a grant ended, by the state the request reached.
_END_REASONS = {
    State.CLOSED: "closed",
    State.REVOKED: "revoked",
    State.ACCESS_ENDED: "expired",
}


_EXTENDING = (Event.EXTEND, Event.EXTEND_APPROVE)


@dataclass(frozen=True)
class GrantEvent:
    """One event as a follower receives it."""

    seq: int
    kind: str  # grant | end
    reason: str
    tenant_id: str
    tenant: str
    request_id: str
    engineer_id: str
    engineer_email: str
    resources: tuple[str, ...]
    access_level: str
    access_deadline: datetime | None
    at: datetime
    access_starts_at: datetime | None = None  # nothing is allowed before it

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "reason": self.reason,
            "tenant_id": self.tenant_id,
            "tenant": self.tenant,
            "request_id": self.request_id,
            "engineer_id": self.engineer_id,
            "engineer_email": self.engineer_email,
            "resources": list(self.resources),
            "access_level": self.access_level,
            "access_deadline": format_optional(self.access_deadline),
            "access_starts_at": format_optional(self.access_starts_at),
            "at": format_instant(self.at),
        }


# -- writing (inside the change's transaction) -------------------------------------------------


def on_change(tx: Tx, change: Change) -> None:
    """Announce a grant that starts (``approved`` reached) or ends (``approved`` left)."""
    request = change.request
    if change.target is State.APPROVED and change.source is not State.APPROVED:
        _append(tx, [(request, "grant", "approved" if request.customer_step else "lockbox_off")])
    elif change.event in _EXTENDING and "access_deadline" in change.details:
        _append(tx, [(request, "grant", "extended")])  # the same grant, a later deadline
    elif change.source is State.APPROVED and change.target.terminal:
        _append(tx, [(request, "end", _END_REASONS.get(change.target, change.target.value))])


def on_user_change(tx: Tx, before: User, after: User) -> None:
    """A person who can no longer use grants (deactivated, no longer an engineer) ends them all;
    one who can again gets them back (the requests themselves never changed)."""
    could = _may_use_grants(before)
    can = _may_use_grants(after)
    if could == can:
        return
    active = repo.active_requests_of(tx.conn, requester_id=after.id, now=tx.now)
    kind, reason = ("grant", "user_active") if can else ("end", "user_inactive")
    _append(tx, [(r, kind, reason) for r in active])


def _may_use_grants(user: User) -> bool:
    return user.active and allows(user.principal(), Intent.ACCESS_TOKEN, None, owner_id=user.id)


def _append(tx: Tx, items: list[tuple[AccessRequest, str, str]]) -> None:
    rows = []
    for request, kind, reason in items:
        tenant = tx.tenant(request.tenant_id)
        engineer = tx.user(request.requester_id)
        rows.append(
            {
                "at": tx.now,
                "kind": kind,
                "reason": reason,
                "tenant_id": request.tenant_id,
                "tenant_slug": tenant.slug if tenant else request.tenant_id,
                "request_id": request.id,
                "engineer_id": request.requester_id,
                "engineer_email": engineer.email if engineer else "",
                "resources": list(request.resources),
                "access_level": request.access_level.value,
                "access_deadline": request.access_deadline,
                "access_starts_at": request.starts_at if request.not_started(tx.now) else None,
            }
        )
    store.append(tx.conn, rows)


# -- reading (resource services) ---------------------------------------------------------------


def _authorized_scope(app: Lockbox, actor: Principal) -> ServiceScope:
    from lockbox.service.resource_services import scope_of

    authorize(actor, Intent.ACCESS_CHECK, kind="access", tenant_id=None)
    with app.read() as tx:
        return scope_of(tx, actor)


def _visible(scope: ServiceScope, change: store.GrantChange) -> GrantEvent | None:
    if not scope.serves_tenant(change.tenant_id):
        return None
    owned = scope.owned(change.resources)
    if not owned:
        return None
    return GrantEvent(
        seq=change.seq,
        kind=change.kind,
        reason=change.reason,
        tenant_id=change.tenant_id,
        tenant=change.tenant_slug,
        request_id=change.request_id,
        engineer_id=change.engineer_id,
        engineer_email=change.engineer_email,
        resources=owned,
        access_level=change.access_level,
        access_deadline=change.access_deadline,
        at=change.at,
        access_starts_at=change.access_starts_at,
    )


@dataclass(frozen=True)
class Batch:
    events: list[GrantEvent]
    cursor: int  # the last seq examined: resume after it (events of others were skipped)


def changes(app: Lockbox, scope: ServiceScope, after: int, limit: int = MAX_BATCH) -> Batch:
    """The events after ``after`` that ``scope`` may see, and how far the stream was read."""
    with app.read() as tx:
        rows = store.after(tx.conn, after, limit)
    events = [e for e in (_visible(scope, r) for r in rows) if e is not None]
    return Batch(events, rows[-1].seq if rows else after)


def head(app: Lockbox) -> int:
    with app.read() as tx:
        return store.head(tx.conn)


def snapshot(app: Lockbox, scope: ServiceScope) -> Batch:
    """Every grant active now (as ``grant`` events) and the cursor to follow from.

    The cursor is read *before* the grants, so a change committing in between is
    both in the snapshot and after the cursor: delivered twice (harmless), never lost.
    """
    with app.read() as tx:
        cursor = store.head(tx.conn)
        requests = repo.active_requests_of(tx.conn, requester_id=None, now=tx.now)
        ids = sorted({r.requester_id for r in requests})
        people = {u.id: u for u in repo.users_by_ids(tx.conn, ids)}
        tenants = {r.tenant_id: tx.tenant(r.tenant_id) for r in requests}
        now = tx.now
    events = []
    for r in requests:
        user, tenant = people.get(r.requester_id), tenants.get(r.tenant_id)
        if user is None or tenant is None or not _may_use_grants(user):
            continue
        change = store.GrantChange(
            seq=cursor,
            at=now,
            kind="grant",
            reason="approved" if r.customer_step else "lockbox_off",
            tenant_id=r.tenant_id,
            tenant_slug=tenant.slug,
            request_id=r.id,
            engineer_id=r.requester_id,
            engineer_email=user.email,
            resources=r.resources,
            access_level=r.access_level.value,
            access_deadline=r.access_deadline,
            access_starts_at=r.starts_at if r.not_started(now) else None,
        )
        event = _visible(scope, change)
        if event is not None:
            events.append(event)
    return Batch(events, cursor)


def scope_for(app: Lockbox, actor: Principal) -> ServiceScope:
    """The caller's registration, after checking it is a resource service at all."""
    return _authorized_scope(app, actor)
