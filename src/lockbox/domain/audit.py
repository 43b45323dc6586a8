"""The tamper-evident audit log: records, canonical encoding and chain verification.

Each tenant has its own chain, and the provider has one more for its own
actions (:data:`PROVIDER_CHAIN`). A record's hash is SHA-256 over a canonical
JSON encoding of all its fields *including* its sequence number and the
previous record's hash, so changing, removing, reordering or inserting any
record breaks the chain at that point; the stored head (last sequence and
hash) catches removal of the newest records.

The stored head lives in the same database, so whoever controls the database
can rewrite both. Signed checkpoints (:mod:`lockbox.domain.checkpoints`) that a
customer keeps elsewhere close that gap: each is an :class:`Anchor` the chain
must still contain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, NamedTuple, Protocol

from lockbox.domain.instants import format_instant

GENESIS_HASH = "0" * 64
CHAIN_VERSION = 1

#: The chain of the provider's own actions (staff, their roles and credentials, tenants,
#: signing keys, provider-level webhooks). It can never be a tenant's id (those are
#: ``ten_`` and 26 characters), so it shares the tables, the lock and the verification
#: of every tenant chain.
PROVIDER_CHAIN = "provider"


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

    def content_hash(self) -> str:
        return compute_hash(self)

    def at_spelled(self) -> str:
        """The time as hashed and exported (an export keeps the text it was read with)."""
        return format_time(self.at)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "seq": self.seq,
            "at": self.at_spelled(),
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


def canonical_json(value: Any) -> bytes:
    """The one canonical encoding Lockbox hashes and signs (docs/audit.md spells it out).

    JSON with keys sorted by code point, no whitespace, non-ASCII characters as
    UTF-8 rather than escapes, and no NaN or infinity: one value has one encoding,
    so anyone can rebuild the exact bytes from the fields.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def canonical_bytes(record: AuditRecord) -> bytes:
    """The exact bytes that are hashed (everything except the hash itself)."""
    return _canonical_record(
        record.id,
        record.tenant_id,
        record.seq,
        record.at_spelled(),
        record.actor_id,
        record.actor_kind,
        record.operation,
        record.request_id,
        canonical_json(record.details).decode("utf-8"),
        record.prev_hash,
    )


def _canonical_record(
    id: str,
    tenant_id: str,
    seq: int,
    at: str,
    actor_id: str,
    actor_kind: str,
    operation: str,
    request_id: str | None,
    details: str,
    prev_hash: str,
) -> bytes:
    """:func:`canonical_json` of a record's body, spelled out field by field.

    Verification hashes every record of a chain, so this skips building a dict and
    sorting its keys: the keys below are already in code-point order and each text
    is escaped by the encoder :func:`canonical_json` itself uses. ``details`` is
    already canonical JSON. A property test holds the two spellings equal.
    """
    rid = "null" if request_id is None else encode_basestring(request_id)
    return (
        f'{{"actor_id":{encode_basestring(actor_id)},"actor_kind":{encode_basestring(actor_kind)}'
        f',"at":{encode_basestring(at)},"details":{details},"id":{encode_basestring(id)}'
        f',"operation":{encode_basestring(operation)},"prev_hash":{encode_basestring(prev_hash)}'
        f',"request_id":{rid},"seq":{seq},"tenant_id":{encode_basestring(tenant_id)}'
        f',"v":{CHAIN_VERSION}}}'
    ).encode()


def record_from_dict(data: dict[str, Any]) -> AuditRecord:
    """The record of one exported line (:meth:`AuditRecord.as_dict`); bad input raises
    :class:`ValueError`, so an export is checked without trusting its shape."""
    if set(data) != RECORD_FIELDS:
        raise ValueError(
            "not an audit record: its fields are not " + ", ".join(sorted(RECORD_FIELDS))
        )
    text_fields = ("id", "tenant_id", "actor_id", "actor_kind", "operation", "prev_hash", "hash")
    if not all(isinstance(data[k], str) for k in text_fields):
        raise ValueError("not an audit record: a text field is not text")
    if not isinstance(data["seq"], int) or isinstance(data["seq"], bool):
        raise ValueError("not an audit record: seq is not an integer")
    if data["request_id"] is not None and not isinstance(data["request_id"], str):
        raise ValueError("not an audit record: request_id is not text")
    if not isinstance(data["details"], dict) or not isinstance(data["at"], str):
        raise ValueError("not an audit record: details or at has the wrong type")
    return ExportedRecord(
        id=data["id"],
        tenant_id=data["tenant_id"],
        seq=data["seq"],
        at=_EPOCH,
        actor_id=data["actor_id"],
        actor_kind=data["actor_kind"],
        operation=data["operation"],
        request_id=data["request_id"],
        details=data["details"],
        prev_hash=data["prev_hash"],
        hash=data["hash"],
        at_text=data["at"],
    )


