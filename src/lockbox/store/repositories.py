"""Repositories: map rows to domain objects and back, with the concurrency rules.

Every update of a versioned row is ``UPDATE … WHERE id = ? AND version = ?``;
zero rows touched means somebody else changed it first, which surfaces as
:class:`~lockbox.domain.errors.Conflict`. Audit appends lock the tenant's
chain head row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serialises
writers with ``BEGIN IMMEDIATE``), so sequence numbers never fork.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    String,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Select

from lockbox.domain.audit import GENESIS_HASH, AuditRecord, StoredRecord
from lockbox.domain.case import CaseStatus, SupportCase
from lockbox.domain.errors import Conflict, ValidationError
from lockbox.domain.lifecycle import DEADLINES, OPEN_STATES, State
from lockbox.domain.policy import LockboxPolicy
from lockbox.domain.request import AccessRequest, Decision, DecisionKind, Extension
from lockbox.domain.resources import AccessLevel
from lockbox.domain.roles import Role, Side
from lockbox.domain.stages import PlannedStage, parse_groups, parse_stages
from lockbox.domain.tenant import Tenant
from lockbox.domain.user import User
from lockbox.store import tables as t

# Statements on the hot paths are built once, here, with bind parameters: building a
# statement (especially a wide UPDATE) costs far more than running its cached form.

# -- tenants ----------------------------------------------------------------------

_TENANT_BY_REF = select(t.tenants).where(
    or_(t.tenants.c.id == bindparam("ref"), t.tenants.c.slug == bindparam("ref"))
)


def _policy_columns(policy: LockboxPolicy) -> dict[str, Any]:
    return {
        "lockbox_enabled": policy.enabled,
        "approval_window_s": int(policy.approval_window.total_seconds()),
        "access_window_s": int(policy.access_window.total_seconds()),
        "review_window_s": int(policy.review_window.total_seconds()),
        "required_approvals": policy.required_approvals,
        "notify_emails": list(policy.notify_emails),
        "reminder_fraction": policy.reminder_fraction,
        "approval_stages": [stage.as_dict() for stage in policy.stages] or None,
        "approver_groups": {name: list(members) for name, members in policy.groups} or None,
        "max_extensions": policy.max_extensions,
        "extension_stages": [stage.as_dict() for stage in policy.extension_stages] or None,
    }


def _tenant(row: RowMapping, domains: tuple[str, ...] = ()) -> Tenant:
    return Tenant(
        email_domains=domains,
        id=row["id"],
        slug=row["slug"],
        name=row["name"],
        created_at=row["created_at"],
        version=row["version"],
        policy=LockboxPolicy(
            enabled=row["lockbox_enabled"],
            approval_window=timedelta(seconds=row["approval_window_s"]),
            access_window=timedelta(seconds=row["access_window_s"]),
            review_window=timedelta(seconds=row["review_window_s"]),
            required_approvals=row["required_approvals"],
            notify_emails=tuple(row["notify_emails"] or ()),
            reminder_fraction=row["reminder_fraction"],
            stages=parse_stages(row["approval_stages"] or [], allow_empty=True),
            groups=parse_groups(row["approver_groups"] or {}),
            max_extensions=row["max_extensions"],
            extension_stages=parse_stages(
                row["extension_stages"] or [], "extension_stages", allow_empty=True
            ),
        ),
    )


def insert_tenant(conn: Connection, tenant: Tenant) -> None:
    conn.execute(
        insert(t.tenants).values(
            id=tenant.id,
            slug=tenant.slug,
            name=tenant.name,
            created_at=tenant.created_at,
            version=tenant.version,
            **_policy_columns(tenant.policy),
        )
    )
    conn.execute(insert(t.audit_heads).values(tenant_id=tenant.id, seq=0, hash=GENESIS_HASH))
    set_tenant_domains(conn, tenant.id, tenant.email_domains, tenant.created_at)


def _domains_of(conn: Connection, tenant_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {tid: [] for tid in tenant_ids}
    if tenant_ids:
        d = t.tenant_domains.c
        rows = conn.execute(
            select(d.tenant_id, d.domain)
            .where(d.tenant_id.in_(list(tenant_ids)))
            .order_by(d.domain)
        )
        for tenant_id, domain in rows:
            found[tenant_id].append(domain)
    return {tid: tuple(v) for tid, v in found.items()}


def get_tenant(conn: Connection, ref: str, *, domains: bool = False) -> Tenant | None:
    """By id or by slug: people type slugs, programs pass ids. ``domains`` loads the
    tenant's e-mail domains too (only user creation and views need them)."""
    row = conn.execute(_TENANT_BY_REF, {"ref": ref}).mappings().first()
    if row is None:
        return None
    return _tenant(row, _domains_of(conn, [row["id"]])[row["id"]] if domains else ())


