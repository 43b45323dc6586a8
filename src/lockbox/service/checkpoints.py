"""Checkpoints as use cases: read them, issue one, verify a chain against the ones a customer
holds, the signed export, the published audit keys, and the worker's hourly and daily passes.

Every decision already gets its checkpoint in its own transaction
(:mod:`lockbox.service.signing`); this module covers everything else. Reading
or verifying a chain's checkpoints needs ``audit.verify`` on the tenant (its
admins and auditors, the provider admin), or ``audit.provider`` for the
provider's own chain.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lockbox.access.keys import AUDIT, audit_keys_document
from lockbox.domain import checkpoints as rules
from lockbox.domain.audit import (
    PROVIDER_CHAIN,
    AuditRecord,
    ChainReport,
    record_from_dict,
    verify_chain,
)
from lockbox.domain.checkpoints import Checkpoint
from lockbox.domain.errors import ValidationError
from lockbox.domain.ids import new_id, validate_id
from lockbox.domain.instants import format_instant
from lockbox.domain.permissions import Intent
from lockbox.domain.roles import Principal, Role
from lockbox.domain.signing import PublicKey, SignatureProblem
from lockbox.service import notifications, signing
from lockbox.service.app import Lockbox, Tx
from lockbox.service.audit import MAX_SEQ, resolve_chain
from lockbox.store import checkpoints as store
from lockbox.store import keys as keystore
from lockbox.store import repositories as repo

log = logging.getLogger("lockbox.checkpoints")
MAX_PAGE = 200
MAX_HELD = 1000  # checkpoints one verification takes
PROVIDER_NAME = "the provider's own actions"


# -- keys -------------------------------------------------------------------------------


def public_keys(tx: Tx) -> dict[str, PublicKey]:
    """Every audit key, current and retired, as a verifier sees it."""
    return {
        k.kid: PublicKey(k.kid, k.public_raw(), k.created_at, k.retired_at)
        for k in keystore.all_keys(tx.conn, AUDIT)
    }


def ensure_audit_key(app: Lockbox) -> str:
    """Make sure an audit key exists (so the published document is never empty)."""
    with app.read() as tx:
        key = keystore.current_key(tx.conn, AUDIT)
    if key is not None:
        return key.kid
    with app.tx() as tx:
        return signing.signing_key(tx).kid


def keys_document(app: Lockbox) -> dict[str, Any]:
    """The published audit keys (``/.well-known/lockbox-audit-keys.json``): no secret, no
    permission needed, every key ever used, with its validity period."""
    ensure_audit_key(app)
    with app.read() as tx:
        return audit_keys_document(keystore.all_keys(tx.conn, AUDIT))


# -- reading and issuing ---------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointView:
    id: str
    reason: str
    checkpoint: Checkpoint

    def as_dict(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "id": self.id,
            "reason": self.reason,
            "tenant_id": cp.tenant,
            "seq": cp.seq,
            "hash": cp.hash,
            "at": format_instant(cp.at),
            "kid": cp.kid,
            "document": cp.document(),
        }


def _view(found: store.StoredCheckpoint) -> CheckpointView:
    return CheckpointView(found.id, found.reason, found.checkpoint)


def latest(app: Lockbox, actor: Principal, tenant: str) -> CheckpointView | None:
    with app.read() as tx:
        chain = resolve_chain(tx, actor, tenant, Intent.AUDIT_VERIFY)
        found = store.latest(tx.conn, chain)
    return _view(found) if found else None


def history(
    app: Lockbox, actor: Principal, tenant: str, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[CheckpointView], str | None]:
    """Newest first, paged: ``cursor`` is the ``next_cursor`` of the page before.

    A cursor is ``<seq>.<checkpoint id>``, the last checkpoint of that page: any such
    pair names a position in the history, so any well-formed cursor can be read.
    """
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationError("limit", f"must be from 1 to {MAX_PAGE}")
    before = _position(cursor) if cursor else None
    with app.read() as tx:
        chain = resolve_chain(tx, actor, tenant, Intent.AUDIT_VERIFY)
        rows = store.history(tx.conn, chain, before=before, limit=limit)
    last = rows[-1] if len(rows) == limit else None
    next_cursor = f"{last.checkpoint.seq}.{last.id}" if last else None
    return [_view(r) for r in rows], next_cursor


def _position(cursor: str) -> tuple[int, str]:
    seq_text, _dot, row_id = cursor.partition(".")
    if not (seq_text.isascii() and seq_text.isdigit()) or len(seq_text) > 10:
        raise ValidationError("cursor", "is not a cursor returned by this service")
    validate_id(row_id, "checkpoint", "cursor")
    return min(int(seq_text), MAX_SEQ + 1), row_id


def issue(app: Lockbox, actor: Principal, tenant: str, *, reason: str = "manual") -> CheckpointView:
    """Sign the chain's head now (anyone who may verify the chain may ask for one)."""
    with app.tx() as tx:
        chain = resolve_chain(tx, actor, tenant, Intent.AUDIT_VERIFY)
        return _issue(tx, chain, reason)


