"""Plain, JSON-ready views of domain objects.

The API's response models, the CLI's ``--json`` output and the CLI's tables
all start from these dictionaries, so every adapter shows the same fields
under the same names.
"""

from __future__ import annotations

from typing import Any

from lockbox.domain.audit import AuditRecord, ChainReport
from lockbox.domain.case import SupportCase
from lockbox.domain.instants import format_optional
from lockbox.domain.request import Extension
from lockbox.domain.tenant import Tenant
from lockbox.domain.user import User
from lockbox.service.requests import RequestView
from lockbox.store.tokens import TokenRow

ts = format_optional


def tenant(t: Tenant) -> dict[str, Any]:
    return {
        "id": t.id,
        "slug": t.slug,
        "name": t.name,
        "created_at": ts(t.created_at),
        "version": t.version,
        "policy": t.policy.as_dict(),
        "email_domains": list(t.email_domains),
    }


def user(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "email": u.email,
        "display_name": u.display_name,
        "side": u.side.value,
        "tenant_id": u.tenant_id,
        "roles": sorted(r.value for r in u.roles),
        "active": u.active,
        "created_at": ts(u.created_at),
    }


def case(c: SupportCase) -> dict[str, Any]:
    return {
        "id": c.id,
        "tenant_id": c.tenant_id,
        "title": c.title,
        "reference": c.reference,
        "engineer_id": c.engineer_id,
        "status": c.status.value,
        "opened_at": ts(c.opened_at),
        "opened_by": c.opened_by,
        "closed_at": ts(c.closed_at),
        "closed_by": c.closed_by,
    }


def request(view: RequestView, *, history: bool = False) -> dict[str, Any]:
    r = view.request
    data: dict[str, Any] = {
        "id": r.id,
        "tenant_id": r.tenant_id,
        "case_id": r.case_id,
        "requester_id": r.requester_id,
        "resources": list(r.resources),
        "access_level": r.access_level.value,
        "justification": r.justification,
        "category": r.category,
        "state": view.state.value,
        "stored_state": r.state.value,
        "created_at": ts(r.created_at),
        "updated_at": ts(r.updated_at),
        "review_deadline": ts(r.review_deadline),
        "reviewer_id": r.reviewer_id,
        "reviewed_at": ts(r.reviewed_at),
        "review_comment": r.review_comment,
        "customer_step": r.customer_step,
        "required_approvals": r.required_approvals,
        "approval_deadline": ts(r.approval_deadline),
        "decisions": [
            {
                "actor_id": d.actor_id,
                "decision": d.kind.value,
                "at": ts(d.at),
                "comment": d.comment,
                "credential": d.credential,
                "stage": d.stage,
                "on_behalf_of": d.on_behalf_of,
            }
            for d in r.decisions
        ],
        "stages": [
            {
                **stage.as_dict(),
                "approved_by": [d.actor_id for d in r.stage_approvals(stage)],
                "met": len(r.stage_approvals(stage)) >= stage.required,
            }
            for stage in r.planned_stages()
        ],
        "current_stage": current.key if (current := r.current_stage()) else None,
        "can_approve": list(view.can_approve),
        "asked_resources": None if r.asked_resources is None else list(r.asked_resources),
        "asked_access_level": r.asked_level.value if r.asked_level else None,
        "access_window_seconds": None
        if r.access_window is None
        else int(r.access_window.total_seconds()),
        "extension": _extension(r.extension),
        "extensions": r.extensions,
        "starts_at": ts(r.starts_at),
        "approved_at": ts(r.approved_at),
        "access_deadline": ts(r.access_deadline),
        "ended_at": ts(r.ended_at),
        "ended_by": r.ended_by,
        "end_comment": r.end_comment,
        "deadline": ts(r.stage_deadline()) if not view.state.terminal else None,
        "version": r.version,
    }
    if history:
        data["history"] = [audit_record(a) for a in view.history]
        data["history_truncated"] = view.history_truncated
    return data


def _extension(extension: Extension | None) -> dict[str, Any] | None:
    if extension is None:
        return None
    waiting = extension.current_stage()
    return {
        "by_seconds": int(extension.by.total_seconds()),
        "reason": extension.reason,
        "asked_at": ts(extension.asked_at),
        "stages": [
            {
                **stage.as_dict(),
                "approved_by": [d.actor_id for d in extension.stage_approvals(stage)],
                "met": len(extension.stage_approvals(stage)) >= stage.required,
            }
            for stage in extension.stages
        ],
        "current_stage": waiting.key if waiting else None,
    }


def audit_record(a: AuditRecord) -> dict[str, Any]:
    return a.as_dict()


def chain_report(r: ChainReport) -> dict[str, Any]:
    return {
        "tenant_id": r.tenant_id,
        "ok": r.ok,
        "records": r.records,
        "head_seq": r.head_seq,
        "head_hash": r.head_hash,
        "problem": r.problem,
        "broken_seq": r.broken_seq,
        "broken_id": r.broken_id,
    }


def token(row: TokenRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "user_id": row.user_id,
        "name": row.name,
        "created_at": ts(row.created_at),
        "expires_at": ts(row.expires_at),
        "revoked_at": ts(row.revoked_at),
        "last_used_at": ts(row.last_used_at),
    }
