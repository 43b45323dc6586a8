"""Auto-approval rules and the changes waiting for a second tenant admin, as rows.

Both are versioned: an update is ``UPDATE … WHERE id = ? AND version = ?`` and touching
no row is a :class:`~lockbox.domain.errors.Conflict`. Writers lock the tenant's row
first (step 3 of the lock order in docs/architecture.md), so the changes of one tenant
queue and each sees the ones before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.engine import RowMapping

from lockbox.domain.auto_approval import AutoApprovalRule, RuleState, StoredRule, parse_rule
from lockbox.domain.changes import ChangeKind, ChangeState, PendingChange
from lockbox.domain.errors import Conflict
from lockbox.store import tables as t

# -- rules ------------------------------------------------------------------------------

_r = t.auto_approval_rules.c
_ACTIVE_RULES = (
    select(t.auto_approval_rules)
    .where(_r.tenant_id == bindparam("tenant_id"), _r.state == RuleState.ACTIVE.value)
    .order_by(_r.created_at, _r.id)
)


def _rule(row: RowMapping) -> StoredRule:
    state = RuleState(row["state"])
    data: dict[str, Any] = {
        **row["definition"],
        "name": row["name"],
        "enabled": state is RuleState.ACTIVE,
    }
    return StoredRule(
        rule=parse_rule(data, rule_id=row["id"], tenant_id=row["tenant_id"]),
        state=state,
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_by=row["updated_by"],
        updated_at=row["updated_at"],
        version=row["version"],
    )


def _rule_values(stored: StoredRule) -> dict[str, Any]:
    return {
        "tenant_id": stored.rule.tenant_id,
        "name": stored.rule.name,
        "definition": stored.rule.definition(),
        "state": stored.state.value,
        "updated_by": stored.updated_by,
        "updated_at": stored.updated_at,
        "version": stored.version,
    }


def insert_rule(conn: Connection, stored: StoredRule) -> None:
    conn.execute(
        insert(t.auto_approval_rules).values(
            id=stored.id,
            created_by=stored.created_by,
            created_at=stored.created_at,
            **_rule_values(stored),
        )
    )


def get_rule(conn: Connection, rule_id: str) -> StoredRule | None:
    row = conn.execute(select(t.auto_approval_rules).where(_r.id == rule_id)).mappings().first()
    return _rule(row) if row else None


def list_rules(conn: Connection, tenant_id: str) -> list[StoredRule]:
    """A tenant's rules, oldest first (the order they are tried in)."""
    query = select(t.auto_approval_rules).where(_r.tenant_id == tenant_id)
    rows = conn.execute(query.order_by(_r.created_at, _r.id)).mappings()
    return [_rule(r) for r in rows]


def active_rules(conn: Connection, tenant_id: str) -> list[AutoApprovalRule]:
    """The rules that approve requests now, in the order they are tried (one query)."""
    rows = conn.execute(_ACTIVE_RULES, {"tenant_id": tenant_id}).mappings()
    return [_rule(r).rule for r in rows]


def update_rule(conn: Connection, stored: StoredRule, expected_version: int) -> None:
    result = conn.execute(
        update(t.auto_approval_rules)
        .where(_r.id == stored.id, _r.version == expected_version)
        .values(**_rule_values(stored))
    )
    if result.rowcount != 1:
        raise Conflict("the rule was changed by someone else; reload it and try again")


# -- pending changes --------------------------------------------------------------------------

_c = t.pending_changes.c


def _change(row: RowMapping) -> PendingChange:
    return PendingChange(
        id=row["id"],
        tenant_id=row["tenant_id"],
        kind=ChangeKind(row["kind"]),
        payload=dict(row["payload"]),
        proposed_by=row["proposed_by"],
        proposed_at=row["proposed_at"],
        state=ChangeState(row["state"]),
        reasons=tuple(str(r) for r in row["reasons"] or ()),
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        comment=row["comment"],
        version=row["version"],
    )


def insert_change(conn: Connection, change: PendingChange) -> None:
    conn.execute(
        insert(t.pending_changes).values(
            id=change.id,
            tenant_id=change.tenant_id,
            kind=change.kind.value,
            payload=change.payload,
            reasons=list(change.reasons),
            proposed_by=change.proposed_by,
            proposed_at=change.proposed_at,
            state=change.state.value,
            decided_by=change.decided_by,
            decided_at=change.decided_at,
            comment=change.comment,
            version=change.version,
        )
    )


def get_change(conn: Connection, change_id: str) -> PendingChange | None:
    row = conn.execute(select(t.pending_changes).where(_c.id == change_id)).mappings().first()
    return _change(row) if row else None


def list_changes(
    conn: Connection, tenant_id: str, states: Sequence[ChangeState] = (), limit: int = 200
) -> list[PendingChange]:
    """A tenant's changes, newest first; ``states``: only those."""
    query = select(t.pending_changes).where(_c.tenant_id == tenant_id)
    if states:
        query = query.where(_c.state.in_([s.value for s in states]))
    query = query.order_by(_c.proposed_at.desc(), _c.id.desc()).limit(limit)
    return [_change(r) for r in conn.execute(query).mappings()]


def update_change(conn: Connection, change: PendingChange, expected_version: int) -> None:
    result = conn.execute(
        update(t.pending_changes)
        .where(_c.id == change.id, _c.version == expected_version)
        .values(
            state=change.state.value,
            decided_by=change.decided_by,
            decided_at=change.decided_at,
            comment=change.comment,
            version=change.version,
        )
    )
    if result.rowcount != 1:
        raise Conflict("the change was decided by someone else; reload it")
