"""Signed statements: the envelope every checkpoint and receipt travels in, and its checks.

A statement is a JSON object; what is signed are its canonical bytes
(:func:`lockbox.domain.audit.canonical_json`), with plain Ed25519 (no hashing
first, no context). The envelope carries those exact bytes in base64, so a
verifier never has to rebuild them from a parsed copy, and a plain ``openssl
pkeyutl -verify -rawin`` can check the signature. A readable copy of the
statement rides along for people; it must equal the signed one, so editing it
is caught like editing the payload.

The rules (and every message below) are specified in docs/audit.md, and
:mod:`lockbox.verify` re-implements them independently for auditors.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lockbox.domain.audit import canonical_json
from lockbox.domain.instants import format_instant

ALG = "Ed25519"
#: The statement kinds: the envelope key of the readable copy, and the ``type`` signed.
CHECKPOINT = "checkpoint"
RECEIPT = "receipt"
TYPES = {CHECKPOINT: "lockbox.checkpoint", RECEIPT: "lockbox.receipt"}
STATEMENT_VERSION = 1


class SignatureProblem(ValueError):
    """A document that is not a valid signed statement; the message says why."""


@dataclass(frozen=True)
class PublicKey:
    """One published audit key: who signs (kid), with what, and until when."""

    kid: str
    raw: bytes  # the 32-byte Ed25519 public key
    valid_from: datetime
    valid_until: datetime | None  # retired: statements dated from then on are refused


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(value: object) -> bytes:
    """Standard base64 with padding, strictly (no whitespace, no other alphabet)."""
    if not isinstance(value, str):
        raise ValueError("not text")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("not base64") from None


def envelope(kind: str, statement: dict[str, Any], signature: bytes) -> dict[str, Any]:
    """The document to keep: the signed bytes, the signature, and a readable copy."""
    return {
        "alg": ALG,
        "kid": statement["kid"],
        "payload": b64(canonical_json(statement)),
        "signature": b64(signature),
        kind: statement,
    }


def parse_instant(value: object) -> datetime:
    """An instant as Lockbox spells it (``2026-01-05T09:00:00.000000Z``), exactly."""
    if not isinstance(value, str):
        raise ValueError("not text")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None or format_instant(parsed) != value:
        raise ValueError("not an instant in Lockbox's spelling")
    return parsed


def open_envelope(doc: object, kind: str, keys: Mapping[str, PublicKey]) -> dict[str, Any]:
    """The signed statement of ``doc`` once every check passed; else :class:`SignatureProblem`.

    Checks, in this order: the envelope's shape, the payload's encoding, the
    statement's type, the key (known, and not retired before the statement's
    time), the signature, and that the readable copy equals what was signed.
    """
    if not isinstance(doc, dict):
        raise SignatureProblem("is not a JSON object")
    allowed = {"alg", "kid", "payload", "signature", kind}
    extra = sorted(set(doc) - allowed)
    if extra:
        raise SignatureProblem(f"has unexpected fields: {', '.join(extra)}")
    if doc.get("alg") != ALG:
        raise SignatureProblem(f"alg must be {ALG}")
    try:
        payload = unb64(doc.get("payload"))
    except ValueError:
        raise SignatureProblem("payload is not base64") from None
    try:
        signature = unb64(doc.get("signature"))
    except ValueError:
        signature = b""
    if len(signature) != 64:
        raise SignatureProblem("signature is not base64 of 64 bytes")
    try:
        statement = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SignatureProblem("payload is not canonical JSON") from None
    if not isinstance(statement, dict) or canonical_json(statement) != payload:
        raise SignatureProblem("payload is not canonical JSON")
    wanted = TYPES[kind]
    if statement.get("type") != wanted or statement.get("v") != STATEMENT_VERSION:
        raise SignatureProblem(f"is not a {kind} (type {wanted}, v {STATEMENT_VERSION})")
    kid = statement.get("kid")
    if not isinstance(kid, str) or doc.get("kid") != kid:
        raise SignatureProblem("kid does not match the signed kid")
    key = keys.get(kid)
    if key is None:
        raise SignatureProblem(f"signed by an unknown key {kid}")
    try:
        at = parse_instant(statement.get("at"))
    except ValueError:
        raise SignatureProblem("at is not an instant") from None
    if key.valid_until is not None and at >= key.valid_until:
        raise SignatureProblem(
            f"signed at {statement['at']}, after its key {kid} was retired at "
            f"{format_instant(key.valid_until)}"
        )
    try:
        Ed25519PublicKey.from_public_bytes(key.raw).verify(signature, payload)
    except (InvalidSignature, ValueError):
        raise SignatureProblem(
            f"signature does not verify (the document was changed, or {kid} did not sign it)"
        ) from None
    if kind in doc and doc[kind] != statement:
        raise SignatureProblem(f"the readable {kind} differs from the signed payload")
    return statement
