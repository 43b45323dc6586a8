"""An independent verifier of Lockbox's audit evidence: exports, checkpoints and receipts.

This module is meant to be read, whole, by an auditor who does not trust the
provider that runs Lockbox. It depends on nothing but the Python standard
library and the ``cryptography`` package (for Ed25519): it does not import any
other part of Lockbox, and it re-implements the rules of docs/audit.md from
that text, so a mistake in Lockbox's own verification does not repeat here.

What it proves, with the audit keys the provider publishes
(``/.well-known/lockbox-audit-keys.json``, saved to a file):

* ``export``: an export of one chain (JSON Lines, ``lockbox audit export``) is an
  unbroken hash chain from its first record; it contains the record of every
  checkpoint you hold, with that checkpoint's hash, so nothing was removed from
  its end, rebuilt or rolled back since; it ends exactly at its signed head if it
  has one (``lockbox audit export --signed``); and each receipt you hold names a
  record the export contains.
* ``checkpoints``: each checkpoint is validly signed, and no two of them disagree
  about one record (a *fork*: evidence of tampering).
* ``receipt``: each receipt is validly signed and unchanged.

Usage::

    python -m lockbox.verify export audit.jsonl --keys keys.json [--checkpoint cp.json ...]
                                [--receipt r.json ...] [--tenant TENANT_ID] [--json]
    python -m lockbox.verify checkpoints cp1.json cp2.json ... --keys keys.json [--tenant ID]
    python -m lockbox.verify receipt r.json ... --keys keys.json

Exit status: 0 everything verified, 1 something did not verify (the output says
what, naming the first broken record), 2 an input could not be used at all (a
missing file, a key file that is not one).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS_HASH = "0" * 64
CHAIN_VERSION = 1
STATEMENT_VERSION = 1
ALG = "Ed25519"
KEYS_TYPE = "lockbox.audit-keys"
TYPES = {"checkpoint": "lockbox.checkpoint", "receipt": "lockbox.receipt"}
RECORD_FIELDS = (
    "actor_id",
    "actor_kind",
    "at",
    "details",
    "hash",
    "id",
    "operation",
    "prev_hash",
    "request_id",
    "seq",
    "tenant_id",
)
CHECKPOINT_FIELDS = ("at", "hash", "kid", "seq", "tenant", "type", "v")
RECEIPT_FIELDS = (
    "at",
    "audit",
    "decision",
    "engineer",
    "id",
    "kid",
    "request",
    "tenant",
    "type",
    "v",
)
HEX64 = frozenset("0123456789abcdef")


class NotVerified(Exception):
    """Evidence that does not verify: the message says exactly why (docs/audit.md)."""


class Unusable(Exception):
    """Input that cannot be used at all (exit status 2)."""


# -- encoding ----------------------------------------------------------------------------------


def canonical(value: Any) -> bytes:
    """The canonical bytes: sorted keys, no spaces, UTF-8, no NaN (docs/audit.md, "Encoding")."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the record without its ``hash``, with ``"v": 1`` added."""
    body = {k: v for k, v in record.items() if k != "hash"}
    body["v"] = CHAIN_VERSION
    return hashlib.sha256(canonical(body)).hexdigest()