def lock_tenant(conn: Connection, tenant_id: str) -> None:
    """Row-lock a tenant (PostgreSQL) before changing what belongs to it."""
    conn.execute(select(t.tenants.c.id).where(t.tenants.c.id == tenant_id).with_for_update())


def domain_owners(conn: Connection, domains: Sequence[str]) -> dict[str, str]:
    """domain → tenant id, for those of ``domains`` that belong to a tenant."""
    if not domains:
        return {}
    d = t.tenant_domains.c
    rows = conn.execute(select(d.domain, d.tenant_id).where(d.domain.in_(list(domains))))
    return {str(domain): str(tenant_id) for domain, tenant_id in rows}


def set_tenant_domains(
    conn: Connection, tenant_id: str, domains: Sequence[str], now: datetime
) -> None:
    """Replace a tenant's domains (the primary key keeps each domain in one tenant)."""
    conn.execute(delete(t.tenant_domains).where(t.tenant_domains.c.tenant_id == tenant_id))
    if domains:
        conn.execute(
            insert(t.tenant_domains),
            [{"domain": d, "tenant_id": tenant_id, "created_at": now} for d in domains],
        )


def slug_taken(conn: Connection, slug: str) -> bool:
    return conn.execute(select(t.tenants.c.id).where(t.tenants.c.slug == slug)).first() is not None


def list_tenants(conn: Connection, only: str | None = None) -> list[Tenant]:
    query = select(t.tenants).order_by(t.tenants.c.slug)
    if only is not None:
        query = query.where(t.tenants.c.id == only)
    rows = list(conn.execute(query).mappings())
    domains = _domains_of(conn, [r["id"] for r in rows])
    return [_tenant(r, domains[r["id"]]) for r in rows]


def update_tenant(conn: Connection, tenant: Tenant, expected_version: int) -> None:
    result = conn.execute(
        update(t.tenants)
        .where(t.tenants.c.id == tenant.id, t.tenants.c.version == expected_version)
        .values(name=tenant.name, version=tenant.version, **_policy_columns(tenant.policy))
    )
    if result.rowcount != 1:
        raise Conflict("the tenant was changed by someone else; reload and try again")


# -- users ------------------------------------------------------------------------


_USER_COLUMNS = [c for c in t.users.columns if c.name != "password_hash"]
_USER_WITH_ROLES = select(*_USER_COLUMNS, t.user_roles.c.role).select_from(
    t.users.outerjoin(t.user_roles, t.user_roles.c.user_id == t.users.c.id)
)
_USER_BY_ID = _USER_WITH_ROLES.where(t.users.c.id == bindparam("ref"))
_USER_BY_KEY = _USER_WITH_ROLES.where(t.users.c.email_key == bindparam("ref"))


_TOKEN_WITH_USER = (
    select(
        t.api_tokens.c.id.label("token_id"),
        t.api_tokens.c.token_hash,
        t.api_tokens.c.expires_at,
        t.api_tokens.c.revoked_at,
        t.api_tokens.c.last_used_at,
        *_USER_COLUMNS,
        t.user_roles.c.role,
    )
    .select_from(
        t.api_tokens.join(t.users, t.users.c.id == t.api_tokens.c.user_id).outerjoin(
            t.user_roles, t.user_roles.c.user_id == t.users.c.id
        )
    )
    .where(t.api_tokens.c.token_hash == bindparam("token_hash"))
)


def token_with_user(conn: Connection, token_hash: str) -> tuple[dict[str, Any], User] | None:
    """A token's row and its owner (with roles) in one query: authentication's only read."""
    rows = conn.execute(_TOKEN_WITH_USER, {"token_hash": token_hash}).mappings().all()
    user = _user_from_rows(rows)
    if user is None:
        return None
    first = rows[0]
    token = {
        k: first[k] for k in ("token_id", "token_hash", "expires_at", "revoked_at", "last_used_at")
    }
    return token, user


def _user_from_rows(rows: Sequence[RowMapping]) -> User | None:
    """One user from the rows of the user ⟕ roles join (one row per role)."""
    if not rows:
        return None
    r = rows[0]
    return User(
        id=r["id"],
        email=r["email"],
        display_name=r["display_name"],
        side=Side(r["side"]),
        tenant_id=r["tenant_id"],
        roles=frozenset(Role(x["role"]) for x in rows if x["role"] is not None),
        created_at=r["created_at"],
        active=r["active"],
        time_zone=r["time_zone"],
    )


_ROLES_OF = select(t.user_roles.c.user_id, t.user_roles.c.role).where(
    t.user_roles.c.user_id.in_(bindparam("ids", expanding=True))
)


