"""Signing inside a transaction: checkpoints of a chain's head and receipts of decisions.

:meth:`lockbox.service.app.Tx.record` calls :func:`before_record` before it
appends a request transition's audit record and :func:`after_record` after it,
so each transition's checkpoint (and a decision's receipt) commits with the
transition or not at all. A transaction that signs first chooses the audit key
valid at its time and share-locks its row (:func:`signing_key`, once per
transaction), before the audit head: the lock order of docs/architecture.md.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lockbox.access.keys import AUDIT, SigningKey
from lockbox.domain import receipts as receipt_rules
from lockbox.domain.audit import AuditRecord, canonical_json
from lockbox.domain.checkpoints import Checkpoint
from lockbox.domain.errors import present
from lockbox.domain.ids import new_id
from lockbox.domain.receipts import Party, Receipt
from lockbox.domain.request import Change
from lockbox.domain.roles import ActorKind, Principal
from lockbox.service import notifications
from lockbox.store import checkpoints as checkpoint_store
from lockbox.store import keys as keystore
from lockbox.store import receipts as receipt_store
from lockbox.store import repositories as repo

if TYPE_CHECKING:
    from lockbox.service.app import Tx

log = logging.getLogger("lockbox.signing")


@lru_cache(maxsize=16)
def _private(pem: str) -> Ed25519PrivateKey:
    """Parsed once per key per process: parsing costs more than signing."""
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError("an audit key is not an Ed25519 key")
    return key


def _load_key(tx: Tx) -> SigningKey:
    key = keystore.audit_key_at(tx.conn, tx.now)  # share-locked until commit
    if key is None:
        key = keystore.ensure_key(tx.conn, tx.now, AUDIT)  # the first audit key
    elif key.created_at > tx.now:
        # The clock stands before every key (it was set back): sign anyway, with the
        # oldest key valid then; a verifier still accepts it (only retirement binds).
        log.warning("signing.clock_before_key", extra={"fields": {"kid": key.kid}})
    return key


def signing_key(tx: Tx) -> SigningKey:
    """The audit key this transaction signs with (chosen once, under the shared lock)."""
    return tx.cached("audit_key", "", lambda _conn, _key: _load_key(tx))


def sign(tx: Tx, statement: dict[str, Any]) -> bytes:
    key = signing_key(tx)
    if statement.get("kid") != key.kid:
        raise ValueError("a statement must name the key that signs it")
    return _private(key.private_pem).sign(canonical_json(statement))


def issue_checkpoint(
    tx: Tx,
    chain: str,
    *,
    reason: str,
    head: tuple[int, str] | None = None,
    checkpoint_id: str | None = None,
) -> Checkpoint:
    """Sign ``chain``'s head (``head`` if the caller holds it, else the stored one), keep the
    checkpoint and queue its delivery to the chain's own webhooks."""
    key = signing_key(tx)
    if head is None:
        head = present(repo.audit_head(tx.conn, chain), f"the head of chain {chain}")
    unsigned = Checkpoint(tenant=chain, seq=head[0], hash=head[1], at=tx.now, kid=key.kid)
    checkpoint = replace(unsigned, signature=sign(tx, unsigned.statement()))
    checkpoint_store.insert_checkpoint(
        tx.conn, checkpoint_id or new_id("checkpoint"), checkpoint, reason
    )
    notifications.plan_checkpoint(tx, chain, checkpoint.document())
    return checkpoint


def before_record(tx: Tx) -> None:
    """Take the audit key before the audit head (lock order)."""
    signing_key(tx)


def after_record(tx: Tx, change: Change, record: AuditRecord) -> None:
    """The transition's checkpoint and, for a decision, its receipt."""
    rule = receipt_rules.rule_for(change)
    if rule is not None:
        _issue_receipt(tx, rule, change, record)
    issue_checkpoint(tx, record.tenant_id, reason="decision", head=(record.seq, record.hash))


def _party(tx: Tx, principal: Principal) -> Party:
    user = tx.user(principal.id) if principal.kind is ActorKind.USER else None
    return Party(
        id=principal.id,
        kind=principal.kind.value,
        name=(user.display_name if user else principal.display) or principal.id,
        email=user.email if user else None,
        credential=principal.credential,
    )


def _issue_receipt(
    tx: Tx, rule: receipt_rules.Rule, change: Change, record: AuditRecord
) -> Receipt:
    request = change.request
    key = signing_key(tx)
    tenant = present(tx.tenant(request.tenant_id), "the request's tenant")
    requester = tx.user(request.requester_id)
    engineer = Party(
        id=request.requester_id,
        kind=ActorKind.USER.value,
        name=requester.display_name if requester else request.requester_id,
        email=requester.email if requester else None,
    )
    receipt_id = new_id("receipt")
    statement = receipt_rules.statement(
        receipt_id=receipt_id,
        rule=rule,
        change=change,
        record=record,
        tenant=tenant,
        engineer=engineer,
        decider=_party(tx, change.actor),
        kid=key.kid,
    )
    receipt = Receipt(
        id=receipt_id,
        request_id=request.id,
        tenant_id=request.tenant_id,
        kind=rule.kind.value,
        at=change.at,
        kid=key.kid,
        statement=statement,
        signature=sign(tx, statement),
    )
    receipt_store.insert_receipt(tx.conn, receipt)
    return receipt