def instant(value: object) -> datetime:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` exactly (UTC, always microseconds)."""
    if not isinstance(value, str) or len(value) != 27 or not value.endswith("Z"):
        raise ValueError("not an instant")
    parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    if parsed.strftime("%Y-%m-%dT%H:%M:%S.%fZ") != value:
        raise ValueError("not an instant")
    return parsed


def b64decode(value: object) -> bytes:
    """Standard base64 with padding, strictly."""
    if not isinstance(value, str):
        raise ValueError("not text")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("not base64") from None


def is_hash(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= HEX64


# -- keys ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    kid: str
    public: Ed25519PublicKey
    valid_from: datetime
    valid_until: datetime | None


def load_keys(doc: object) -> dict[str, Key]:
    """The published audit keys document (``/.well-known/lockbox-audit-keys.json``)."""
    if not isinstance(doc, dict) or doc.get("type") != KEYS_TYPE or doc.get("v") != 1:
        raise Unusable(f"the key file is not a {KEYS_TYPE} document (v 1)")
    entries = doc.get("keys")
    if not isinstance(entries, list):
        raise Unusable("the key file has no list of keys")
    keys: dict[str, Key] = {}
    for index, entry in enumerate(entries):
        where = f"the key file's keys[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            raise Unusable(f"{where} has no kid")
        if entry.get("alg") != ALG:
            raise Unusable(f"{where} is not an {ALG} key")
        try:
            public = serialization.load_pem_public_key(str(entry["public_key_pem"]).encode())
        except (KeyError, ValueError):
            raise Unusable(f"{where} has no readable public_key_pem") from None
        if not isinstance(public, Ed25519PublicKey):
            raise Unusable(f"{where} is not an {ALG} key")
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        x = entry.get("x")
        if x is not None and base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != x:
            raise Unusable(f"{where}: x and public_key_pem are different keys")
        try:
            valid_from = instant(entry.get("valid_from"))
            until = entry.get("valid_until")
            valid_until = None if until is None else instant(until)
        except ValueError:
            raise Unusable(f"{where} has a malformed validity period") from None
        keys[entry["kid"]] = Key(entry["kid"], public, valid_from, valid_until)
    return keys


# -- signed statements --------------------------------------------------------------------------


def open_signed(doc: object, kind: str, keys: dict[str, Key]) -> dict[str, Any]:
    """The statement of a signed document (a checkpoint or receipt file), once every rule of
    docs/audit.md, "Signed documents", holds; else :class:`NotVerified`."""
    if not isinstance(doc, dict):
        raise NotVerified("is not a JSON object")
    extra = sorted(set(doc) - {"alg", "kid", "payload", "signature", kind})
    if extra:
        raise NotVerified(f"has unexpected fields: {', '.join(extra)}")
    if doc.get("alg") != ALG:
        raise NotVerified(f"alg must be {ALG}")
    try:
        payload = b64decode(doc.get("payload"))
    except ValueError:
        raise NotVerified("payload is not base64") from None
    try:
        signature = b64decode(doc.get("signature"))
    except ValueError:
        signature = b""
    if len(signature) != 64:
        raise NotVerified("signature is not base64 of 64 bytes")
    try:
        statement = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise NotVerified("payload is not canonical JSON") from None
    if not isinstance(statement, dict) or canonical(statement) != payload:
        raise NotVerified("payload is not canonical JSON")
    if statement.get("type") != TYPES[kind] or statement.get("v") != STATEMENT_VERSION:
        raise NotVerified(f"is not a {kind} (type {TYPES[kind]}, v {STATEMENT_VERSION})")
    kid = statement.get("kid")
    if not isinstance(kid, str) or doc.get("kid") != kid:
        raise NotVerified("kid does not match the signed kid")
    key = keys.get(kid)
    if key is None:
        raise NotVerified(f"signed by an unknown key {kid}")
    try:
        at = instant(statement.get("at"))
    except ValueError:
        raise NotVerified("at is not an instant") from None
    if key.valid_until is not None and at >= key.valid_until:
        until = key.valid_until.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        raise NotVerified(
            f"signed at {statement['at']}, after its key {kid} was retired at {until}"
        )
    try:
        key.public.verify(signature, payload)
    except InvalidSignature:
        raise NotVerified(
            f"signature does not verify (the document was changed, or {kid} did not sign it)"
        ) from None
    if kind in doc and doc[kind] != statement:
        raise NotVerified(f"the readable {kind} differs from the signed payload")
    return statement


@dataclass(frozen=True)
class Checkpoint:
    tenant: str
    seq: int
    hash: str
    at: str

    def label(self) -> str:
        return f"the checkpoint {self.seq}:{self.hash[:16]} signed at {self.at}"


def checkpoint(doc: object, keys: dict[str, Key]) -> Checkpoint:
    statement = open_signed(doc, "checkpoint", keys)
    if tuple(sorted(statement)) != CHECKPOINT_FIELDS:
        raise NotVerified(
            "is not a checkpoint (its fields are not " + ", ".join(CHECKPOINT_FIELDS) + ")"
        )
    seq = statement["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise NotVerified("seq is not a sequence number")
    if not is_hash(statement["hash"]):
        raise NotVerified("hash is not 64 lower-case hexadecimal digits")
    if not isinstance(statement["tenant"], str) or not statement["tenant"]:
        raise NotVerified("tenant is not a chain id")
    return Checkpoint(statement["tenant"], seq, statement["hash"], statement["at"])


def receipt(doc: object, keys: dict[str, Key]) -> dict[str, Any]:
    statement = open_signed(doc, "receipt", keys)
    if tuple(sorted(statement)) != RECEIPT_FIELDS:
        raise NotVerified("is not a receipt (its fields are not " + ", ".join(RECEIPT_FIELDS) + ")")
    if not all(isinstance(statement[k], dict) for k in ("request", "decision", "audit")):
        raise NotVerified("is not a receipt (request, decision and audit are objects)")
    if not isinstance(statement["tenant"], dict) or not isinstance(statement["id"], str):
        raise NotVerified("is not a receipt (tenant is an object, id is text)")
    return statement


def forks(checkpoints: Iterable[Checkpoint]) -> list[tuple[int, str]]:
    """(seq, message) of every record two checkpoints disagree about, lowest first."""
    groups: dict[tuple[str, int], list[Checkpoint]] = {}
    for cp in checkpoints:
        groups.setdefault((cp.tenant, cp.seq), []).append(cp)
    found = []
    for key in sorted(groups):
        ordered = sorted(groups[key], key=lambda c: (instant(c.at), c.hash))
        first = ordered[0]
        other = next((c for c in ordered if c.hash != first.hash), None)
        if other is not None:
            found.append(
                (
                    first.seq,
                    f"fork: two validly signed checkpoints name different hashes for record "
                    f"{first.seq} ({first.hash[:16]} signed at {first.at}, {other.hash[:16]} "
                    f"signed at {other.at}): evidence of tampering",
                )
            )
    return found


# -- the export ------------------------------------------------------------------------------------


@dataclass
class Report:
    tenant: str
    ok: bool = True
    records: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    problem: str | None = None
    broken_seq: int | None = None
    broken_id: str | None = None
    notes: list[str] = field(default_factory=list)

    def fail(self, problem: str, seq: int | None, record_id: str | None) -> Report:
        self.ok, self.problem, self.broken_seq, self.broken_id = False, problem, seq, record_id
        return self

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant,
            "ok": self.ok,
            "records": self.records,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "problem": self.problem,
            "broken_seq": self.broken_seq,
            "broken_id": self.broken_id,
            "notes": self.notes,
        }


def read_export(
    lines: Iterable[str], keys: dict[str, Key]
) -> tuple[list[dict[str, Any]], Checkpoint | None]:
    """The records of an export, and its signed head if it ends with one."""
    records: list[dict[str, Any]] = []
    head: Checkpoint | None = None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if head is not None:
            raise NotVerified(f"line {number} follows the signed head")
        try:
            data = json.loads(line)
        except ValueError:
            raise NotVerified(f"line {number} is not JSON") from None
        if isinstance(data, dict) and set(data) == {"signed_head"}:
            try:
                head = checkpoint(data["signed_head"], keys)
            except NotVerified as exc:
                raise NotVerified(f"line {number}: signed head refused: {exc}") from None
            continue
        if not isinstance(data, dict):
            raise NotVerified(f"line {number}: not an audit record: not a JSON object")
        if tuple(sorted(data)) != RECORD_FIELDS:
            raise NotVerified(
                f"line {number}: not an audit record: its fields are not "
                + ", ".join(RECORD_FIELDS)
            )
        records.append(data)
    return records, head


def verify_export(
    lines: Iterable[str],
    keys: dict[str, Key],
    checkpoints: Sequence[Checkpoint] = (),
    receipts: Sequence[dict[str, Any]] = (),
    tenant: str | None = None,
) -> Report:
    """docs/audit.md, "Verifying an export": the first failure in sequence order is named."""
    records, head = read_export(lines, keys)
    chain = (
        tenant
        or (head.tenant if head else None)
        or (checkpoints[0].tenant if checkpoints else None)
        or (str(records[0]["tenant_id"]) if records else None)
    )
    if chain is None:
        raise NotVerified("the export is empty: no records and no signed head")
    if head is not None and head.tenant != chain:
        raise NotVerified(f"its signed head is of {head.tenant}, not of {chain}")
    for index, cp in enumerate(checkpoints):
        if cp.tenant != chain:
            raise NotVerified(
                f"checkpoints[{index}]: refused: it is a checkpoint of {cp.tenant}, not of {chain}"
            )
    report = Report(chain)
    pinned: dict[int, list[Checkpoint]] = {}
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        pinned.setdefault(cp.seq, []).append(cp)
    by_seq: dict[int, dict[str, Any]] = {}
    prev = GENESIS_HASH
    last_id: str | None = None
    for record in records:
        seq, record_id = record["seq"], record["id"]
        expected = report.records + 1
        if record["tenant_id"] != chain:
            return report.fail("record belongs to another tenant", seq, record_id)
        if seq != expected:
            what = (
                "missing or reordered"
                if isinstance(seq, int) and seq > expected
                else "duplicated or reordered"
            )
            return report.fail(
                f"expected sequence {expected}, found {seq} ({what} records)", seq, record_id
            )
        if record["prev_hash"] != prev:
            return report.fail(
                "previous-hash link does not match the record before it", seq, record_id
            )
        if record_hash(record) != record["hash"]:
            return report.fail("content does not match its hash (record changed)", seq, record_id)
        for cp in pinned.get(seq, ()):
            if cp.hash != record["hash"]:
                return report.fail(
                    f"record {seq} does not match {cp.label()} (the chain was rebuilt, or the "
                    "database was rolled back)",
                    seq,
                    record_id,
                )
        prev = record["hash"]
        report.records = report.head_seq = seq
        report.head_hash = prev
        last_id = record_id
        by_seq[seq] = record
    count = report.records
    for cp in pinned.get(0, ()):
        if cp.hash != GENESIS_HASH:
            return report.fail(
                f"record 0 does not match {cp.label()} (the chain was rebuilt, or the "
                "database was rolled back)",
                0,
                None,
            )
    beyond = [cp for cp in checkpoints if cp.seq > count]
    if beyond:
        first = min(beyond, key=lambda c: c.seq)
        return report.fail(
            f"the chain ends at {count} but {first.label()} names record {first.seq} "
            "(records were removed from the end, or the database was rolled back)",
            count,
            last_id,
        )
    if head is not None and (head.seq != count or head.hash != prev):
        why = (
            "records removed at the end"
            if count < head.seq
            else "records added after the head"
            if count > head.seq
            else "the last record was replaced"
        )
        return report.fail(
            f"chain ends at {count} but the signed head is {head.seq} ({why})", count, last_id
        )
    found = forks([*checkpoints, *([head] if head else [])])
    if found:
        return report.fail(found[0][1], found[0][0], None)
    for index, statement in enumerate(receipts):
        audit = statement["audit"]
        if audit.get("chain") != chain:
            report.notes.append(
                f"receipts[{index}] is about chain {audit.get('chain')}: not checked"
            )
            continue
        named = by_seq.get(audit.get("seq"))
        if named is None or named["id"] != audit.get("id") or named["hash"] != audit.get("hash"):
            return report.fail(
                f"receipt {statement['id']} names record {audit.get('seq')} "
                f"({str(audit.get('hash'))[:16]}), which the export does not contain",
                audit.get("seq") if isinstance(audit.get("seq"), int) else None,
                named["id"] if named else None,
            )
    if head is None and not checkpoints:
        report.notes.append(
            "no checkpoint and no signed head: records removed from the end cannot be detected"
        )
    return report


# -- the command ------------------------------------------------------------------------------------


def _read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise Unusable(f"{path}: {exc.strerror or exc}") from None
    except ValueError:
        raise Unusable(f"{path}: not JSON") from None


def _keys(path: str) -> dict[str, Key]:
    return load_keys(_read_json(path))


def _emit(data: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        for line in lines:
            sys.stdout.write(line + "\n")


def _run_export(args: argparse.Namespace) -> int:
    keys = _keys(args.keys)
    held: list[Checkpoint] = []
    for path in args.checkpoint or []:
        try:
            held.append(checkpoint(_read_json(path), keys))
        except NotVerified as exc:
            _emit({"ok": False, "problem": f"{path}: {exc}"}, args.json, [f"FAIL {path}: {exc}"])
            return 1
    kept: list[dict[str, Any]] = []
    for path in args.receipt or []:
        try:
            kept.append(receipt(_read_json(path), keys))
        except NotVerified as exc:
            _emit({"ok": False, "problem": f"{path}: {exc}"}, args.json, [f"FAIL {path}: {exc}"])
            return 1
    try:
        with Path(args.export).open(encoding="utf-8") as handle:
            report = verify_export(handle, keys, held, kept, args.tenant)
    except OSError as exc:
        raise Unusable(f"{args.export}: {exc.strerror or exc}") from None
    except NotVerified as exc:
        _emit({"ok": False, "problem": str(exc)}, args.json, [f"FAIL {args.export}: {exc}"])
        return 1
    if report.ok:
        line = (
            f"OK   {report.tenant}: {report.records} records, head {report.head_seq}:"
            f"{report.head_hash}; {len(held)} checkpoint(s), {len(kept)} receipt(s) agree"
        )
    else:
        line = f"FAIL {report.tenant}: record {report.broken_seq} ({report.broken_id}): {report.problem}"
    _emit(report.as_dict(), args.json, [line, *(f"note: {n}" for n in report.notes)])
    return 0 if report.ok else 1


def _run_checkpoints(args: argparse.Namespace) -> int:
    keys = _keys(args.keys)
    found: list[Checkpoint] = []
    lines: list[str] = []
    results: list[dict[str, Any]] = []
    ok = True
    for path in args.files:
        try:
            cp = checkpoint(_read_json(path), keys)
            if args.tenant and cp.tenant != args.tenant:
                raise NotVerified(
                    f"refused: it is a checkpoint of {cp.tenant}, not of {args.tenant}"
                )
        except NotVerified as exc:
            ok = False
            lines.append(f"FAIL {path}: {exc}")
            results.append({"file": path, "ok": False, "problem": str(exc)})
            continue
        found.append(cp)
        lines.append(f"OK   {path}: {cp.tenant} record {cp.seq} is {cp.hash} (signed at {cp.at})")
        results.append(
            {
                "file": path,
                "ok": True,
                "tenant": cp.tenant,
                "seq": cp.seq,
                "hash": cp.hash,
                "at": cp.at,
            }
        )
    disagreements = forks(found)
    for _seq, message in disagreements:
        ok = False
        lines.append(f"FAIL {message}")
    _emit(
        {"ok": ok, "checkpoints": results, "forks": [m for _s, m in disagreements]},
        args.json,
        lines,
    )
    return 0 if ok else 1


def _run_receipts(args: argparse.Namespace) -> int:
    keys = _keys(args.keys)
    lines: list[str] = []
    results: list[dict[str, Any]] = []
    ok = True
    for path in args.files:
        try:
            statement = receipt(_read_json(path), keys)
        except NotVerified as exc:
            ok = False
            lines.append(f"FAIL {path}: {exc}")
            results.append({"file": path, "ok": False, "problem": str(exc)})
            continue
        decision, request = statement["decision"], statement["request"]
        by = decision.get("by") or {}
        lines.append(
            f"OK   {path}: {decision.get('kind')} of {request.get('id')} by "
            f"{by.get('email') or by.get('id')} at {decision.get('at')} "
            f"(audit record {statement['audit'].get('seq')})"
        )
        results.append({"file": path, "ok": True, "receipt": statement})
    _emit({"ok": ok, "receipts": results}, args.json, lines)
    return 0 if ok else 1


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m lockbox.verify",
        description="Verify Lockbox audit exports, checkpoints and receipts (docs/audit.md).",
    )
    sub = top.add_subparsers(dest="command", required=True)
    export = sub.add_parser(
        "export", help="an export (JSON Lines) against checkpoints and receipts"
    )
    export.add_argument("export", help="the export file (lockbox audit export --format jsonl)")
    export.add_argument("--checkpoint", action="append", help="a checkpoint file you hold")
    export.add_argument("--receipt", action="append", help="a receipt file you hold")
    export.set_defaults(run=_run_export)
    checkpoints = sub.add_parser(
        "checkpoints", help="checkpoint signatures, and forks between them"
    )
    checkpoints.add_argument("files", nargs="+")
    checkpoints.set_defaults(run=_run_checkpoints)
    receipts = sub.add_parser("receipt", help="receipt signatures")
    receipts.add_argument("files", nargs="+")
    receipts.set_defaults(run=_run_receipts)
    for command in (export, checkpoints, receipts):
        command.add_argument("--keys", required=True, help="the published audit keys (JSON)")
        command.add_argument("--json", action="store_true", help="print JSON")
    for command in (export, checkpoints):
        command.add_argument("--tenant", help="the chain (tenant id, or provider) to expect")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except Unusable as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