def _roles_of(conn: Connection, user_ids: Sequence[str]) -> dict[str, set[Role]]:
    found: dict[str, set[Role]] = {uid: set() for uid in user_ids}
    if user_ids:
        rows = conn.execute(_ROLES_OF, {"ids": list(user_ids)})
        for uid, role in rows:
            found[uid].add(Role(role))
    return found


def _users(conn: Connection, rows: Sequence[RowMapping]) -> list[User]:
    """Users from rows of ``t.users`` (roles fetched for all of them in one query)."""
    roles = _roles_of(conn, [r["id"] for r in rows])
    return [
        User(
            id=r["id"],
            email=r["email"],
            display_name=r["display_name"],
            side=Side(r["side"]),
            tenant_id=r["tenant_id"],
            roles=frozenset(roles[r["id"]]),
            created_at=r["created_at"],
            active=r["active"],
            time_zone=r["time_zone"],
        )
        for r in rows
    ]


def insert_user(conn: Connection, user: User, password_hash: str | None = None) -> None:
    conn.execute(
        insert(t.users).values(
            id=user.id,
            email=user.email,
            email_key=email_key(user.email),
            display_name=user.display_name,
            side=user.side.value,
            tenant_id=user.tenant_id,
            active=user.active,
            created_at=user.created_at,
            password_hash=password_hash,
        )
    )
    set_roles(conn, user.id, user.roles)


def set_roles(conn: Connection, user_id: str, roles: frozenset[Role]) -> None:
    conn.execute(delete(t.user_roles).where(t.user_roles.c.user_id == user_id))
    if roles:
        conn.execute(
            insert(t.user_roles), [{"user_id": user_id, "role": r.value} for r in sorted(roles)]
        )


def set_user_active(conn: Connection, user_id: str, active: bool) -> None:
    conn.execute(update(t.users).where(t.users.c.id == user_id).values(active=active))


def set_password_hash(conn: Connection, user_id: str, password_hash: str | None) -> None:
    conn.execute(update(t.users).where(t.users.c.id == user_id).values(password_hash=password_hash))


def set_time_zone(conn: Connection, user_id: str, zone: str | None) -> None:
    conn.execute(update(t.users).where(t.users.c.id == user_id).values(time_zone=zone))


def get_password_hash(conn: Connection, user_id: str) -> str | None:
    value = conn.execute(select(t.users.c.password_hash).where(t.users.c.id == user_id)).scalar()
    return value if isinstance(value, str) else None


def users_by_ids(conn: Connection, ids: Sequence[str]) -> list[User]:
    if not ids:
        return []
    rows = conn.execute(select(*_USER_COLUMNS).where(t.users.c.id.in_(list(ids)))).mappings()
    return _users(conn, list(rows))


def email_key(email: str) -> str:
    """The unique, indexed form of an address: one address is one user whatever its case."""
    return email.strip().lower()


def get_user(conn: Connection, ref: str) -> User | None:
    """By id or (case-insensitively) by e-mail address, with roles, in one query."""
    # Ids and e-mail addresses cannot be confused ('@' never occurs in an id); both
    # look-ups are on a unique index, so at most one user can ever match.
    if "@" in ref:
        rows = conn.execute(_USER_BY_KEY, {"ref": email_key(ref)}).mappings().all()
    else:
        rows = conn.execute(_USER_BY_ID, {"ref": ref}).mappings().all()
    return _user_from_rows(rows)


def email_owner(conn: Connection, email: str) -> tuple[str, str | None] | None:
    """(user id, tenant id or None for staff) of the user with this address, if any."""
    query = select(t.users.c.id, t.users.c.tenant_id).where(t.users.c.email_key == email_key(email))
    row = conn.execute(query).first()
    return (row[0], row[1]) if row else None


def list_users(
    conn: Connection, *, tenant_id: str | None = None, side: Side | None = None
) -> list[User]:
    query = select(*_USER_COLUMNS).order_by(t.users.c.email)
    if tenant_id is not None:
        query = query.where(t.users.c.tenant_id == tenant_id)
    if side is not None:
        query = query.where(t.users.c.side == side.value)
    return _users(conn, list(conn.execute(query).mappings()))


_WITH_ROLES = (
    select(*_USER_COLUMNS)
    .join(t.user_roles, t.user_roles.c.user_id == t.users.c.id)
    .where(t.user_roles.c.role.in_(bindparam("roles", expanding=True)), t.users.c.active.is_(True))
    .distinct()
    .order_by(t.users.c.email)
)
_STAFF_WITH_ROLES = _WITH_ROLES.where(t.users.c.tenant_id.is_(None))
_TENANT_WITH_ROLES = _WITH_ROLES.where(t.users.c.tenant_id == bindparam("tenant_id"))


