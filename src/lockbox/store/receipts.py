"""Receipt rows: the signed statement exactly as signed (its canonical bytes) and the signature."""

from __future__ import annotations

import json

from sqlalchemy import Connection, insert, select
from sqlalchemy.engine import RowMapping

from lockbox.domain.audit import canonical_json
from lockbox.domain.receipts import Receipt
from lockbox.domain.signing import b64, unb64
from lockbox.store import tables as t

_R = t.decision_receipts.c


def _row(row: RowMapping) -> Receipt:
    return Receipt(
        id=row["id"],
        request_id=row["request_id"],
        tenant_id=row["tenant_id"],
        kind=row["kind"],
        at=row["at"],
        kid=row["kid"],
        statement=json.loads(row["payload"]),
        signature=unb64(row["signature"]),
    )


def insert_receipt(conn: Connection, receipt: Receipt) -> None:
    conn.execute(
        insert(t.decision_receipts).values(
            id=receipt.id,
            request_id=receipt.request_id,
            tenant_id=receipt.tenant_id,
            kind=receipt.kind,
            at=receipt.at,
            audit_seq=int(receipt.statement["audit"]["seq"]),
            kid=receipt.kid,
            payload=canonical_json(receipt.statement).decode("utf-8"),
            signature=b64(receipt.signature),
        )
    )


def for_request(conn: Connection, request_id: str) -> list[Receipt]:
    """In the order of the decisions (their records' order in the chain)."""
    rows = conn.execute(
        select(t.decision_receipts).where(_R.request_id == request_id).order_by(_R.audit_seq, _R.id)
    ).mappings()
    return [_row(r) for r in rows]


def get(conn: Connection, receipt_id: str) -> Receipt | None:
    row = conn.execute(select(t.decision_receipts).where(_R.id == receipt_id)).mappings().first()
    return _row(row) if row else None
