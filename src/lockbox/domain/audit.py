"""The tamper-evident audit log: records, canonical encoding and chain verification.

Each tenant has its own chain. A record's hash is SHA-256 over a canonical
JSON encoding of all its fields *including* its sequence number and the
previous record's hash, so changing, removing, reordering or inserting any
record breaks the chain at that point; the stored head (last sequence and
hash) catches removal of the newest records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lockbox.domain.instants import format_instant

GENESIS_HASH = "0" * 64
CHAIN_VERSION = 1


@dataclass(frozen=True)
class AuditRecord:
    id: str
    tenant_id: str
    seq: int
    at: datetime
    actor_id: str
    actor_kind: str
    operation: str
    request_id: str | None
    details: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS_HASH
    hash: str = ""

    def hashed(self) -> AuditRecord:
        """A copy with :attr:`hash` computed from the other fields."""
        return _replace_hash(self, compute_hash(self))

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "seq": self.seq,
            "at": format_time(self.at),
            "actor_id": self.actor_id,
            "actor_kind": self.actor_kind,
            "operation": self.operation,
            "request_id": self.request_id,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def _replace_hash(record: AuditRecord, value: str) -> AuditRecord:
    from dataclasses import replace

    return replace(record, hash=value)


#: Kept under its old name: the canonical bytes of every record depend on this spelling.
format_time = format_instant


def canonical_bytes(record: AuditRecord) -> bytes:
    """The exact bytes that are hashed (everything except the hash itself)."""
    body = record.as_dict()
    del body["hash"]
    body["v"] = CHAIN_VERSION
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def compute_hash(record: AuditRecord) -> str:
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    tenant_id: str
    ok: bool
    records: int
    head_seq: int
    head_hash: str
    problem: str | None = None
    broken_seq: int | None = None
    broken_id: str | None = None

    def summary(self) -> str:
        if self.ok:
            return f"OK   {self.tenant_id}: {self.records} records, head {self.head_seq}:{self.head_hash[:16]}"
        return f"FAIL {self.tenant_id}: record {self.broken_seq} ({self.broken_id}): {self.problem}"


def verify_chain(
    tenant_id: str,
    records: Iterable[AuditRecord],
    *,
    head: tuple[int, str] | None,
) -> ChainReport:
    """Walk the records in sequence order and report the first broken one.

    ``head`` is the stored (sequence, hash) of the newest record; a chain that
    ends before it lost records at its end.
    """
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    last_id: str | None = None

    def fail(problem: str, seq: int | None, rid: str | None) -> ChainReport:
        return ChainReport(tenant_id, False, count, expected_seq - 1, prev_hash, problem, seq, rid)

    for record in records:
        if record.tenant_id != tenant_id:
            return fail("record belongs to another tenant", record.seq, record.id)
        if record.seq != expected_seq:
            what = (
                "missing or reordered" if record.seq > expected_seq else "duplicated or reordered"
            )
            return fail(
                f"expected sequence {expected_seq}, found {record.seq} ({what} records)",
                record.seq,
                record.id,
            )
        if record.prev_hash != prev_hash:
            return fail(
                "previous-hash link does not match the record before it", record.seq, record.id
            )
        if compute_hash(record) != record.hash:
            return fail("content does not match its hash (record changed)", record.seq, record.id)
        prev_hash = record.hash
        expected_seq += 1
        count += 1
        last_id = record.id
    if head is not None:
        head_seq, head_hash = head
        if head_seq != count or head_hash != prev_hash:
            return fail(
                f"chain ends at {count} but the recorded head is {head_seq} (records removed at the end)",
                count,
                last_id,
            )
    elif count:
        return fail("records exist but the chain head is missing", count, last_id)
    return ChainReport(tenant_id, True, count, count, prev_hash)