_EMAILS_WITH_ROLES = (
    select(t.users.c.email)
    .join(t.user_roles, t.user_roles.c.user_id == t.users.c.id)
    .where(t.user_roles.c.role.in_(bindparam("roles", expanding=True)), t.users.c.active.is_(True))
    .distinct()
    .order_by(t.users.c.email)
)
_STAFF_EMAILS = _EMAILS_WITH_ROLES.where(t.users.c.tenant_id.is_(None))
_TENANT_EMAILS = _EMAILS_WITH_ROLES.where(t.users.c.tenant_id == bindparam("tenant_id"))


def emails_with_roles(
    conn: Connection, roles: Sequence[Role], *, tenant_id: str | None
) -> list[str]:
    """Addresses of the active users holding any of ``roles`` (who to notify)."""
    params: dict[str, Any] = {"roles": [r.value for r in roles]}
    if tenant_id is None:
        return list(conn.execute(_STAFF_EMAILS, params).scalars())
    return list(conn.execute(_TENANT_EMAILS, {**params, "tenant_id": tenant_id}).scalars())


def users_with_roles(
    conn: Connection, roles: Sequence[Role], *, tenant_id: str | None
) -> list[User]:
    """Active users holding any of ``roles`` (in ``tenant_id``, or provider staff if None)."""
    params: dict[str, Any] = {"roles": [r.value for r in roles]}
    if tenant_id is None:
        rows = conn.execute(_STAFF_WITH_ROLES, params).mappings()
    else:
        rows = conn.execute(_TENANT_WITH_ROLES, {**params, "tenant_id": tenant_id}).mappings()
    return _users(conn, list(rows))


# -- cases ------------------------------------------------------------------------


def _case(row: RowMapping) -> SupportCase:
    return SupportCase(
        id=row["id"],
        tenant_id=row["tenant_id"],
        title=row["title"],
        reference=row["reference"],
        engineer_id=row["engineer_id"],
        status=CaseStatus(row["status"]),
        opened_at=row["opened_at"],
        opened_by=row["opened_by"],
        closed_at=row["closed_at"],
        closed_by=row["closed_by"],
    )


def insert_case(conn: Connection, case: SupportCase) -> None:
    conn.execute(
        insert(t.cases).values(
            id=case.id,
            tenant_id=case.tenant_id,
            title=case.title,
            reference=case.reference,
            engineer_id=case.engineer_id,
            status=case.status.value,
            opened_at=case.opened_at,
            opened_by=case.opened_by,
        )
    )


_CASE_BY_ID = select(t.cases).where(t.cases.c.id == bindparam("case_id"))
_CASE_BY_ID_LOCKED = _CASE_BY_ID.with_for_update()


def get_case(conn: Connection, case_id: str, *, lock: bool = False) -> SupportCase | None:
    """A case; ``lock`` row-locks it (PostgreSQL), the first lock in the documented order."""
    query = _CASE_BY_ID_LOCKED if lock else _CASE_BY_ID
    row = conn.execute(query, {"case_id": case_id}).mappings().first()
    return _case(row) if row else None


def close_case(conn: Connection, case: SupportCase) -> None:
    result = conn.execute(
        update(t.cases)
        .where(t.cases.c.id == case.id, t.cases.c.status == CaseStatus.OPEN.value)
        .values(status=case.status.value, closed_at=case.closed_at, closed_by=case.closed_by)
    )
    if result.rowcount != 1:
        raise Conflict("the support case was closed by someone else")


def list_cases(
    conn: Connection, *, tenant_id: str | None, status: CaseStatus | None = None, limit: int = 200
) -> list[SupportCase]:
    query = select(t.cases).order_by(t.cases.c.opened_at.desc(), t.cases.c.id.desc()).limit(limit)
    if tenant_id is not None:
        query = query.where(t.cases.c.tenant_id == tenant_id)
    if status is not None:
        query = query.where(t.cases.c.status == status.value)
    return [_case(r) for r in conn.execute(query).mappings()]


# -- access requests --------------------------------------------------------------

_REQUEST_FIELDS = (
    "id",
    "tenant_id",
    "case_id",
    "requester_id",
    "justification",
    "created_at",
    "updated_at",
    "review_deadline",
    "reviewer_id",
    "reviewed_at",
    "review_comment",
    "customer_step",
    "required_approvals",
    "approval_deadline",
    "approved_at",
    "access_deadline",
    "ended_at",
    "ended_by",
    "end_comment",
    "extensions",
    "version",
    "category",
    "starts_at",
)


def _request_values(request: AccessRequest) -> dict[str, Any]:
    values = {name: getattr(request, name) for name in _REQUEST_FIELDS}
    values.update(
        resources=list(request.resources),
        access_level=request.access_level.value,
        state=request.state.value,
        stages=[stage.as_dict() for stage in request.stages] or None,
        asked_resources=None if request.asked_resources is None else list(request.asked_resources),
        asked_level=request.asked_level.value if request.asked_level else None,
        access_window_s=None
        if request.access_window is None
        else int(request.access_window.total_seconds()),
        extension=request.extension.as_dict() if request.extension else None,
    )
    return values


