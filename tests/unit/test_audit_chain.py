"""The pure chain verifier: any changed, removed, reordered or inserted record is found."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockbox.domain.audit import (
    GENESIS_HASH,
    AuditRecord,
    StoredRecord,
    canonical_bytes,
    canonical_json,
    verify_chain,
)

T = "ten_contoso"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def build(n: int = 6, tenant: str = T) -> list[AuditRecord]:
    chain: list[AuditRecord] = []
    prev = GENESIS_HASH
    for i in range(1, n + 1):
        rec = AuditRecord(
            id=f"evt_{i}",
            tenant_id=tenant,
            seq=i,
            at=T0 + timedelta(minutes=i),
            actor_id="usr_erin",
            actor_kind="user",
            operation="request.submit" if i % 2 else "request.approve",
            request_id="req_1",
            details={"n": i, "comment": "ünïcode ok"},
            prev_hash=prev,
        ).hashed()
        chain.append(rec)
        prev = rec.hash
    return chain


def head(chain: list[AuditRecord]) -> tuple[int, str]:
    return (chain[-1].seq, chain[-1].hash) if chain else (0, GENESIS_HASH)


def test_intact_chain_verifies() -> None:
    chain = build()
    report = verify_chain(T, chain, head=head(chain))
    assert report.ok
    assert (report.records, report.head_seq, report.head_hash) == (6, 6, chain[-1].hash)
    assert "OK" in report.summary()


def test_empty_chain() -> None:
    assert verify_chain(T, [], head=(0, GENESIS_HASH)).ok
    assert verify_chain(T, [], head=None).ok


def test_hash_covers_every_field() -> None:
    rec = build(1)[0]
    for change in (
        {"id": "evt_x"},
        {"tenant_id": "ten_x"},
        {"seq": 2},
        {"at": rec.at + timedelta(microseconds=1)},
        {"actor_id": "usr_x"},
        {"actor_kind": "system"},
        {"operation": "request.deny"},
        {"request_id": None},
        {"details": {"n": 2, "comment": "ünïcode ok"}},
        {"prev_hash": "1" * 64},
    ):
        assert replace(rec, **change).hashed().hash != rec.hash, change


def test_canonical_encoding_is_order_independent() -> None:
    rec = build(1)[0]
    a = replace(rec, details={"a": 1, "b": [1, 2]})
    b = replace(rec, details={"b": [1, 2], "a": 1})
    assert canonical_bytes(a) == canonical_bytes(b)


@pytest.mark.parametrize("index", range(6))
def test_changed_record_detected(index: int) -> None:
    chain = build()
    chain[index] = replace(chain[index], details={"forged": True})
    report = verify_chain(T, chain, head=head(build()))
    assert not report.ok
    assert (report.broken_seq, report.broken_id) == (index + 1, f"evt_{index + 1}")
    assert "changed" in (report.problem or "")
    assert "FAIL" in report.summary()


def test_changed_and_rehashed_record_breaks_the_next_link() -> None:
    chain = build()
    chain[2] = replace(chain[2], details={"forged": True}).hashed()
    report = verify_chain(T, chain, head=head(chain))
    assert not report.ok
    assert report.broken_seq == 4
    assert "previous-hash" in (report.problem or "")


@pytest.mark.parametrize("index", range(1, 5))
def test_deleted_middle_record_detected(index: int) -> None:
    original = build()
    chain = original[:index] + original[index + 1 :]
    report = verify_chain(T, chain, head=head(original))
    assert not report.ok
    assert report.broken_seq == index + 2
    assert "missing" in (report.problem or "")


def test_deleted_first_record_detected() -> None:
    original = build()
    report = verify_chain(T, original[1:], head=head(original))
    assert not report.ok
    assert report.broken_seq == 2


def test_truncated_head_detected() -> None:
    original = build()
    for keep in range(len(original)):
        report = verify_chain(T, original[:keep], head=head(original))
        assert not report.ok, keep
        assert "removed at the end" in (report.problem or "")


def test_missing_head_with_records_detected() -> None:
    report = verify_chain(T, build(), head=None)
    assert not report.ok
    assert "head" in (report.problem or "")


def test_reordered_records_detected() -> None:
    original = build()
    swapped = [original[0], original[2], original[1], *original[3:]]
    report = verify_chain(T, swapped, head=head(original))
    assert not report.ok
    assert report.broken_seq == 3  # found where seq 2 was expected
    # renumbered to look in order: the link breaks instead
    renumbered = [
        original[0],
        replace(original[2], seq=2),
        replace(original[1], seq=3),
        *original[3:],
    ]
    report = verify_chain(T, renumbered, head=head(original))
    assert not report.ok
    assert (report.broken_seq, report.broken_id) == (2, "evt_3")


def test_inserted_record_detected() -> None:
    original = build()
    forged = replace(original[2], id="evt_forged", details={"x": 1}).hashed()
    inserted = [*original[:3], forged, *original[3:]]
    report = verify_chain(T, inserted, head=head(original))
    assert not report.ok
    assert report.broken_seq == 3  # a second record claiming seq 3
    assert "duplicated" in (report.problem or "")
    # a forged, perfectly linked record appended at the end: the head disagrees
    tail = replace(original[-1], id="evt_tail", seq=7, prev_hash=original[-1].hash).hashed()
    report = verify_chain(T, [*original, tail], head=head(original))
    assert not report.ok


def test_foreign_tenant_record_detected() -> None:
    chain = build()
    foreign = build(tenant="ten_fabrikam")
    mixed = [*chain[:3], foreign[3], *chain[4:]]
    report = verify_chain(T, mixed, head=head(chain))
    assert not report.ok
    assert report.broken_seq == 4
    assert "another tenant" in (report.problem or "")


_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


@given(
    texts=st.tuples(_text, _text, _text, _text, _text),
    request_id=st.none() | _text,
    seq=st.integers(min_value=1, max_value=2**53),
    at=st.datetimes(min_value=datetime(2000, 1, 1), timezones=st.just(UTC)),
    details=st.dictionaries(_text, _json, max_size=4),
)
def test_the_spelled_out_encoding_is_the_canonical_json_of_the_record(
    texts: tuple[str, str, str, str, str],
    request_id: str | None,
    seq: int,
    at: datetime,
    details: dict[str, object],
) -> None:
    """Hashing spells a record out field by field (fast); it must be byte for byte the
    canonical JSON of the record's body, and a stored record must hash like the record."""
    rid, tenant, actor, kind, op = texts
    rec = AuditRecord(rid, tenant, seq, at, actor, kind, op, request_id, details).hashed()
    body = rec.as_dict()
    del body["hash"]
    body["v"] = 1
    assert canonical_bytes(rec) == canonical_json(body)
    stored = StoredRecord(
        rid, tenant, seq, body["at"], actor, kind, op, request_id,
        canonical_json(details).decode("utf-8"), rec.prev_hash, rec.hash,
    )  # fmt: skip
    assert stored.content_hash() == rec.hash


def test_a_stored_record_is_hashed_as_its_details_are_spelled() -> None:
    rec = build(1)[0]
    spelled = canonical_json(rec.details).decode("utf-8")
    stored = StoredRecord(
        rec.id, rec.tenant_id, rec.seq, rec.as_dict()["at"], rec.actor_id, rec.actor_kind,
        rec.operation, rec.request_id, spelled, rec.prev_hash, rec.hash,
    )  # fmt: skip
    assert verify_chain(T, [stored], head=(1, rec.hash)).ok
    respelled = stored._replace(details=spelled.replace(",", ", "))
    assert json.loads(respelled.details) == rec.details
    assert not verify_chain(T, [respelled], head=(1, rec.hash)).ok
