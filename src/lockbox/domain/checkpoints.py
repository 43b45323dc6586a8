"""Signed checkpoints: a chain's head at a moment, signed by Lockbox (like a CT tree head).

The stored chain head proves nothing to someone who does not trust the
database it sits in. A checkpoint is a statement "(chain, sequence, hash) at
time T", signed with an audit key whose public half is published. Whoever holds
one can later prove, without trusting the provider, that the chain still
contains that record with that hash: records removed from the end, a chain
recomputed with new hashes, or a database rolled back to an earlier copy all
fail against it. Two validly signed checkpoints of one chain that disagree
about the same record (a fork) are evidence of tampering on their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lockbox.domain.audit import Anchor
from lockbox.domain.instants import format_instant
from lockbox.domain.signing import (
    CHECKPOINT,
    STATEMENT_VERSION,
    TYPES,
    PublicKey,
    SignatureProblem,
    envelope,
    open_envelope,
    parse_instant,
    unb64,
)

_HASH = re.compile(r"^[0-9a-f]{64}$")
#: Why a checkpoint was issued (kept with it; not signed).
REASONS = ("decision", "hourly", "daily", "export", "manual")
STATEMENT_FIELDS = frozenset({"v", "type", "tenant", "seq", "hash", "at", "kid"})


@dataclass(frozen=True)
class Checkpoint:
    tenant: str  # the chain: a tenant's id, or ``provider``
    seq: int
    hash: str
    at: datetime
    kid: str
    signature: bytes = b""

    def statement(self) -> dict[str, Any]:
        """What is signed (its canonical bytes): docs/audit.md, "Checkpoints"."""
        return statement(self.tenant, self.seq, self.hash, self.at, self.kid)

    def document(self) -> dict[str, Any]:
        """The file a customer keeps."""
        return envelope(CHECKPOINT, self.statement(), self.signature)

    def label(self) -> str:
        """How a failure names this checkpoint (identical in :mod:`lockbox.verify`)."""
        return f"the checkpoint {self.seq}:{self.hash[:16]} signed at {format_instant(self.at)}"

    def anchor(self) -> Anchor:
        return Anchor(self.seq, self.hash, self.label())


def statement(tenant: str, seq: int, head_hash: str, at: datetime, kid: str) -> dict[str, Any]:
    return {
        "v": STATEMENT_VERSION,
        "type": TYPES[CHECKPOINT],
        "tenant": tenant,
        "seq": seq,
        "hash": head_hash,
        "at": format_instant(at),
        "kid": kid,
    }


def from_document(doc: object, keys: Mapping[str, PublicKey]) -> Checkpoint:
    """A checkpoint whose signature, key and fields all check out; else :class:`SignatureProblem`."""
    found = open_envelope(doc, CHECKPOINT, keys)
    if set(found) != STATEMENT_FIELDS:
        raise SignatureProblem("is not a checkpoint (its fields are not " + _fields() + ")")
    seq, head_hash, tenant = found["seq"], found["hash"], found["tenant"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise SignatureProblem("seq is not a sequence number")
    if not isinstance(head_hash, str) or not _HASH.match(head_hash):
        raise SignatureProblem("hash is not 64 lower-case hexadecimal digits")
    if not isinstance(tenant, str) or not tenant:
        raise SignatureProblem("tenant is not a chain id")
    if not isinstance(doc, dict):  # open_envelope checked it; this narrows the type
        raise SignatureProblem("is not a JSON object")
    return Checkpoint(
        tenant=tenant,
        seq=seq,
        hash=head_hash,
        at=parse_instant(found["at"]),
        kid=found["kid"],
        signature=unb64(doc["signature"]),
    )


def _fields() -> str:
    return ", ".join(sorted(STATEMENT_FIELDS))


@dataclass(frozen=True)
class Fork:
    """Two validly signed checkpoints of one chain that name different hashes for one record."""

    first: Checkpoint
    second: Checkpoint

    @property
    def seq(self) -> int:
        return self.first.seq

    def problem(self) -> str:
        """The message (identical in :mod:`lockbox.verify`)."""
        a, b = self.first, self.second
        return (
            f"fork: two validly signed checkpoints name different hashes for record {a.seq} "
            f"({a.hash[:16]} signed at {format_instant(a.at)}, {b.hash[:16]} signed at "
            f"{format_instant(b.at)}): evidence of tampering"
        )


def forks(checkpoints: Iterable[Checkpoint]) -> list[Fork]:
    """One fork per disagreeing record, lowest sequence first: the earliest-signed checkpoint
    of the record and the earliest-signed one that names another hash."""
    groups: dict[tuple[str, int], list[Checkpoint]] = {}
    for cp in checkpoints:
        groups.setdefault((cp.tenant, cp.seq), []).append(cp)
    found = []
    for key in sorted(groups):
        ordered = sorted(groups[key], key=lambda c: (c.at, c.hash))
        other = next((c for c in ordered if c.hash != ordered[0].hash), None)
        if other is not None:
            found.append(Fork(ordered[0], other))
    return found


#: The worker signs a growing chain at least this often, and sends its daily digest.
HOURLY = timedelta(hours=1)
DAILY = timedelta(days=1)


def hourly_due(
    head_seq: int, last_seq: int | None, last_at: datetime | None, now: datetime
) -> bool:
    """A chain that grew since its last checkpoint gets one once that is an hour old (or at
    once, if it never had one): no record stays unsigned for much more than an hour."""
    if head_seq <= 0 or (last_seq is not None and head_seq <= last_seq):
        return False
    return last_at is None or now - last_at >= HOURLY


def daily_due(last_daily_at: datetime | None, first_at: datetime | None, now: datetime) -> bool:
    """A day after the last digest (or after the chain's first checkpoint, for the first)."""
    since = last_daily_at or first_at
    return since is not None and now - since >= DAILY