_DECISIONS = (
    select(t.request_decisions)
    .where(t.request_decisions.c.request_id.in_(bindparam("ids", expanding=True)))
    .order_by(t.request_decisions.c.at, t.request_decisions.c.actor_id)
)
_REQUEST_BY_ID = select(t.access_requests).where(t.access_requests.c.id == bindparam("rid"))
_REQUEST_BY_ID_LOCKED = _REQUEST_BY_ID.with_for_update()
_REQUEST_BY_ID_SKIP_LOCKED = _REQUEST_BY_ID.with_for_update(skip_locked=True)
_REQUEST_UPDATE = (
    update(t.access_requests)
    .where(
        t.access_requests.c.id == bindparam("b_id"),
        t.access_requests.c.version == bindparam("b_version"),
    )
    .values(
        {
            c.name: bindparam(c.name)
            for c in t.access_requests.columns
            if c.name not in ("id", "first_used_at")
        }
    )
)


def _decisions(conn: Connection, request_ids: Sequence[str]) -> dict[str, list[Decision]]:
    found: dict[str, list[Decision]] = {rid: [] for rid in request_ids}
    if request_ids:
        rows = conn.execute(_DECISIONS, {"ids": list(request_ids)}).mappings()
        for r in rows:
            found[r["request_id"]].append(
                Decision(
                    actor_id=r["actor_id"],
                    kind=DecisionKind(r["kind"]),
                    at=r["at"],
                    comment=r["comment"],
                    credential=r["credential"],
                    stage=r["stage"],
                    on_behalf_of=r["on_behalf_of"],
                )
            )
    return found


def _requests(
    conn: Connection, rows: Sequence[RowMapping], *, decisions_too: bool = True
) -> list[AccessRequest]:
    """Requests from rows; ``decisions_too=False`` skips the customer decisions (the access
    check never reads them)."""
    ids = [r["id"] for r in rows]
    decisions = _decisions(conn, ids) if decisions_too else {i: [] for i in ids}
    result = []
    for r in rows:
        fields = {name: r[name] for name in _REQUEST_FIELDS}
        result.append(
            AccessRequest(
                **fields,
                resources=tuple(r["resources"]),
                access_level=AccessLevel(r["access_level"]),
                state=State(r["state"]),
                decisions=tuple(decisions[r["id"]]),
                stages=tuple(PlannedStage.from_dict(d) for d in r["stages"] or ()),
                asked_resources=None
                if r["asked_resources"] is None
                else tuple(r["asked_resources"]),
                asked_level=AccessLevel(r["asked_level"]) if r["asked_level"] else None,
                access_window=None
                if r["access_window_s"] is None
                else timedelta(seconds=r["access_window_s"]),
                extension=Extension.from_dict(r["extension"]) if r["extension"] else None,
            )
        )
    return result


def insert_request(conn: Connection, request: AccessRequest) -> None:
    conn.execute(insert(t.access_requests), _request_values(request))


def get_request(
    conn: Connection, request_id: str, *, lock: bool = False, skip_locked: bool = False
) -> AccessRequest | None:
    query = _REQUEST_BY_ID
    if lock:
        query = _REQUEST_BY_ID_SKIP_LOCKED if skip_locked else _REQUEST_BY_ID_LOCKED
    row = conn.execute(query, {"rid": request_id}).mappings().first()
    return _requests(conn, [row])[0] if row else None


def get_request_for_check(conn: Connection, request_id: str) -> AccessRequest | None:
    """A request without its customer decisions: all an access check reads."""
    row = conn.execute(_REQUEST_BY_ID, {"rid": request_id}).mappings().first()
    return _requests(conn, [row], decisions_too=False)[0] if row else None


def update_request(conn: Connection, request: AccessRequest, previous: AccessRequest) -> None:
    """Write ``request`` if nobody changed it since ``previous`` was read (optimistic lock).

    Decisions are append-only, so only those ``previous`` did not have are inserted.
    """
    values = _request_values(request)
    del values["id"]
    result = conn.execute(
        _REQUEST_UPDATE, {**values, "b_id": request.id, "b_version": previous.version}
    )
    if result.rowcount != 1:
        raise Conflict("the request was changed by someone else; reload and try again")
    known = {d.actor_id for d in previous.decisions}
    new = [d for d in request.decisions if d.actor_id not in known]
    if new:
        conn.execute(
            insert(t.request_decisions),
            [
                {
                    "request_id": request.id,
                    "actor_id": d.actor_id,
                    "kind": d.kind.value,
                    "at": d.at,
                    "comment": d.comment,
                    "credential": d.credential,
                    "stage": d.stage,
                    "on_behalf_of": d.on_behalf_of,
                }
                for d in new
            ],
        )


