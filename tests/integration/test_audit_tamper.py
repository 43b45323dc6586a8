"""Tamper-evident audit: changing, deleting, reordering or inserting rows is detected.

The rows are tampered with directly in the database (as an attacker with SQL
access would), on SQLite and PostgreSQL; ``audit.verify`` must name the first
broken record, and ``lockbox audit verify`` must exit 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace

import pytest
from sqlalchemy import Connection, delete, insert, select, update

from lockbox.domain.audit import AuditRecord, ChainReport
from lockbox.domain.roles import Principal
from lockbox.service import audit, requests
from lockbox.service.app import Lockbox
from lockbox.store import tables as t
from tests.conftest import World
from tests.integration.helpers import approved, records

ev = t.audit_events


@pytest.fixture
def chain(world: World) -> list[AuditRecord]:
    req = approved(world)
    requests.close_request(world.app, world.engineer, req.id, comment="fixed")
    found = records(world.app, world.contoso)
    assert len(found) >= 10
    assert [r.seq for r in found] == list(range(1, len(found) + 1))
    return found


def report(app: Lockbox, tenant_id: str) -> ChainReport:
    (found,) = audit.verify(app, Principal.operator(), tenant_id)
    return found


def tamper(app: Lockbox, action: Callable[[Connection], object]) -> None:
    with app.db.engine.begin() as conn:
        action(conn)


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


def _where(rec: AuditRecord) -> object:
    return (ev.c.tenant_id == rec.tenant_id) & (ev.c.seq == rec.seq)


def test_untouched_chain_verifies(world: World, chain: list[AuditRecord]) -> None:
    for tenant_id in (world.contoso, world.fabrikam):
        found = report(world.app, tenant_id)
        assert found.ok, found
    assert report(world.app, world.contoso).records == len(chain)
    assert report(world.app, world.contoso).head_hash == chain[-1].hash


def test_changed_details_detected(world: World, chain: list[AuditRecord]) -> None:
    target = chain[4]
    tamper(
        world.app,
        lambda c: c.execute(update(ev).where(_where(target)).values(details='{"forged":true}')),
    )
    found = report(world.app, world.contoso)
    assert not found.ok
    assert (found.broken_seq, found.broken_id) == (target.seq, target.id)
    assert "changed" in (found.problem or "")
    assert report(world.app, world.fabrikam).ok  # other tenants unaffected


@pytest.mark.parametrize("column", ["actor_id", "operation", "at", "request_id"])
def test_changed_column_detected(world: World, chain: list[AuditRecord], column: str) -> None:
    target = chain[-2]
    value: object = {"actor_id": "usr_someone_else", "operation": "request.deny"}.get(column)
    if column == "at":
        value = target.at.replace(year=target.at.year - 1)
    tamper(world.app, lambda c: c.execute(update(ev).where(_where(target)).values({column: value})))
    found = report(world.app, world.contoso)
    assert not found.ok
    assert found.broken_seq == target.seq


def test_changed_and_rehashed_record_breaks_the_next_link(
    world: World, chain: list[AuditRecord]
) -> None:
    target = chain[3]
    forged = replace(target, details={"forged": True}).hashed()
    tamper(
        world.app,
        lambda c: c.execute(
            update(ev).where(_where(target)).values(details='{"forged":true}', hash=forged.hash)
        ),
    )
    found = report(world.app, world.contoso)
    assert not found.ok
    assert found.broken_seq == target.seq + 1
    assert "previous-hash" in (found.problem or "")


def test_deleted_middle_row_detected(world: World, chain: list[AuditRecord]) -> None:
    target = chain[5]
    tamper(world.app, lambda c: c.execute(delete(ev).where(_where(target))))
    found = report(world.app, world.contoso)
    assert not found.ok
    assert found.broken_seq == target.seq + 1
    assert found.broken_id == chain[6].id
    assert f"expected sequence {target.seq}" in (found.problem or "")


def test_deleted_last_row_detected(world: World, chain: list[AuditRecord]) -> None:
    target = chain[-1]
    tamper(world.app, lambda c: c.execute(delete(ev).where(_where(target))))
    found = report(world.app, world.contoso)
    assert not found.ok
    assert found.broken_seq == target.seq - 1
    assert "removed at the end" in (found.problem or "")


def test_deleted_first_row_detected(world: World, chain: list[AuditRecord]) -> None:
    tamper(world.app, lambda c: c.execute(delete(ev).where(_where(chain[0]))))
    found = report(world.app, world.contoso)
    assert not found.ok
    assert found.broken_seq == 2


def test_swapped_rows_detected(world: World, chain: list[AuditRecord]) -> None:
    a, b = chain[2], chain[3]

    def swap(conn: Connection) -> None:
        conn.execute(update(ev).where(ev.c.id == a.id).values(seq=-1))
        conn.execute(update(ev).where(ev.c.id == b.id).values(seq=a.seq))
        conn.execute(update(ev).where(ev.c.id == a.id).values(seq=b.seq))

    tamper(world.app, swap)
    found = report(world.app, world.contoso)
    assert not found.ok
    assert (found.broken_seq, found.broken_id) == (a.seq, b.id)


def test_forged_row_appended_detected(world: World, chain: list[AuditRecord]) -> None:
    last = chain[-1]
    forged = replace(
        last, id="evt_forged", seq=last.seq + 1, prev_hash=last.hash, details={"x": 1}
    ).hashed()  # a perfectly linked record, but the chain head does not know it
    tamper(world.app, lambda c: c.execute(insert(ev).values(_row(forged))))
    found = report(world.app, world.contoso)
    assert not found.ok
    assert "head" in (found.problem or "")


def test_forged_row_inserted_in_the_middle_detected(world: World, chain: list[AuditRecord]) -> None:
    k = 5
    before = chain[k - 2]  # seq k-1
    forged = replace(
        before, id="evt_forged", seq=k, prev_hash=before.hash, details={"note": "all fine"}
    ).hashed()

    def insert_forged(conn: Connection) -> None:
        for rec in reversed(chain[k - 1 :]):  # make room: renumber k.. upwards
            conn.execute(update(ev).where(ev.c.id == rec.id).values(seq=rec.seq + 1))
        conn.execute(insert(ev).values(_row(forged)))

    tamper(world.app, insert_forged)
    found = report(world.app, world.contoso)
    assert not found.ok
    assert (found.broken_seq, found.broken_id) == (k + 1, chain[k - 1].id)


def test_record_moved_to_another_tenant_detected(world: World, chain: list[AuditRecord]) -> None:
    target = chain[-1]
    tamper(
        world.app,
        lambda c: c.execute(update(ev).where(_where(target)).values(tenant_id=world.fabrikam)),
    )
    # contoso lost its last record; fabrikam gained a foreign one
    assert not report(world.app, world.contoso).ok
    with world.app.read() as tx:
        seqs = tx.conn.execute(
            select(ev.c.seq).where(ev.c.tenant_id == world.fabrikam).order_by(ev.c.seq)
        ).all()
    assert seqs  # sanity: the row really moved
    assert not report(world.app, world.fabrikam).ok


def test_cli_audit_verify_exit_codes(world: World, chain: list[AuditRecord]) -> None:
    env = {**os.environ, "LOCKBOX_DATABASE_URL": world.app.db.url, "COLUMNS": "200"}
    env.pop("LOCKBOX_AS", None)
    cmd = [sys.executable, "-m", "lockbox.cli.main", "audit", "verify"]
    ok = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("OK") == 2
    target = chain[4]
    tamper(
        world.app,
        lambda c: c.execute(update(ev).where(_where(target)).values(details='{"forged":true}')),
    )
    broken = subprocess.run(
        [*cmd[:3], "--json", *cmd[3:]], env=env, capture_output=True, text=True, timeout=60
    )
    assert broken.returncode == 1, broken.stderr
    reports = {r["tenant_id"]: r for r in json.loads(broken.stdout)}
    assert reports[world.fabrikam]["ok"] is True
    assert reports[world.contoso]["ok"] is False
    assert reports[world.contoso]["broken_seq"] == target.seq
    assert reports[world.contoso]["broken_id"] == target.id


def test_details_respelled_in_the_database_are_a_change(
    world: World, chain: list[AuditRecord]
) -> None:
    """The stored text is what was hashed: the same value spelled differently (spaces, key
    order, escapes) is a rewrite of the row, and verification says so."""
    target = next(r for r in chain if len(r.details) > 1)
    respelled = json.dumps(target.details, sort_keys=False, ensure_ascii=True, indent=1)
    tamper(
        world.app, lambda c: c.execute(update(ev).where(_where(target)).values(details=respelled))
    )
    found = report(world.app, world.contoso)
    assert not found.ok
    assert (found.broken_seq, found.broken_id) == (target.seq, target.id)
    assert "changed" in (found.problem or "")
