"""Decision receipts as use cases: list a request's, fetch one, verify a receipt file.

Receipts are issued inside the decision's own transaction
(:mod:`lockbox.service.signing`). Whoever may see a request may see its
receipts (the engineer who asked, support managers, the tenant's people); a
receipt of a request one may not see answers "not found", like a missing one.
"""

from __future__ import annotations

from lockbox.domain import receipts as rules
from lockbox.domain.errors import NotFound, ValidationError
from lockbox.domain.ids import validate_id
from lockbox.domain.receipts import Receipt
from lockbox.domain.roles import Principal
from lockbox.domain.signing import SignatureProblem
from lockbox.service.app import Lockbox
from lockbox.service.checkpoints import public_keys
from lockbox.service.requests import load_request
from lockbox.store import receipts as store


def for_request(app: Lockbox, actor: Principal, request_id: str) -> list[Receipt]:
    """A request's receipts, oldest first."""
    with app.read() as tx:
        request = load_request(tx, actor, request_id)
        return store.for_request(tx.conn, request.id)


def get_receipt(app: Lockbox, actor: Principal, receipt_id: str) -> Receipt:
    validate_id(receipt_id, "receipt", "receipt_id")
    with app.read() as tx:
        found = store.get(tx.conn, receipt_id)
        if found is None:
            raise NotFound("receipt not found")
        try:
            load_request(tx, actor, found.request_id)
        except NotFound:
            raise NotFound("receipt not found") from None  # as if it did not exist
        return found


def verify_document(app: Lockbox, document: object) -> Receipt:
    """Check a receipt file against the published audit keys of this Lockbox; a receipt that
    does not verify raises :class:`ValidationError` (field ``receipt``) saying why. No
    permission is needed: the keys are public, and the caller holds the receipt."""
    with app.read() as tx:
        keys = public_keys(tx)
    try:
        return rules.from_document(document, keys)
    except SignatureProblem as exc:
        raise ValidationError("receipt", f"does not verify: {exc}") from None