_FIRST_USE = (
    update(t.access_requests)
    .where(t.access_requests.c.id == bindparam("rid"), t.access_requests.c.first_used_at.is_(None))
    .values(first_used_at=bindparam("at"))
)


def mark_first_use(conn: Connection, request_id: str, at: datetime) -> bool:
    """Record the first use of a grant; True only for the call that recorded it."""
    return conn.execute(_FIRST_USE, {"rid": request_id, "at": at}).rowcount == 1


def _due(state: State, now: datetime | Any) -> ColumnElement[bool]:
    """SQL for "stored as ``state``, whose deadline has passed at ``now``"."""
    c = t.access_requests.c
    return and_(c.state == state.value, c[DEADLINES[state][0]] <= now)


def effective_state_clause(state: State, now: datetime | Any) -> ColumnElement[bool]:
    """SQL for "reads as ``state`` at ``now``": ``AccessRequest.effective_state`` in SQL,
    both built from :data:`~lockbox.domain.lifecycle.DEADLINES`."""
    return or_(*_stored_as(state, now))


def _stored_as(state: State, now: datetime | Any) -> list[ColumnElement[bool]]:
    """:func:`effective_state_clause` as its branches, each on one stored state: a listing
    reads each branch as its own range of the ``(tenant_id, state, created_at, id)`` index."""
    c = t.access_requests.c
    if state in DEADLINES:  # stored so, and its deadline not passed yet
        branches = [and_(c.state == state.value, c[DEADLINES[state][0]] > now)]
    else:
        branches = [c.state == state.value]
    reached_by_deadline = [_due(s, now) for s, (_, ends) in DEADLINES.items() if ends is state]
    return branches + reached_by_deadline


@dataclass(frozen=True)
class RequestFilter:
    tenant_id: str | None = None
    states: tuple[State, ...] = ()
    requester_id: str | None = None
    case_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    extension_pending: bool = False  # only granted access with an extension waiting


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int, field: str = "cursor") -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(field, "is not a cursor returned by this service") from None
    if (
        not isinstance(parts, list)
        or len(parts) != size
        or not all(isinstance(p, str) for p in parts)
        # A forged cursor must not smuggle a NUL (PostgreSQL refuses it: a 500) or a novel.
        or not all(len(p) <= 100 and p.isprintable() for p in parts)
    ):
        raise ValidationError(field, "is not a cursor returned by this service")
    return parts


def cursor_time(value: str, field: str = "cursor") -> datetime:
    """The time inside a cursor: aware and representable in UTC, or the cursor is forged."""
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationError(field, "is not a cursor returned by this service") from None


def list_requests(
    conn: Connection,
    flt: RequestFilter,
    *,
    now: datetime,
    limit: int,
    cursor: str | None,
    decisions_too: bool = True,
) -> tuple[list[AccessRequest], str | None]:
    """Newest first, ``limit`` at a time; the returned cursor continues after the last one."""
    params: dict[str, Any] = {
        "now": now,
        "limit": limit + 1,
        "tenant_id": flt.tenant_id,
        "requester_id": flt.requester_id,
        "case_id": flt.case_id,
        "created_after": flt.created_after,
        "created_before": flt.created_before,
    }
    if cursor:
        created_text, params["cursor_id"] = decode_cursor(cursor, 2)
        params["cursor_at"] = cursor_time(created_text)
    query = _listing(
        tuple(dict.fromkeys(flt.states)),
        tenant=flt.tenant_id is not None,
        requester=flt.requester_id is not None,
        case=flt.case_id is not None,
        extension=flt.extension_pending,
        after=flt.created_after is not None,
        before=flt.created_before is not None,
        cursor=bool(cursor),
    )
    rows = list(conn.execute(query, params).mappings())
    page = _requests(conn, rows[:limit], decisions_too=decisions_too)
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(last.created_at.isoformat(), last.id)
    return page, next_cursor