def _issue(tx: Tx, chain: str, reason: str) -> CheckpointView:
    signing.signing_key(tx)  # the audit key's lock before the head's (lock order)
    head = store.lock_head(tx.conn, chain)
    checkpoint_id = new_id("checkpoint")
    checkpoint = signing.issue_checkpoint(
        tx, chain, reason=reason, head=head, checkpoint_id=checkpoint_id
    )
    return CheckpointView(checkpoint_id, reason, checkpoint)


# -- verification ------------------------------------------------------------------------


def open_held(
    documents: object, keys: Mapping[str, PublicKey], chain: str | None, field: str = "checkpoints"
) -> list[Checkpoint]:
    """The checkpoints a customer holds, each checked (signature, key, chain); a bad one is
    refused with a :class:`ValidationError` naming it."""
    if not isinstance(documents, list) or not documents:
        raise ValidationError(field, "give at least one checkpoint")
    if len(documents) > MAX_HELD:
        raise ValidationError(field, f"at most {MAX_HELD} checkpoints at a time")
    held = []
    for index, doc in enumerate(documents):
        try:
            cp = rules.from_document(doc, keys)
        except SignatureProblem as exc:
            raise ValidationError(f"{field}[{index}]", f"refused: {exc}") from None
        if chain is not None and cp.tenant != chain:
            raise ValidationError(
                f"{field}[{index}]", f"refused: it is a checkpoint of {cp.tenant}, not of {chain}"
            )
        held.append(cp)
    return held


def verify_with_checkpoints(
    app: Lockbox, actor: Principal, tenant: str, documents: object
) -> ChainReport:
    """Prove the chain as stored now contains every held checkpoint's record with its hash.

    Fails, naming the first inconsistency in sequence order, when records were
    changed, removed (from the end too), reordered or inserted, when the chain
    was rebuilt with new hashes, or when the database went back to an earlier
    copy. Two validly signed checkpoints that disagree about one record (among
    those held, or a held one and one Lockbox kept) are reported as a fork.
    """
    with app.read() as tx:
        chain = resolve_chain(tx, actor, tenant, Intent.AUDIT_VERIFY)
        keys = public_keys(tx)
        held = open_held(documents, keys, chain)
        report = verify_chain(
            chain,
            repo.iter_stored_audit(tx.conn, chain),
            head=repo.audit_head(tx.conn, chain),
            anchors=[cp.anchor() for cp in held],
        )
        kept = store.at_sequences(tx.conn, chain, sorted({cp.seq for cp in held}))
    if not report.ok:
        return report
    found = rules.forks([*held, *[cp for cp in kept if _validly_signed(cp, keys)]])
    if found:
        fork = found[0]
        return ChainReport(
            chain,
            False,
            report.records,
            report.head_seq,
            report.head_hash,
            fork.problem(),
            fork.seq,
            None,
        )
    return report


def _validly_signed(cp: Checkpoint, keys: Mapping[str, PublicKey]) -> bool:
    try:
        rules.from_document(cp.document(), keys)
    except SignatureProblem:
        return False
    return True


def verify_export(
    lines: Iterable[str],
    documents: list[Any],
    keys: Mapping[str, PublicKey],
    *,
    tenant: str | None = None,
) -> ChainReport:
    """Verify an export (JSON Lines) offline, against held checkpoints and, if the export ends
    with one, its signed head (``lockbox audit export --signed``). Pure: no database."""
    records: list[AuditRecord] = []
    head: Checkpoint | None = None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if head is not None:
            raise ValidationError("export", f"line {number} follows the signed head")
        try:
            data = json.loads(line)
        except ValueError:
            raise ValidationError("export", f"line {number} is not JSON") from None
        if isinstance(data, dict) and set(data) == {"signed_head"}:
            try:
                head = rules.from_document(data["signed_head"], keys)
            except SignatureProblem as exc:
                raise ValidationError(
                    "export", f"line {number}: signed head refused: {exc}"
                ) from None
            continue
        if not isinstance(data, dict):
            raise ValidationError("export", f"line {number}: not an audit record: not an object")
        try:
            records.append(record_from_dict(data))
        except ValueError as exc:
            raise ValidationError("export", f"line {number}: {exc}") from None
    chain = tenant or (head.tenant if head else None) or (records[0].tenant_id if records else None)
    if chain is None:
        raise ValidationError("export", "is empty: no records and no signed head")
    if head is not None and head.tenant != chain:
        raise ValidationError("export", f"its signed head is of {head.tenant}, not of {chain}")
    held = open_held(documents, keys, chain) if documents else []
    # Without a signed head the export's own last record stands in for it: only the held
    # checkpoints can then show that records are missing from the end.
    if head is not None:
        stored_head: tuple[int, str] | None = (head.seq, head.hash)
    else:
        stored_head = (records[-1].seq, records[-1].hash) if records else None
    report = verify_chain(
        chain,
        records,
        head=stored_head,
        anchors=[c.anchor() for c in held],
        head_label="the signed head",
    )
    if not report.ok:
        return report
    found = rules.forks([*held, *([head] if head else [])])
    if found:
        fork = found[0]
        return ChainReport(
            chain,
            False,
            report.records,
            report.head_seq,
            report.head_hash,
            fork.problem(),
            fork.seq,
        )
    return report


