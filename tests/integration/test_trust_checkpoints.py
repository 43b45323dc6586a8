"""Signed checkpoints (issue #12): issued with every transition and by the worker, kept,
published keys, and verification against the checkpoints a customer holds.

The tampering is done with direct SQL, as a database administrator would: the
stored head is rewritten to match, so `lockbox audit verify` alone says OK;
only a checkpoint held outside the database tells. Every case runs on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, delete, func, select

from lockbox.access.keys import AUDIT
from lockbox.domain import checkpoints as rules
from lockbox.domain.audit import PROVIDER_CHAIN, ChainReport
from lockbox.domain.errors import InvalidTransition, NotFound, PermissionDenied, ValidationError
from lockbox.domain.signing import b64, unb64
from lockbox.service import access, audit, checkpoints, requests, webhooks
from lockbox.store import keys as keystore
from lockbox.store import tables as t
from lockbox.worker import Worker
from tests.conftest import World
from tests.integration.helpers import approved, pending_approval, submit
from tests.integration.trust_helpers import (
    OPERATOR,
    chain_records,
    cut_tail,
    forged_checkpoint,
    held_checkpoint,
    rebuild,
    set_head,
    tamper,
)

ev = t.audit_events


def verify(world: World, chain: str, *held: dict[str, object]) -> ChainReport:
    return checkpoints.verify_with_checkpoints(world.app, OPERATOR, chain, list(held))


def plain(world: World, chain: str) -> ChainReport:
    (report,) = audit.verify(world.app, OPERATOR, chain)
    return report


def keys(world: World) -> dict[str, object]:
    with world.app.read() as tx:
        return dict(checkpoints.public_keys(tx))


# -- issuing ---------------------------------------------------------------------------------


def test_every_transition_is_checkpointed_and_the_checkpoint_verifies(world: World) -> None:
    req = approved(world)
    requests.close_request(world.app, world.engineer, req.id, comment="fixed")
    records = chain_records(world.app, world.contoso)
    items, _next = checkpoints.history(world.app, OPERATOR, world.contoso, limit=200)
    decisions = {v.checkpoint.seq: v for v in items if v.reason == "decision"}
    transitions = [r for r in records if r.operation.startswith("request.")]
    assert len(transitions) == 4  # submit, review, approve, close
    for record in transitions:
        cp = decisions[record.seq].checkpoint
        assert (cp.tenant, cp.hash) == (world.contoso, record.hash)
        assert rules.from_document(cp.document(), keys(world)) == cp  # type: ignore[arg-type]
    latest = checkpoints.latest(world.app, OPERATOR, "contoso")
    assert latest is not None and latest.checkpoint.seq == records[-1].seq
    statement = json.loads(unb64(latest.checkpoint.document()["payload"]))
    assert statement == {
        "v": 1,
        "type": "lockbox.checkpoint",
        "tenant": world.contoso,
        "seq": records[-1].seq,
        "hash": records[-1].hash,
        "at": statement["at"],
        "kid": latest.checkpoint.kid,
    }
    assert verify(world, world.contoso, held_checkpoint(world.app, world.contoso)).ok


def test_checkpoint_history_pages_newest_first(world: World) -> None:
    for _ in range(3):
        submit(world)
    first, cursor = checkpoints.history(world.app, OPERATOR, "contoso", limit=2)
    assert cursor is not None and len(first) == 2
    rest, end = checkpoints.history(world.app, OPERATOR, "contoso", limit=2, cursor=cursor)
    seqs = [v.checkpoint.seq for v in [*first, *rest]]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 3 and end is None


def test_who_may_read_and_verify_checkpoints(world: World) -> None:
    submit(world)
    for who in (world.contoso_auditor, world.contoso_admin, world.provider_admin):
        assert checkpoints.latest(world.app, who, "contoso") is not None
    with pytest.raises(PermissionDenied):
        checkpoints.latest(world.app, world.contoso_approver, "contoso")
    with pytest.raises(NotFound):
        checkpoints.latest(world.app, world.fabrikam_auditor, "contoso")
    with pytest.raises(PermissionDenied):
        checkpoints.latest(world.app, world.contoso_auditor, PROVIDER_CHAIN)


# -- tampering, detected against a checkpoint held from before ------------------------------


def test_tail_deleted_and_head_rewritten(world: World) -> None:
    req = approved(world)
    held = held_checkpoint(world.app, world.contoso)
    requests.close_request(world.app, world.engineer, req.id)
    keep = held["checkpoint"]["seq"] - 2  # type: ignore[index]
    cut_tail(world.app, world.contoso, keep)
    assert plain(world, world.contoso).ok  # the stored head was rewritten: it cannot tell
    report = verify(world, world.contoso, held)
    assert not report.ok
    assert report.broken_seq == keep
    assert f"names record {keep + 2}" in (report.problem or "")
    assert "removed from the end" in (report.problem or "")


def test_chain_recomputed_with_new_hashes(world: World) -> None:
    approved(world)
    held = held_checkpoint(world.app, world.contoso)
    target = chain_records(world.app, world.contoso)[2]
    rebuild(
        world.app,
        world.contoso,
        lambda r: r if r.id != target.id else replace(r, details={"x": 1}),
    )
    assert plain(world, world.contoso).ok  # a consistent forgery
    report = verify(world, world.contoso, held)
    assert not report.ok
    seq = held["checkpoint"]["seq"]  # type: ignore[index]
    assert report.broken_seq == seq
    assert f"record {seq} does not match the checkpoint {seq}:" in (report.problem or "")
    assert "rebuilt" in (report.problem or "")


def _copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database file (the backup API folds in the WAL)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def test_database_restored_from_an_older_copy(world: World, tmp_path: Path) -> None:
    """SQLite: the file copied, more decisions, the copy put back (and the log growing on).
    PostgreSQL: the rows past a point deleted, head rewritten, checkpoints after it dropped."""
    first = approved(world)
    app = world.app
    before = chain_records(app, world.contoso)[-1].seq
    path = Path(app.db.engine.url.database or "")
    backup = tmp_path / "backup.db"
    if app.db.is_sqlite:
        app.db.dispose()
        _copy_sqlite(path, backup)  # the file, copied (with what its WAL holds)
    requests.revoke_request(app, world.contoso_approver, first.id, comment="done")
    held = held_checkpoint(app, world.contoso)  # the customer has this one
    assert held["checkpoint"]["seq"] > before  # type: ignore[index]
    if app.db.is_sqlite:
        app.db.dispose()
        _copy_sqlite(backup, path)  # ... and put back over the newer database
    else:
        head = chain_records(app, world.contoso)[before - 1]

        def roll_back(conn: Connection) -> None:
            conn.execute(delete(ev).where(ev.c.tenant_id == world.contoso, ev.c.seq > before))
            conn.execute(
                delete(t.audit_checkpoints).where(
                    t.audit_checkpoints.c.tenant_id == world.contoso,
                    t.audit_checkpoints.c.seq > before,
                )
            )
            set_head(conn, world.contoso, before, head.hash)

        tamper(app, roll_back)
    assert plain(world, world.contoso).ok
    report = verify(world, world.contoso, held)
    assert not report.ok and "rolled back" in (report.problem or "")
    assert report.broken_seq == before
    # Life goes on after the rollback: new records reuse the sequence numbers.
    pending_approval(world)
    report = verify(world, world.contoso, held)
    seq = held["checkpoint"]["seq"]  # type: ignore[index]
    assert not report.ok and report.broken_seq == seq
    assert "does not match" in (report.problem or "") and "rolled back" in (report.problem or "")


def test_cli_verify_with_a_checkpoint_file(world: World, tmp_path: Path) -> None:
    req = approved(world)
    requests.close_request(world.app, world.engineer, req.id)
    env = {**os.environ, "LOCKBOX_DATABASE_URL": world.app.db.url, "COLUMNS": "200"}
    env.pop("LOCKBOX_AS", None)
    cli = [sys.executable, "-m", "lockbox.cli.main"]
    saved = tmp_path / "cp.json"
    out = subprocess.run(
        [*cli, "audit", "checkpoint", "--tenant", "contoso", "-o", str(saved)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(saved.read_text())["checkpoint"]["tenant"] == world.contoso
    cmd = [*cli, "audit", "verify", "--tenant", "contoso", "--checkpoint", str(saved)]
    ok = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stdout + ok.stderr
    cut_tail(world.app, world.contoso, 3)
    broken = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "BROKEN" in broken.stdout and "removed from the end" in broken.stdout
    plain_verify = subprocess.run(
        [*cli, "audit", "verify", "--tenant", "contoso"], env=env, capture_output=True, text=True
    )
    assert plain_verify.returncode == 0  # without the checkpoint the cut goes unnoticed


# -- forks and refusals ---------------------------------------------------------------------------


def test_a_forked_pair_of_checkpoints_is_reported(world: World, tmp_path: Path) -> None:
    approved(world)
    held = held_checkpoint(world.app, world.contoso)
    seq, real = held["checkpoint"]["seq"], held["checkpoint"]["hash"]  # type: ignore[index]
    other = forged_checkpoint(world.app, world.contoso, seq, "f" * 64)
    assert other["checkpoint"]["hash"] != real
    report = verify(world, world.contoso, held, other)
    assert not report.ok
    # The chain has the real hash: the forged one mismatches first, at the same record.
    assert report.broken_seq == seq
    # Held alone, both checkpoints are evidence against each other (no chain needed).
    found = rules.forks(
        [rules.from_document(d, keys(world)) for d in (held, other)]  # type: ignore[arg-type]
    )
    assert len(found) == 1 and "fork" in found[0].problem() and found[0].seq == seq
    # A fork between a held checkpoint and one Lockbox kept is found too.
    kept_twin = forged_checkpoint(world.app, world.contoso, seq, real)
    assert verify(world, world.contoso, kept_twin).ok
    (tmp_path / "a.json").write_text(json.dumps(held))
    (tmp_path / "b.json").write_text(json.dumps(other))
    (tmp_path / "keys.json").write_text(json.dumps(checkpoints.keys_document(world.app)))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lockbox.verify",
            "checkpoints",
            str(tmp_path / "a.json"),
            str(tmp_path / "b.json"),
            "--keys",
            str(tmp_path / "keys.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"fork: two validly signed checkpoints name different hashes for record {seq}" in (
        out.stdout
    )


def test_a_fork_with_a_checkpoint_lockbox_kept_is_reported(world: World) -> None:
    approved(world)
    held = held_checkpoint(world.app, world.contoso)
    seq = held["checkpoint"]["seq"]  # type: ignore[index]
    forged = forged_checkpoint(world.app, world.contoso, seq, "e" * 64)
    with world.app.tx() as tx:  # the service kept it, as it keeps every checkpoint it signs
        from lockbox.domain.ids import new_id
        from lockbox.store import checkpoints as store

        store.insert_checkpoint(
            tx.conn,
            new_id("checkpoint"),
            rules.from_document(forged, checkpoints.public_keys(tx)),
            "manual",
        )
    report = verify(world, world.contoso, held)
    assert not report.ok and (report.problem or "").startswith("fork:")
    assert report.broken_seq == seq


@pytest.mark.parametrize("kind", ["bad_signature", "unknown_key", "other_tenant", "edited_copy"])
def test_bad_checkpoints_are_refused(world: World, kind: str) -> None:
    approved(world)
    doc = held_checkpoint(world.app, world.contoso)
    expected = {
        "bad_signature": "signature does not verify",
        "unknown_key": "signed by an unknown key key_",
        "other_tenant": f"it is a checkpoint of {world.fabrikam}, not of {world.contoso}",
        "edited_copy": "the readable checkpoint differs from the signed payload",
    }[kind]
    if kind == "bad_signature":
        signature = bytearray(unb64(doc["signature"]))
        signature[0] ^= 1
        doc["signature"] = b64(bytes(signature))
    elif kind == "unknown_key":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from lockbox.domain.audit import canonical_json

        statement = {**doc["checkpoint"], "kid": "key_" + "0" * 26}  # type: ignore[dict-item]
        payload = canonical_json(statement)
        doc = {
            "alg": "Ed25519",
            "kid": statement["kid"],
            "payload": b64(payload),
            "signature": b64(Ed25519PrivateKey.generate().sign(payload)),
            "checkpoint": statement,
        }
    elif kind == "other_tenant":
        submit(world, tenant="fabrikam")
        doc = held_checkpoint(world.app, world.fabrikam)
    else:
        doc["checkpoint"]["seq"] += 1  # type: ignore[index, operator]
    with pytest.raises(ValidationError) as refused:
        verify(world, world.contoso, doc)
    assert expected in refused.value.message
    assert refused.value.field == "checkpoints[0]"


def test_a_statement_dated_after_its_key_was_retired_is_refused(world: World) -> None:
    approved(world)
    old = held_checkpoint(world.app, world.contoso)
    access.rotate_keys(world.app, world.provider_admin, purpose=AUDIT)
    assert verify(world, world.contoso, old).ok  # old signatures stay verifiable
    with world.app.read() as tx:
        retired = keystore.get_key(tx.conn, old["kid"])  # type: ignore[arg-type]
    assert retired is not None and retired.retired_at is not None
    # A statement the retired key signed, dated after its retirement: refused.
    world.clock.advance(timedelta(minutes=5))
    from cryptography.hazmat.primitives import serialization

    from lockbox.domain.audit import canonical_json
    from lockbox.domain.instants import format_instant

    statement = {**old["checkpoint"], "at": format_instant(world.clock.now())}  # type: ignore[dict-item]
    private = serialization.load_pem_private_key(retired.private_pem.encode(), None)
    late = {
        "alg": "Ed25519",
        "kid": retired.kid,
        "payload": b64(canonical_json(statement)),
        "signature": b64(private.sign(canonical_json(statement))),  # type: ignore[union-attr, call-arg]
        "checkpoint": statement,
    }
    with pytest.raises(ValidationError) as refused:
        verify(world, world.contoso, late)
    assert f"after its key {retired.kid} was retired at" in refused.value.message


# -- keys ---------------------------------------------------------------------------------------


def test_audit_keys_rotate_and_stay_published(world: World) -> None:
    approved(world)
    before = checkpoints.keys_document(world.app)
    assert before["type"] == "lockbox.audit-keys" and len(before["keys"]) == 1
    (first,) = before["keys"]
    assert first["status"] == "active" and first["valid_until"] is None
    assert first["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    rotated = access.rotate_keys(world.app, world.provider_admin, purpose=AUDIT)
    assert rotated["purpose"] == AUDIT
    world.clock.advance(timedelta(seconds=1))
    submit(world)  # signed with the new key
    after = {k["kid"]: k for k in checkpoints.keys_document(world.app)["keys"]}
    assert set(after) == {first["kid"], rotated["kid"]}
    assert after[first["kid"]]["status"] == "retired"
    assert after[first["kid"]]["valid_until"] == after[rotated["kid"]]["valid_from"]
    latest = checkpoints.latest(world.app, OPERATOR, "contoso")
    assert latest is not None and latest.checkpoint.kid == rotated["kid"]
    items, _ = checkpoints.history(world.app, OPERATOR, "contoso", limit=200)
    docs = [v.checkpoint.document() for v in items]
    assert {d["kid"] for d in docs} == {first["kid"], rotated["kid"]}
    assert verify(world, world.contoso, *docs).ok  # old and new verify together
    with pytest.raises(InvalidTransition):
        access.retire_key(world.app, world.provider_admin, first["kid"])  # never unpublished
    # An audit key never verifies an access token, and the JWKS holds none.
    with world.app.read() as tx:
        assert not keystore.is_published(tx.conn, rotated["kid"], tx.now)
    assert rotated["kid"] not in {k["kid"] for k in access.jwks(world.app)["keys"]}
    kinds = {k["purpose"] for k in access.list_keys(world.app, world.provider_admin, None)}
    assert kinds == {"access", AUDIT}


def test_rotation_waits_for_what_the_old_key_signed(world: World) -> None:
    """With the clock standing still the new key's validity starts after the last statement
    the old key signed, so nothing the old key signed is dated after its retirement."""
    approved(world)
    held = held_checkpoint(world.app, world.contoso)
    access.rotate_keys(world.app, world.provider_admin, purpose=AUDIT)
    assert verify(world, world.contoso, held).ok
    doc = {k["kid"]: k for k in checkpoints.keys_document(world.app)["keys"]}
    assert doc[held["kid"]]["valid_until"] > held["checkpoint"]["at"]  # type: ignore[index, operator]


# -- the worker ---------------------------------------------------------------------------------------


def _worker(world: World) -> Worker:
    from lockbox.config import Settings

    return Worker(world.app, Settings(), dispatcher=_NoDispatch())  # type: ignore[arg-type]


class _NoDispatch:
    owner = "test"

    def dispatch_due(self, batch: int | None = None) -> object:
        from lockbox.notify.dispatcher import DispatchResult

        return DispatchResult()

    def close(self) -> None:
        pass


def _count(world: World, reason: str, chain: str) -> int:
    c = t.audit_checkpoints.c
    with world.app.read() as tx:
        return int(
            tx.conn.execute(
                select(func.count()).where(c.reason == reason, c.tenant_id == chain)
            ).scalar()
            or 0
        )


def test_the_worker_signs_growing_chains_hourly(world: World) -> None:
    worker = _worker(world)
    worker.run_round()
    # Chains that grew without a decision (tenants onboarded, users) get their first at once.
    assert _count(world, "hourly", world.fabrikam) == 1
    assert _count(world, "hourly", PROVIDER_CHAIN) == 1
    webhooks.register(world.app, world.provider_admin, url="https://ops.provider.example/x")
    world.clock.advance(timedelta(minutes=30))
    worker.run_round()
    assert _count(world, "hourly", PROVIDER_CHAIN) == 1  # grew, but the last is not an hour old
    world.clock.advance(timedelta(minutes=31))
    worker.run_round()
    assert _count(world, "hourly", PROVIDER_CHAIN) == 2
    world.clock.advance(timedelta(hours=2))
    worker.run_round()
    assert _count(world, "hourly", PROVIDER_CHAIN) == 2  # did not grow: nothing to sign
    latest = checkpoints.latest(world.app, world.provider_admin, PROVIDER_CHAIN)
    records = chain_records(world.app, PROVIDER_CHAIN)
    assert latest is not None and latest.checkpoint.seq == records[-1].seq


def test_the_daily_digest_goes_to_the_auditors(world: World) -> None:
    submit(world)
    worker = _worker(world)
    worker.run_round()
    assert _count(world, "daily", world.contoso) == 0  # the first comes a day after
    world.clock.advance(timedelta(days=1, minutes=1))
    result = worker.run_round()
    assert result.checkpoints.daily >= 3  # contoso, fabrikam, provider
    assert _count(world, "daily", world.contoso) == 1
    world.clock.advance(timedelta(hours=1))
    worker.run_round()
    assert _count(world, "daily", world.contoso) == 1  # once a day
    c = t.outbox.c
    with world.app.read() as tx:
        rows = tx.conn.execute(
            select(c.recipient, c.payload, c.tenant_id).where(c.topic == "audit_digest")
        ).all()
    to = {(r.recipient, r.tenant_id) for r in rows}
    assert ("audrey@contoso.test", world.contoso) in to
    assert ("finn@fabrikam.test", world.fabrikam) in to
    assert ("pat@provider.test", None) in to  # the provider chain's digest: provider admins
    (contoso,) = [r.payload for r in rows if r.recipient == "audrey@contoso.test"]
    latest = checkpoints.latest(world.app, OPERATOR, "contoso")
    assert latest is not None
    assert (contoso["audit_seq"], contoso["audit_hash"]) == (
        latest.checkpoint.seq,
        latest.checkpoint.hash,
    )


def test_checkpoints_go_to_the_tenants_own_webhooks(world: World) -> None:
    own = webhooks.register(
        world.app, world.contoso_admin, url="https://hooks.contoso.example/x", events=["*"]
    )
    webhooks.register(world.app, world.provider_admin, url="https://ops.provider.example/x")
    assert "audit.checkpoint" in webhooks.EVENT_TYPES
    submit(world)
    c = t.outbox.c
    with world.app.read() as tx:
        rows = tx.conn.execute(
            select(c.recipient, c.payload).where(c.topic == "audit.checkpoint")
        ).all()
    assert [r.recipient for r in rows] == [own.row.id]  # not the provider-level endpoint
    document = rows[0].payload["data"]["checkpoint"]
    assert rules.from_document(document, keys(world)).tenant == world.contoso  # type: ignore[arg-type]


# -- the signed export -------------------------------------------------------------------------------


def test_the_signed_export_ends_at_its_signed_head(world: World) -> None:
    approved(world)
    lines = list(checkpoints.signed_export(world.app, world.contoso_auditor, "contoso"))
    last = json.loads(lines[-1])
    assert set(last) == {"signed_head"}
    records = chain_records(world.app, world.contoso)
    assert last["signed_head"]["checkpoint"]["seq"] == records[-1].seq == len(lines) - 1
    report = checkpoints.verify_export(lines, [], keys(world))  # type: ignore[arg-type]
    assert report.ok and report.records == len(records)
    # A record appended behind Lockbox's back contradicts the signed head.
    extra = json.dumps({**json.loads(lines[-2]), "seq": len(records) + 1}) + "\n"
    forged = [*lines[:-1], extra, lines[-1]]
    report = checkpoints.verify_export(forged, [], keys(world))  # type: ignore[arg-type]
    assert not report.ok