@lru_cache(maxsize=512)
def _listing(
    states: tuple[State, ...],
    *,
    tenant: bool,
    requester: bool,
    case: bool,
    extension: bool,
    after: bool,
    before: bool,
    cursor: bool,
) -> Select[Any]:
    """The statement of one shape of :func:`list_requests`, values as bound parameters.

    Built once per shape: a listing page is otherwise dominated by SQLAlchemy building
    and keying a fresh statement (a tenant's pending requests are several subqueries).
    """
    c = t.access_requests.c
    when = t.UTCDateTime()
    query = select(t.access_requests)
    if tenant:
        query = query.where(c.tenant_id == bindparam("tenant_id"))
    if requester:
        query = query.where(c.requester_id == bindparam("requester_id"))
    if case:
        query = query.where(c.case_id == bindparam("case_id"))
    if extension:
        query = query.where(c.extension.is_not(None))
    if after:
        query = query.where(c.created_at >= bindparam("created_after", type_=when))
    if before:
        query = query.where(c.created_at < bindparam("created_before", type_=when))
    if cursor:
        # "(created_at, id) before the cursor", written with a plain upper bound on
        # created_at that both databases use as an index range (an OR alone makes SQLite
        # scan from the newest row on every page).
        at = bindparam("cursor_at", type_=when)
        query = query.where(
            c.created_at <= at, or_(c.created_at < at, c.id < bindparam("cursor_id"))
        )
    now = bindparam("now", type_=when)
    limit = bindparam("limit", type_=Integer)
    newest = (c.created_at.desc(), c.id.desc())
    branches = [b for state in states for b in _stored_as(state, now)]
    if not (tenant and branches):
        if branches:
            query = query.where(or_(*branches))
        return query.order_by(*newest).limit(limit)
    # A tenant's requests in some states, newest first: each stored state is one backwards
    # range of the (tenant_id, state, created_at, id) index, limited to a page; the ranges
    # are merged, and only the page's rows are read from the table. Filtering the tenant's
    # whole history by state instead reads every older request whenever fewer than a page
    # are left (the last page).
    parts = [
        query.with_only_columns(c.id, c.created_at).where(b).order_by(*newest).limit(limit)
        for b in branches
    ]
    merged = union_all(*(select(part.subquery()) for part in parts)).subquery()
    page = select(merged.c.id).order_by(merged.c.created_at.desc(), merged.c.id.desc())
    return select(t.access_requests).where(c.id.in_(page.limit(limit))).order_by(*newest)


def open_requests_for_case(
    conn: Connection, case_id: str, *, lock: bool = False
) -> list[AccessRequest]:
    """Requests on a case that are not terminal; ``lock`` row-locks them in id order
    (the second lock in the documented order), so a concurrent transition waits."""
    c = t.access_requests.c
    query = select(t.access_requests).where(
        c.case_id == case_id, c.state.in_([s.value for s in OPEN_STATES])
    )
    query = query.order_by(c.id).with_for_update() if lock else query.order_by(c.created_at)
    rows = list(conn.execute(query).mappings())
    found = _requests(conn, rows)
    return sorted(found, key=lambda r: (r.created_at, r.id)) if lock else found


_ACTIVE_FOR = (
    select(t.access_requests)
    .where(
        t.access_requests.c.tenant_id == bindparam("tenant_id"),
        t.access_requests.c.requester_id == bindparam("requester_id"),
        effective_state_clause(State.APPROVED, bindparam("now", type_=t.UTCDateTime())),
    )
    .order_by(t.access_requests.c.created_at.desc())
)


def active_requests_for(
    conn: Connection, *, tenant_id: str, requester_id: str, now: datetime
) -> list[AccessRequest]:
    """Requests of this engineer on this tenant that are approved and within their window
    (without their customer decisions, which a check never needs)."""
    params = {"tenant_id": tenant_id, "requester_id": requester_id, "now": now}
    rows = conn.execute(_ACTIVE_FOR, params).mappings()
    return _requests(conn, list(rows), decisions_too=False)


def active_requests_of(
    conn: Connection, *, requester_id: str | None, now: datetime
) -> list[AccessRequest]:
    """Requests approved and within their window (of one engineer, or everyone's)."""
    c = t.access_requests.c
    query = select(t.access_requests).where(effective_state_clause(State.APPROVED, now))
    if requester_id is not None:
        query = query.where(c.requester_id == requester_id)
    rows = conn.execute(query.order_by(c.created_at, c.id)).mappings()
    return _requests(conn, list(rows))


def due_request_ids(conn: Connection, now: datetime, limit: int) -> list[str]:
    """Ids of requests whose stage deadline has passed but whose state says otherwise."""
    c = t.access_requests.c
    query = select(c.id).where(or_(*(_due(s, now) for s in DEADLINES))).limit(limit)
    return [row[0] for row in conn.execute(query)]


# -- audit ------------------------------------------------------------------------


