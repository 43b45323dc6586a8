"""Building blocks of the trust tests (issue #12): checkpoints held, tampering as an attacker
with SQL access would do it, and forged statements signed with the service's own key."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, update

from lockbox.domain.audit import GENESIS_HASH, AuditRecord
from lockbox.domain.checkpoints import Checkpoint
from lockbox.domain.roles import Principal
from lockbox.service import checkpoints, signing
from lockbox.service.app import Lockbox
from lockbox.store import repositories as repo
from lockbox.store import tables as t

ev, heads, cps = t.audit_events, t.audit_heads, t.audit_checkpoints
OPERATOR = Principal.operator()


def held_checkpoint(app: Lockbox, chain: str) -> dict[str, Any]:
    """The checkpoint a customer downloaded and keeps (the chain's latest)."""
    found = checkpoints.latest(app, OPERATOR, chain)
    assert found is not None, f"{chain} has no checkpoint"
    return json.loads(json.dumps(found.checkpoint.document()))  # a copy, as a file would be


def chain_records(app: Lockbox, chain: str) -> list[AuditRecord]:
    with app.read() as tx:
        return list(repo.iter_audit(tx.conn, chain))


def tamper(app: Lockbox, action: Callable[[Connection], object]) -> None:
    with app.db.engine.begin() as conn:
        action(conn)


def set_head(conn: Connection, chain: str, seq: int, head_hash: str) -> None:
    conn.execute(update(heads).where(heads.c.tenant_id == chain).values(seq=seq, hash=head_hash))


def cut_tail(app: Lockbox, chain: str, keep: int) -> None:
    """Delete every record after ``keep`` and rewrite the stored head to match: the stored
    head can no longer tell (what a database administrator can do)."""
    records = chain_records(app, chain)
    last = records[keep - 1].hash if keep else GENESIS_HASH

    def cut(conn: Connection) -> None:
        conn.execute(delete(ev).where(ev.c.tenant_id == chain, ev.c.seq > keep))
        set_head(conn, chain, keep, last)

    tamper(app, cut)


def rebuild(app: Lockbox, chain: str, change: Callable[[AuditRecord], AuditRecord]) -> None:
    """Recompute the whole chain with new hashes after ``change`` (a consistent forgery)."""
    records = chain_records(app, chain)

    def rewrite(conn: Connection) -> None:
        prev = GENESIS_HASH
        for record in records:
            forged = replace(change(record), prev_hash=prev).hashed()
            conn.execute(
                update(ev)
                .where(ev.c.id == record.id)
                .values(
                    details=json.dumps(forged.details, sort_keys=True, separators=(",", ":")),
                    prev_hash=forged.prev_hash,
                    hash=forged.hash,
                )
            )
            prev = forged.hash
        set_head(conn, chain, len(records), prev)

    tamper(app, rewrite)


def forged_checkpoint(app: Lockbox, chain: str, seq: int, head_hash: str) -> dict[str, Any]:
    """A checkpoint of any (seq, hash), validly signed with Lockbox's own current audit key:
    what a compromised service could produce. Two that disagree are a fork."""
    with app.tx() as tx:
        key = signing.signing_key(tx)
        unsigned = Checkpoint(tenant=chain, seq=seq, hash=head_hash, at=tx.now, kid=key.kid)
        return replace(unsigned, signature=signing.sign(tx, unsigned.statement())).document()


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
