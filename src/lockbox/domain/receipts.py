"""Decision receipts: a signed statement of one decision on access, for the customer to keep.

An audit record proves what the log says only to someone who trusts the log's
chain; a receipt is a self-contained, signed statement of one decision (who
asked, for what, at which level and for how long; who decided, when, on what
basis) that names the audit record it corresponds to (chain, id, sequence,
hash). An auditor can check it offline with the published key, with
``lockbox receipt verify``, with :mod:`lockbox.verify` or with plain openssl,
and match it against an export of the chain.

Which transitions produce a receipt is :data:`RULES`: every customer decision
(approve, deny, revoke) and every automatic one (today: a support manager's
approval that grants access by itself because the tenant's lockbox is off).
A new kind of automatic decision adds a rule with its own ``basis``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from lockbox.domain.audit import AuditRecord
from lockbox.domain.instants import format_instant, format_optional
from lockbox.domain.lifecycle import Event, State
from lockbox.domain.request import Change
from lockbox.domain.signing import (
    RECEIPT,
    STATEMENT_VERSION,
    TYPES,
    PublicKey,
    SignatureProblem,
    envelope,
    open_envelope,
    parse_instant,
    unb64,
)
from lockbox.domain.tenant import Tenant


class ReceiptKind(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    REVOKE = "revoke"
    AUTO_APPROVE = "auto_approve"


class Basis(StrEnum):
    """Why the decision stands: who or which rule made it."""

    CUSTOMER = "customer"  # a person of the tenant decided
    LOCKBOX_OFF = "lockbox_off"  # the tenant's lockbox was off: a manager's approval granted it
    APPROVAL_RULE = "approval_rule"  # a rule the customer wrote in advance granted it


@dataclass(frozen=True)
class Rule:
    event: Event
    kind: ReceiptKind
    basis: Basis
    applies: Callable[[Change], bool] = lambda _change: True


#: Which transitions produce a receipt. The first rule that applies wins.
RULES: tuple[Rule, ...] = (
    Rule(Event.APPROVE, ReceiptKind.APPROVE, Basis.CUSTOMER),
    Rule(Event.DENY, ReceiptKind.DENY, Basis.CUSTOMER),
    Rule(Event.REVOKE, ReceiptKind.REVOKE, Basis.CUSTOMER),
    Rule(
        Event.REVIEW_APPROVE,
        ReceiptKind.AUTO_APPROVE,
        Basis.LOCKBOX_OFF,
        lambda change: change.target is State.APPROVED and change.request.customer_step is False,
    ),
    # Forwarded and granted at once with the lockbox on: only a customer's own rule does that.
    Rule(
        Event.REVIEW_APPROVE,
        ReceiptKind.AUTO_APPROVE,
        Basis.APPROVAL_RULE,
        lambda change: change.target is State.APPROVED,
    ),
)


def rule_for(change: Change) -> Rule | None:
    return next((r for r in RULES if r.event is change.event and r.applies(change)), None)


@dataclass(frozen=True)
class Party:
    """A person (or Lockbox itself) as a receipt names them, at the time of the decision."""

    id: str
    kind: str  # user | system | operator
    name: str
    email: str | None = None
    credential: str | None = None

    def as_dict(self, *, credential: bool) -> dict[str, Any]:
        found: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "email": self.email,
        }
        if credential:
            found["credential"] = self.credential
        return found


STATEMENT_FIELDS = frozenset(
    {"v", "type", "id", "kid", "at", "tenant", "request", "engineer", "decision", "audit"}
)


def statement(
    *,
    receipt_id: str,
    rule: Rule,
    change: Change,
    record: AuditRecord,
    tenant: Tenant,
    engineer: Party,
    decider: Party,
    kid: str,
) -> dict[str, Any]:
    """What is signed (its canonical bytes): docs/audit.md, "Receipts"."""
    request = change.request
    return {
        "v": STATEMENT_VERSION,
        "type": TYPES[RECEIPT],
        "id": receipt_id,
        "kid": kid,
        "at": format_instant(change.at),
        "tenant": {"id": tenant.id, "slug": tenant.slug, "name": tenant.name},
        "request": {
            "id": request.id,
            "case_id": request.case_id,
            "state": request.state.value,
            "resources": list(request.resources),
            "access_level": request.access_level.value,
            "access_window": {
                "from": format_optional(request.approved_at),
                "until": format_optional(request.access_deadline),
            },
            "ended_at": format_optional(request.ended_at),
            "approvals": len(request.approvals()),
            "required_approvals": request.required_approvals,
        },
        "engineer": engineer.as_dict(credential=False),
        "decision": {
            "kind": rule.kind.value,
            "basis": rule.basis.value,
            "by": decider.as_dict(credential=True),
            "at": format_instant(change.at),
            "comment": change.comment,
        },
        "audit": {
            "chain": record.tenant_id,
            "id": record.id,
            "seq": record.seq,
            "hash": record.hash,
        },
    }


@dataclass(frozen=True)
class Receipt:
    id: str
    request_id: str
    tenant_id: str
    kind: str
    at: datetime
    kid: str
    statement: dict[str, Any]
    signature: bytes

    def document(self) -> dict[str, Any]:
        """The file a customer keeps."""
        return envelope(RECEIPT, self.statement, self.signature)

    def summary(self) -> dict[str, Any]:
        """What a list shows of it."""
        decision = self.statement.get("decision", {})
        audit = self.statement.get("audit", {})
        return {
            "id": self.id,
            "request_id": self.request_id,
            "kind": self.kind,
            "basis": decision.get("basis"),
            "at": format_instant(self.at),
            "decided_by": (decision.get("by") or {}).get("id"),
            "decided_by_email": (decision.get("by") or {}).get("email"),
            "audit_seq": audit.get("seq"),
            "audit_hash": audit.get("hash"),
            "kid": self.kid,
        }


def from_document(doc: object, keys: Mapping[str, PublicKey]) -> Receipt:
    """A receipt whose signature, key and shape check out; else :class:`SignatureProblem`."""
    found = open_envelope(doc, RECEIPT, keys)
    if set(found) != STATEMENT_FIELDS:
        raise SignatureProblem(
            "is not a receipt (its fields are not " + ", ".join(sorted(STATEMENT_FIELDS)) + ")"
        )
    request, decision, audit = found["request"], found["decision"], found["audit"]
    if not (isinstance(request, dict) and isinstance(decision, dict) and isinstance(audit, dict)):
        raise SignatureProblem("is not a receipt (request, decision and audit are objects)")
    tenant = found["tenant"]
    if not isinstance(tenant, dict) or not isinstance(found["id"], str):
        raise SignatureProblem("is not a receipt (tenant is an object, id is text)")
    if not isinstance(doc, dict):  # checked by open_envelope; narrows the type
        raise SignatureProblem("is not a JSON object")
    return Receipt(
        id=found["id"],
        request_id=str(request.get("id")),
        tenant_id=str(tenant.get("id")),
        kind=str(decision.get("kind")),
        at=parse_instant(found["at"]),
        kid=found["kid"],
        statement=found,
        signature=unb64(doc["signature"]),
    )