RECORD_FIELDS = frozenset(
    {
        "id",
        "tenant_id",
        "seq",
        "at",
        "actor_id",
        "actor_kind",
        "operation",
        "request_id",
        "details",
        "prev_hash",
        "hash",
    }
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ExportedRecord(AuditRecord):
    """A record read back from an export: its time is kept exactly as written, so the
    hash is computed over the text that was exported (a changed spelling is a change)."""

    at_text: str = ""

    def at_spelled(self) -> str:
        return self.at_text


def compute_hash(record: AuditRecord) -> str:
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


class StoredRecord(NamedTuple):
    """A record exactly as the database holds it, for verification only.

    Its details stay the stored text, which is the canonical encoding that was
    hashed when the record was appended: verifying a chain then hashes what is
    stored without decoding and re-encoding every record, and a stored text that
    was rewritten, even into an equivalent spelling, no longer matches its hash.
    (A named tuple: a million of them are built per verification, and a tuple is the
    cheapest immutable record to build.)
    """

    id: str
    tenant_id: str
    seq: int
    at: str
    actor_id: str
    actor_kind: str
    operation: str
    request_id: str | None
    details: str
    prev_hash: str
    hash: str

    def content_hash(self) -> str:
        return hashlib.sha256(
            _canonical_record(
                self.id,
                self.tenant_id,
                self.seq,
                self.at,
                self.actor_id,
                self.actor_kind,
                self.operation,
                self.request_id,
                self.details,
                self.prev_hash,
            )
        ).hexdigest()


class Chained(Protocol):
    """What :func:`verify_chain` reads of a record (an :class:`AuditRecord` or a
    :class:`StoredRecord`)."""

    @property
    def id(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...
    def content_hash(self) -> str: ...


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


@dataclass(frozen=True)
class Anchor:
    """A (sequence, hash) the chain must still contain, from a signed checkpoint someone
    holds outside the database; ``label`` is how a failure names it."""

    seq: int
    hash: str
    label: str


def anchor_mismatch(seq: int, label: str) -> str:
    """The failure of a record that is not the one a checkpoint signed (docs/audit.md)."""
    return f"record {seq} does not match {label} (the chain was rebuilt, or the database was rolled back)"


def anchor_beyond(count: int, seq: int, label: str) -> str:
    """The failure of a chain shorter than a checkpoint (docs/audit.md)."""
    return (
        f"the chain ends at {count} but {label} names record {seq} "
        "(records were removed from the end, or the database was rolled back)"
    )


def head_mismatch(count: int, label: str, head_seq: int) -> str:
    """The failure of a chain that does not end at its head (docs/audit.md)."""
    if count < head_seq:
        why = "records removed at the end"
    elif count > head_seq:
        why = "records added after the head"
    else:
        why = "the last record was replaced"
    return f"chain ends at {count} but {label} is {head_seq} ({why})"


def verify_chain(
    tenant_id: str,
    records: Iterable[Chained],
    *,
    head: tuple[int, str] | None,
    anchors: Sequence[Anchor] = (),
    head_label: str = "the recorded head",
) -> ChainReport:
    """Walk the records in sequence order and report the first broken one.

    ``head`` is the stored (sequence, hash) of the newest record; a chain that
    ends before it lost records at its end. ``anchors`` come from signed
    checkpoints: the record at each one's sequence must have its hash, and the
    chain must reach it. They are checked record by record as the walk goes, so
    the failure named is always the earliest one in sequence order.
    """
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    last_id: str | None = None
    pinned: dict[int, list[Anchor]] = {}
    for anchor in sorted(anchors, key=lambda a: a.seq):
        pinned.setdefault(anchor.seq, []).append(anchor)

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
        if record.content_hash() != record.hash:
            return fail("content does not match its hash (record changed)", record.seq, record.id)
        for anchor in pinned.get(record.seq, ()):
            if anchor.hash != record.hash:
                return fail(anchor_mismatch(record.seq, anchor.label), record.seq, record.id)
        prev_hash = record.hash
        expected_seq += 1
        count += 1
        last_id = record.id
    for anchor in pinned.get(0, ()):
        if anchor.hash != GENESIS_HASH:
            return fail(anchor_mismatch(0, anchor.label), 0, None)
    beyond = [a for a in anchors if a.seq > count]
    if beyond:
        first = min(beyond, key=lambda a: a.seq)
        return fail(anchor_beyond(count, first.seq, first.label), count, last_id)
    if head is not None:
        head_seq, head_hash = head
        if head_seq != count or head_hash != prev_hash:
            return fail(head_mismatch(count, head_label, head_seq), count, last_id)
    elif count:
        return fail("records exist but the chain head is missing", count, last_id)
    return ChainReport(tenant_id, True, count, count, prev_hash)
