"""The trust rules as plain values (issue #12): canonical bytes, signed documents, forks,
when the worker signs, which transitions get receipts, what concerns a tenant. Each rule is
checked against the independent verifier too: the two implementations must agree, byte for
byte and message for message."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import lockbox.verify as independent
from lockbox.domain import checkpoints, receipts, signing
from lockbox.domain.audit import (
    AuditRecord,
    canonical_bytes,
    canonical_json,
    compute_hash,
    record_from_dict,
    verify_chain,
)
from lockbox.domain.lifecycle import Event, State
from lockbox.domain.provider_chain import concerns_tenant, powerful_people
from lockbox.domain.request import AccessRequest, Change
from lockbox.domain.resources import AccessLevel
from lockbox.domain.roles import Principal

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TRICKY: list[Any] = [
    {"b": 1, "a": [True, None, 0.25, -3], "é": "naïve – ü ✓ 𝄞", "\u2028": "line\u2028sep"},
    {"ctl": "tab\tnew\nline\x01\x7f", "quote": '"\\/', "z": {"y": {}, "x": []}},
    {"emoji": "🔐", "big": 2**40, "neg": -0.0, "sci": 1e-07},
]


@pytest.mark.parametrize("value", TRICKY)
def test_one_canonical_encoding(value: Any) -> None:
    assert canonical_json(value) == independent.canonical(value)
    assert canonical_json(json.loads(canonical_json(value))) == canonical_json(value)


def _record(**kw: Any) -> AuditRecord:
    base = {
        "id": "evt_x",
        "tenant_id": "ten_x",
        "seq": 1,
        "at": NOW,
        "actor_id": "usr_x",
        "actor_kind": "user",
        "operation": "request.submit",
        "request_id": "req_x",
        "details": {"é": "ü", "n": [1, 2]},
    }
    base.update(kw)
    return AuditRecord(**base).hashed()


def test_the_record_hash_is_rebuilt_from_the_export_alone() -> None:
    record = _record()
    exported = json.loads(json.dumps(record.as_dict(), ensure_ascii=False, sort_keys=True))
    assert independent.record_hash(exported) == record.hash == compute_hash(record)
    again = record_from_dict(exported)
    assert canonical_bytes(again) == canonical_bytes(record) and compute_hash(again) == record.hash
    exported["at"] = exported["at"].replace(".000000Z", "Z")  # another spelling is a change
    assert compute_hash(record_from_dict(exported)) != record.hash
    with pytest.raises(ValueError, match="not an audit record"):
        record_from_dict({**record.as_dict(), "extra": 1})


# -- signed documents ---------------------------------------------------------------------


PRIVATE = Ed25519PrivateKey.generate()
RAW = PRIVATE.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
KID = "key_" + "1" * 26


def _keys(until: datetime | None = None) -> tuple[dict[str, signing.PublicKey], dict[str, Any]]:
    ours = {KID: signing.PublicKey(KID, RAW, NOW - timedelta(days=1), until)}
    pem = PRIVATE.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    document = {
        "type": "lockbox.audit-keys",
        "v": 1,
        "keys": [
            {
                "kid": KID,
                "alg": "Ed25519",
                "public_key_pem": pem.decode(),
                "x": base64.urlsafe_b64encode(RAW).rstrip(b"=").decode(),
                "valid_from": "2026-01-04T09:00:00.000000Z",
                "valid_until": None if until is None else until.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "status": "active" if until is None else "retired",
            }
        ],
    }
    return ours, document


def _checkpoint(**changes: Any) -> dict[str, Any]:
    statement = checkpoints.statement("ten_x", 7, "a" * 64, NOW, KID)
    statement.update(changes)
    return signing.envelope(signing.CHECKPOINT, statement, PRIVATE.sign(canonical_json(statement)))


def _mangled() -> dict[str, Any]:
    """Each way a document can be wrong, as the domain and the verifier must both name it."""
    good = _checkpoint()

    def with_(**kw: Any) -> dict[str, Any]:
        return {**json.loads(json.dumps(good)), **kw}

    flipped = bytearray(base64.b64decode(good["signature"]))
    flipped[0] ^= 1
    edited = with_()
    edited["checkpoint"]["seq"] = 8
    return {
        "not an object": [],
        "extra field": with_(note="hi"),
        "alg": with_(alg="RS256"),
        "payload not base64": with_(payload="!!"),
        "short signature": with_(signature=base64.b64encode(b"x").decode()),
        "not canonical": with_(payload=base64.b64encode(b'{"v": 1}').decode()),
        "wrong type": _checkpoint(type="lockbox.receipt"),
        "kid mismatch": with_(kid="key_" + "2" * 26),
        "unknown key": _checkpoint(kid="key_" + "3" * 26),
        "bad at": _checkpoint(at="yesterday"),
        "signature": with_(signature=base64.b64encode(bytes(flipped)).decode()),
        "edited copy": edited,
        "missing field": _checkpoint(tenant=None) | {},
    }


@pytest.mark.parametrize("case", sorted(_mangled()))
def test_both_implementations_refuse_a_bad_document_in_the_same_words(case: str) -> None:
    doc = _mangled()[case]
    ours, document = _keys()
    with pytest.raises(signing.SignatureProblem) as domain:
        checkpoints.from_document(doc, ours)
    with pytest.raises(independent.NotVerified) as theirs:
        independent.checkpoint(doc, independent.load_keys(document))
    assert str(domain.value) == str(theirs.value)


def test_a_good_checkpoint_opens_the_same_everywhere() -> None:
    ours, document = _keys()
    found = checkpoints.from_document(_checkpoint(), ours)
    other = independent.checkpoint(_checkpoint(), independent.load_keys(document))
    assert (found.tenant, found.seq, found.hash) == (other.tenant, other.seq, other.hash)
    assert found.label() == other.label()


def test_retired_keys_sign_nothing_dated_after_retirement() -> None:
    ours, document = _keys(until=NOW)
    late = _checkpoint()  # dated NOW, the instant of retirement
    with pytest.raises(signing.SignatureProblem, match="after its key"):
        checkpoints.from_document(late, ours)
    with pytest.raises(independent.NotVerified, match="after its key"):
        independent.checkpoint(late, independent.load_keys(document))
    early = _checkpoint(at="2026-01-05T08:59:59.999999Z")
    assert checkpoints.from_document(early, ours).seq == 7


def test_forks_are_named_alike() -> None:
    ours, document = _keys()
    a = _checkpoint()
    b = _checkpoint(hash="b" * 64, at="2026-01-05T09:01:00.000000Z")
    same = _checkpoint(at="2026-01-05T10:00:00.000000Z")
    found = checkpoints.forks([checkpoints.from_document(d, ours) for d in (a, b, same)])
    keys = independent.load_keys(document)
    theirs = independent.forks([independent.checkpoint(d, keys) for d in (a, b, same)])
    assert [(f.seq, f.problem()) for f in found] == theirs
    assert len(theirs) == 1 and theirs[0][0] == 7
    assert checkpoints.forks([checkpoints.from_document(d, ours) for d in (a, same)]) == []


def test_anchors_name_the_first_inconsistency() -> None:
    first = _record()
    second = _record(id="evt_y", seq=2, prev_hash=first.hash)
    anchor = checkpoints.Checkpoint("ten_x", 2, "c" * 64, NOW, KID).anchor()
    report = verify_chain("ten_x", [first, second], head=(2, second.hash), anchors=[anchor])
    assert not report.ok and report.broken_seq == 2
    assert (
        report.problem
        == f"record 2 does not match {anchor.label} (the chain was rebuilt, or the database was rolled back)"
    )
    beyond = checkpoints.Checkpoint("ten_x", 5, "c" * 64, NOW, KID).anchor()
    report = verify_chain("ten_x", [first, second], head=(2, second.hash), anchors=[beyond])
    assert not report.ok and report.broken_seq == 2
    assert "the chain ends at 2 but the checkpoint 5:" in (report.problem or "")


# -- when the worker signs -------------------------------------------------------------------------


def test_hourly_and_daily_rules() -> None:
    hour = timedelta(hours=1)
    assert checkpoints.hourly_due(5, None, None, NOW)  # never signed
    assert not checkpoints.hourly_due(0, None, None, NOW)  # nothing to sign
    assert not checkpoints.hourly_due(5, 5, NOW - 3 * hour, NOW)  # did not grow
    assert not checkpoints.hourly_due(6, 5, NOW - hour / 2, NOW)  # grew, signed recently
    assert checkpoints.hourly_due(6, 5, NOW - hour, NOW)
    assert not checkpoints.daily_due(None, None, NOW)
    assert not checkpoints.daily_due(None, NOW - 23 * hour, NOW)
    assert checkpoints.daily_due(None, NOW - 24 * hour, NOW)
    assert not checkpoints.daily_due(NOW - hour, NOW - 48 * hour, NOW)


# -- receipts and the provider chain ----------------------------------------------------------------


def _change(event: Event, source: State, target: State) -> Change:
    request = AccessRequest(
        id="req_x",
        tenant_id="ten_x",
        case_id="case_x",
        requester_id="usr_e",
        resources=("exchange/mailbox/alice@contoso.com",),
        access_level=AccessLevel.READ,
        justification="j",
        state=target,
        customer_step=False if event is Event.REVIEW_APPROVE else None,
        created_at=NOW,
        review_deadline=NOW + timedelta(hours=1),
        updated_at=NOW,
    )
    return Change(request, event, source, target, Principal.system(), NOW)


@pytest.mark.parametrize(
    ("event", "source", "target", "kind"),
    [
        (Event.APPROVE, State.PENDING_APPROVAL, State.APPROVED, "approve"),
        (Event.APPROVE, State.PENDING_APPROVAL, State.PENDING_APPROVAL, "approve"),
        (Event.DENY, State.PENDING_APPROVAL, State.DENIED, "deny"),
        (Event.REVOKE, State.APPROVED, State.REVOKED, "revoke"),
        (Event.REVIEW_APPROVE, State.PENDING_REVIEW, State.APPROVED, "auto_approve"),
        (Event.REVIEW_APPROVE, State.PENDING_REVIEW, State.PENDING_APPROVAL, None),
        (Event.SUBMIT, State.PENDING_REVIEW, State.PENDING_REVIEW, None),
        (Event.CLOSE, State.APPROVED, State.CLOSED, None),
        (Event.END_ACCESS, State.APPROVED, State.ACCESS_ENDED, None),
    ],
)
def test_which_transitions_are_receipted(
    event: Event, source: State, target: State, kind: str | None
) -> None:
    rule = receipts.rule_for(_change(event, source, target))
    assert (rule.kind.value if rule else None) == kind


def test_what_of_the_provider_chain_concerns_a_tenant() -> None:
    def rec(operation: str, **details: Any) -> AuditRecord:
        return _record(tenant_id="provider", operation=operation, details=details)

    chain = [
        rec("user.created", user_id="usr_e", roles=["engineer"]),
        rec("user.created", user_id="usr_s", roles=["resource_service"]),
        rec("user.created", user_id="usr_r", roles=["resource_service"]),
        rec(
            "user.roles_changed",
            user_id="usr_r",
            **{"from": ["resource_service"], "to": ["manager"]},
        ),
        rec("token.created", user_id="usr_e"),
        rec("token.created", user_id="usr_s"),
        rec("tenant.created", tenant_id="ten_a"),
        rec("tenant.created", tenant_id="ten_b"),
        rec("service.registered", user_id="usr_s", tenants=["ten_b"]),
        rec("service.registered", user_id="usr_s", tenants="*"),
        rec("keys.rotated", purpose="audit"),
        rec("webhook.create", webhook_id="whk_1"),
    ]
    powerful = powerful_people(chain)
    assert powerful == {"usr_e", "usr_r"}
    seen = [i for i, r in enumerate(chain) if concerns_tenant(r, "ten_a", powerful)]
    assert seen == [0, 2, 3, 4, 6, 9, 10, 11]