def canonical_details(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_HEAD_LOCKED = (
    select(t.audit_heads.c.seq, t.audit_heads.c.hash)
    .where(t.audit_heads.c.tenant_id == bindparam("tenant_id"))
    .with_for_update()
)
_HEAD_UPDATE = (
    update(t.audit_heads)
    .where(
        t.audit_heads.c.tenant_id == bindparam("b_tenant_id"),
        t.audit_heads.c.seq == bindparam("b_seq"),
    )
    .values(seq=bindparam("seq"), hash=bindparam("hash"))
)


def append_audit(conn: Connection, record: AuditRecord) -> AuditRecord:
    """Append ``record`` (seq/prev_hash/hash are filled in here) to its tenant's chain."""
    head = conn.execute(_HEAD_LOCKED, {"tenant_id": record.tenant_id}).first()
    if head is None:
        raise ValidationError("tenant_id", "unknown tenant")
    # Encoded once; decoded back so the hash covers exactly what is stored (tuples become
    # lists, keys strings), and the stored text is that same encoding.
    encoded = canonical_details(record.details)
    details = json.loads(encoded)
    chained = replace(
        record, seq=head.seq + 1, prev_hash=head.hash, details=details, at=record.at
    ).hashed()
    conn.execute(
        insert(t.audit_events),
        {
            "id": chained.id,
            "tenant_id": chained.tenant_id,
            "seq": chained.seq,
            "at": chained.at,
            "actor_id": chained.actor_id,
            "actor_kind": chained.actor_kind,
            "operation": chained.operation,
            "request_id": chained.request_id,
            "details": encoded,
            "prev_hash": chained.prev_hash,
            "hash": chained.hash,
        },
    )
    result = conn.execute(
        _HEAD_UPDATE,
        {
            "b_tenant_id": chained.tenant_id,
            "b_seq": head.seq,
            "seq": chained.seq,
            "hash": chained.hash,
        },
    )
    if result.rowcount != 1:
        raise Conflict("another change was recorded at the same moment; try again")
    return chained


def _audit(row: RowMapping) -> AuditRecord:
    return AuditRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        seq=row["seq"],
        at=row["at"],
        actor_id=row["actor_id"],
        actor_kind=row["actor_kind"],
        operation=row["operation"],
        request_id=row["request_id"],
        details=json.loads(row["details"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


@dataclass(frozen=True)
class AuditFilter:
    tenant_id: str
    request_id: str | None = None
    operation_prefix: str | None = None
    actor_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int = 0


def query_audit(conn: Connection, flt: AuditFilter, limit: int) -> list[AuditRecord]:
    """Oldest first from ``after_seq``: cursors are plain sequence numbers."""
    c = t.audit_events.c
    query = select(t.audit_events).where(c.tenant_id == flt.tenant_id, c.seq > flt.after_seq)
    if flt.request_id is not None:
        query = query.where(c.request_id == flt.request_id)
    if flt.operation_prefix:
        query = query.where(c.operation.startswith(flt.operation_prefix, autoescape=True))
    if flt.actor_id is not None:
        query = query.where(c.actor_id == flt.actor_id)
    if flt.since is not None:
        query = query.where(c.at >= flt.since)
    if flt.until is not None:
        query = query.where(c.at < flt.until)
    query = query.order_by(c.seq).limit(limit)
    return [_audit(r) for r in conn.execute(query).mappings()]


def iter_audit(conn: Connection, tenant_id: str, batch: int = 1000) -> Iterator[AuditRecord]:
    """Every record of a tenant in sequence order, fetched in batches (constant memory)."""
    after = 0
    while True:
        page = query_audit(conn, AuditFilter(tenant_id=tenant_id, after_seq=after), batch)
        yield from page
        if len(page) < batch:
            return
        after = page[-1].seq


_STORED_AUDIT = (
    select(
        t.audit_events.c.id,
        t.audit_events.c.tenant_id,
        t.audit_events.c.seq,
        type_coerce(t.audit_events.c.at, String),
        t.audit_events.c.actor_id,
        t.audit_events.c.actor_kind,
        t.audit_events.c.operation,
        t.audit_events.c.request_id,
        t.audit_events.c.details,
        t.audit_events.c.prev_hash,
        t.audit_events.c.hash,
    )
    .where(
        t.audit_events.c.tenant_id == bindparam("tenant_id"),
        t.audit_events.c.seq > bindparam("after"),
    )
    .order_by(t.audit_events.c.seq)
    .limit(bindparam("batch"))
)


def iter_stored_audit(
    conn: Connection, tenant_id: str, batch: int = 5000
) -> Iterator[StoredRecord]:
    """Every record of a tenant in sequence order as stored (details as their text), for
    verification: nothing is decoded, so a long chain verifies at the speed of hashing."""
    after = 0
    while True:
        rows = conn.execute(
            _STORED_AUDIT, {"tenant_id": tenant_id, "after": after, "batch": batch}
        ).all()
        at = t.stored_instant_text
        for i, tid, seq, when, actor, kind, op, rid, details, prev, digest in rows:
            yield StoredRecord(i, tid, seq, at(when), actor, kind, op, rid, details, prev, digest)
        if len(rows) < batch:
            return
        after = rows[-1][2]


def audit_head(conn: Connection, tenant_id: str) -> tuple[int, str] | None:
    row = conn.execute(
        select(t.audit_heads.c.seq, t.audit_heads.c.hash).where(
            t.audit_heads.c.tenant_id == tenant_id
        )
    ).first()
    return (row.seq, row.hash) if row else None
