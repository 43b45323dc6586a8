"""The independent verifier (``lockbox.verify``) agrees with ``lockbox audit verify``.

Every tamper case of ``test_audit_tamper.py`` is played again; the export is the
signed one (``lockbox audit export --signed``) and the customer holds the
checkpoint Lockbox signed before the tampering. The verifier, Lockbox's own
check of the stored chain, and Lockbox's check against the held checkpoint
must all say "broken" at the same record (or all say OK), and, where the walk
itself breaks, in the same words.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, delete, insert, update

import lockbox.verify as independent
from lockbox.domain.audit import AuditRecord
from lockbox.service import audit, checkpoints, requests
from lockbox.store import tables as t
from tests.conftest import World
from tests.integration.helpers import approved, records
from tests.integration.trust_helpers import OPERATOR, cut_tail, held_checkpoint, tamper

ev = t.audit_events
SRC = Path(__file__).resolve().parents[2] / "src" / "lockbox" / "verify.py"


def _row(rec: AuditRecord) -> dict[str, object]:
    return {
        "id": rec.id,
        "tenant_id": rec.tenant_id,
        "seq": rec.seq,
        "at": rec.at,
        "actor_id": rec.actor_id,
        "actor_kind": rec.actor_kind,
        "operation": rec.operation,
        "request_id": rec.request_id,
        "details": json.dumps(rec.details, sort_keys=True, separators=(",", ":")),
        "prev_hash": rec.prev_hash,
        "hash": rec.hash,
    }


def _where(rec: AuditRecord) -> Any:
    return (ev.c.tenant_id == rec.tenant_id) & (ev.c.seq == rec.seq)


Tamper = Callable[[World, list[AuditRecord]], Callable[[Connection], object]]


def _changed_details(w: World, chain: list[AuditRecord]) -> Callable[[Connection], object]:
    return lambda c: c.execute(update(ev).where(_where(chain[4])).values(details='{"forged":true}'))


def _changed_column(column: str) -> Tamper:
    def make(w: World, chain: list[AuditRecord]) -> Callable[[Connection], object]:
        target = chain[-2]
        value: object = {"actor_id": "usr_someone_else", "operation": "request.deny"}.get(column)
        if column == "at":
            value = target.at.replace(year=target.at.year - 1)
        return lambda c: c.execute(update(ev).where(_where(target)).values({column: value}))

    return make


def _rehashed(w: World, chain: list[AuditRecord]) -> Callable[[Connection], object]:
    target = chain[3]
    forged = replace(target, details={"forged": True}).hashed()
    return lambda c: c.execute(
        update(ev).where(_where(target)).values(details='{"forged":true}', hash=forged.hash)
    )


def _deleted(index: int) -> Tamper:
    return lambda w, chain: lambda c: c.execute(delete(ev).where(_where(chain[index])))


def _swapped(w: World, chain: list[AuditRecord]) -> Callable[[Connection], object]:
    a, b = chain[2], chain[3]

    def swap(conn: Connection) -> None:
        conn.execute(update(ev).where(ev.c.id == a.id).values(seq=-1))
        conn.execute(update(ev).where(ev.c.id == b.id).values(seq=a.seq))
        conn.execute(update(ev).where(ev.c.id == a.id).values(seq=b.seq))

    return swap


def _appended(w: World, chain: list[AuditRecord]) -> Callable[[Connection], object]:
    last = chain[-1]
    forged = replace(
        last, id="evt_forged", seq=last.seq + 1, prev_hash=last.hash, details={"x": 1}
    ).hashed()
    return lambda c: c.execute(insert(ev).values(_row(forged)))


def _inserted(w: World, chain: list[AuditRecord]) -> Callable[[Connection], object]:
    k = 5
    before = chain[k - 2]
    forged = replace(
        before, id="evt_forged", seq=k, prev_hash=before.hash, details={"note": "all fine"}
    ).hashed()

    def insert_forged(conn: Connection) -> None:
        for rec in reversed(chain[k - 1 :]):
            conn.execute(update(ev).where(ev.c.id == rec.id).values(seq=rec.seq + 1))
        conn.execute(insert(ev).values(_row(forged)))

    return insert_forged


def _moved(w: World, chain: list[AuditRecord]) -> Callable[[Connection], object]:
    return lambda c: c.execute(update(ev).where(_where(chain[-1])).values(tenant_id=w.fabrikam))


def _untouched(w: World, chain: list[AuditRecord]) -> Callable[[Connection], object]:
    return lambda c: None


CASES: dict[str, Tamper] = {
    "untouched": _untouched,
    "changed_details": _changed_details,
    "changed_actor_id": _changed_column("actor_id"),
    "changed_operation": _changed_column("operation"),
    "changed_at": _changed_column("at"),
    "changed_request_id": _changed_column("request_id"),
    "changed_and_rehashed": _rehashed,
    "deleted_middle_row": _deleted(5),
    "deleted_last_row": _deleted(-1),
    "deleted_first_row": _deleted(0),
    "swapped_rows": _swapped,
    "forged_row_appended": _appended,
    "forged_row_inserted_in_the_middle": _inserted,
    "record_moved_to_another_tenant": _moved,
}


def _keys(world: World) -> dict[str, independent.Key]:
    return independent.load_keys(checkpoints.keys_document(world.app))


def _independent(world: World, tenant: str, held: list[dict[str, Any]]) -> independent.Report:
    keys = _keys(world)
    auditor = world.contoso_auditor if tenant == world.contoso else world.fabrikam_auditor
    lines = list(checkpoints.signed_export(world.app, auditor, tenant))
    return independent.verify_export(
        lines, keys, [independent.checkpoint(d, keys) for d in held], tenant=tenant
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_independent_verifier_agrees_on_every_tamper_case(world: World, case: str) -> None:
    req = approved(world)
    requests.close_request(world.app, world.engineer, req.id, comment="fixed")
    chain = records(world.app, world.contoso)
    assert len(chain) >= 10
    held = {world.contoso: [held_checkpoint(world.app, world.contoso)]}
    checkpoints.issue(world.app, world.provider_admin, "fabrikam")  # a fabrikam head is held
    held[world.fabrikam] = [held_checkpoint(world.app, world.fabrikam)]
    tamper(world.app, CASES[case](world, chain))
    for tenant in (world.contoso, world.fabrikam):
        (stored,) = audit.verify(world.app, OPERATOR, tenant)
        against = checkpoints.verify_with_checkpoints(world.app, OPERATOR, tenant, held[tenant])
        theirs = _independent(world, tenant, held[tenant])
        found = (stored.ok, stored.broken_seq)
        assert (against.ok, against.broken_seq) == found, (case, tenant, against, stored)
        assert (theirs.ok, theirs.broken_seq) == found, (case, tenant, theirs, stored)
        if not stored.ok and "head" not in (stored.problem or ""):
            assert theirs.problem == stored.problem, (case, tenant)
            assert theirs.broken_id == stored.broken_id, (case, tenant)
    (contoso,) = audit.verify(world.app, OPERATOR, world.contoso)
    assert contoso.ok == (case == "untouched")


def test_the_verifier_command_exit_codes(world: World, tmp_path: Path) -> None:
    req = approved(world)
    requests.close_request(world.app, world.engineer, req.id)
    (tmp_path / "keys.json").write_text(json.dumps(checkpoints.keys_document(world.app)))
    (tmp_path / "cp.json").write_text(json.dumps(held_checkpoint(world.app, world.contoso)))
    (tmp_path / "bad-keys.json").write_text("{}")

    def export() -> Path:
        lines = checkpoints.signed_export(world.app, world.contoso_auditor, "contoso")
        path = tmp_path / "audit.jsonl"
        path.write_text("".join(lines))
        return path

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lockbox.verify", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    base = ["--keys", str(tmp_path / "keys.json"), "--checkpoint", str(tmp_path / "cp.json")]
    ok = run("export", str(export()), *base)
    assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stdout + ok.stderr
    as_json = run("export", str(export()), *base, "--json")
    assert json.loads(as_json.stdout)["ok"] is True
    unusable = run("export", str(export()), "--keys", str(tmp_path / "bad-keys.json"))
    assert unusable.returncode == 2 and "lockbox.audit-keys" in unusable.stderr
    missing = run("receipt", str(tmp_path / "nope.json"), "--keys", str(tmp_path / "keys.json"))
    assert missing.returncode == 2
    chain = records(world.app, world.contoso)
    tamper(world.app, lambda c: c.execute(delete(ev).where(_where(chain[-1]))))
    broken = run("export", str(export()), *base)
    assert broken.returncode == 1
    assert "removed from the end" in broken.stdout and broken.stdout.startswith("FAIL")
    # The lockbox CLI verifies the same export offline, with the same answer.
    from tests.integration.test_trust_receipts import CLI, _env

    offline = subprocess.run(
        [*CLI, "audit", "verify", "--export", str(export()), *base],
        env=_env(world),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert offline.returncode == 1 and "removed from the end" in offline.stdout


def test_receipts_are_matched_against_the_export(world: World) -> None:
    from lockbox.service import receipts

    req = approved(world)
    (found,) = receipts.for_request(world.app, world.contoso_auditor, req.id)
    keys = _keys(world)
    statement = independent.receipt(found.document(), keys)
    lines = list(checkpoints.signed_export(world.app, world.contoso_auditor, "contoso"))
    assert independent.verify_export(lines, keys, receipts=[statement]).ok
    # The approval and what followed deleted, the stored head rewritten to match: only the
    # receipt the customer holds still says the approval happened.
    cut_tail(world.app, world.contoso, statement["audit"]["seq"] - 1)
    lines = list(checkpoints.signed_export(world.app, world.contoso_auditor, "contoso"))
    report = independent.verify_export(lines, keys, receipts=[statement])
    assert not report.ok and "which the export does not contain" in (report.problem or "")


def test_the_verifier_depends_on_nothing_but_cryptography_and_the_standard_library() -> None:
    tree = ast.parse(SRC.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module
            imported.add(node.module.split(".")[0])
    assert imported - sys.stdlib_module_names == {"cryptography"}, imported