def signed_export(app: Lockbox, actor: Principal, tenant: str) -> Iterator[str]:
    """The whole log as JSON Lines, ending with a checkpoint of its last record signed now
    (``{"signed_head": …}``): the export proves it is complete as of that moment.

    Records are streamed first; the head is then read and signed, and any records
    committed meanwhile, up to that head, are added, so a faithful export always
    ends exactly at its signed head. Records beyond the stored head (inserted
    behind Lockbox's back) stay in the export, where they contradict the head.
    """
    with app.read() as tx:
        chain = resolve_chain(tx, actor, tenant, Intent.AUDIT_READ)

    def line(record: AuditRecord) -> str:
        return json.dumps(record.as_dict(), ensure_ascii=False, sort_keys=True) + "\n"

    def generate() -> Iterator[str]:
        last = 0
        with app.read() as tx:
            for record in repo.iter_audit(tx.conn, chain):
                last = max(last, record.seq)
                yield line(record)
        with app.tx() as tx:
            view = _issue(tx, chain, "export")
            head_seq = view.checkpoint.seq
            tail: list[AuditRecord] = []
            if head_seq > last:
                flt = repo.AuditFilter(tenant_id=chain, after_seq=last)
                tail = [
                    r for r in repo.query_audit(tx.conn, flt, head_seq - last) if r.seq <= head_seq
                ]
        for record in tail:
            yield line(record)
        yield json.dumps({"signed_head": view.checkpoint.document()}, ensure_ascii=False) + "\n"

    return generate()


# -- the worker's passes -------------------------------------------------------------------


@dataclass
class PassResult:
    hourly: int = 0
    daily: int = 0
    digests: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"checkpoints": self.hourly, "daily": self.daily, "digests": self.digests}


def periodic(app: Lockbox) -> PassResult:
    """Sign every chain that grew and whose last checkpoint is an hour old, and send each
    chain's daily digest. Safe with several workers: each chain is decided again under
    its head's lock before anything is signed."""
    result = PassResult()
    with app.read() as tx:
        states = store.chain_states(tx.conn)
        now = tx.now
    for state in states:
        try:
            if rules.hourly_due(state.head_seq, state.last_seq, state.last_at, now):
                result.hourly += _hourly(app, state.chain)
            if rules.daily_due(state.last_daily_at, state.first_at, now):
                sent = _daily(app, state.chain)
                if sent is not None:
                    result.daily += 1
                    result.digests += sent
        except Exception:  # one chain's failure must not stop the others
            log.exception("checkpoints.pass_failed", extra={"fields": {"chain": state.chain}})
    return result


def _hourly(app: Lockbox, chain: str) -> int:
    with app.tx() as tx:
        signing.signing_key(tx)
        head = store.lock_head(tx.conn, chain)
        last = store.latest(tx.conn, chain)
        last_seq = last.checkpoint.seq if last else None
        last_at = store.newest_at(tx.conn, chain)
        if not rules.hourly_due(head[0], last_seq, last_at, tx.now):
            return 0  # another worker signed it meanwhile
        signing.issue_checkpoint(tx, chain, reason="hourly", head=head)
        return 1


def _daily(app: Lockbox, chain: str) -> int | None:
    """Issue the daily checkpoint and mail it; None if another worker did already."""
    with app.tx() as tx:
        signing.signing_key(tx)
        head = store.lock_head(tx.conn, chain)
        last_daily, first = store.daily_marks(tx.conn, chain)
        if not rules.daily_due(last_daily, first, tx.now):
            return None
        checkpoint = signing.issue_checkpoint(tx, chain, reason="daily", head=head)
        if chain == PROVIDER_CHAIN:
            name = PROVIDER_NAME
            to = repo.emails_with_roles(tx.conn, [Role.PROVIDER_ADMIN], tenant_id=None)
        else:
            tenant = tx.tenant(chain)
            name = tenant.name if tenant else chain
            to = repo.emails_with_roles(tx.conn, [Role.AUDITOR], tenant_id=chain)
        notifications.plan_digest(tx, chain, name, checkpoint.statement(), to)
        return len(set(to))
