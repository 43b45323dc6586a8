"""Signing under concurrency (issue #12): decisions on several tenants sign checkpoints and
receipts while audit keys rotate, on SQLite and PostgreSQL, with the real clock.

The lock order (the audit key before the audit heads; a rotation takes the key
exclusively, then the provider chain's head) must never deadlock, and no
statement may be signed by a key that a committed rotation says was already
retired: every checkpoint and receipt Lockbox kept must verify with the
published keys afterwards.
"""

from __future__ import annotations

import threading

from sqlalchemy import select

import lockbox.verify as independent
from lockbox.access.keys import AUDIT
from lockbox.clock import SystemClock
from lockbox.domain.errors import Conflict
from lockbox.service import access, audit, cases, checkpoints, requests
from lockbox.service.app import Lockbox
from lockbox.store import receipts as receipt_store
from lockbox.store import tables as t
from tests.conftest import World
from tests.integration.helpers import MAILBOX
from tests.integration.trust_helpers import OPERATOR

ROUNDS = 6


def test_decisions_and_rotations_at_once(world: World) -> None:
    app = Lockbox(world.app.db, SystemClock())
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def decide(tenant: str, approver: object) -> None:
        start.wait(timeout=30)
        for _ in range(ROUNDS):
            try:
                case = cases.open_case(app, world.engineer, tenant=tenant, title="t")
                req = requests.submit_request(
                    app,
                    world.engineer,
                    tenant=tenant,
                    case_id=case.id,
                    resources=[MAILBOX],
                    access_level="read",
                    justification="j",
                )
                requests.review_request(app, world.manager, req.id, approve=True)
                requests.decide_request(app, approver, req.id, approve=True)  # type: ignore[arg-type]
            except Conflict as exc:
                _deadlock(exc, errors)  # a lost race is an answer; a deadlock is a bug
            except BaseException as exc:
                errors.append(exc)

    def rotate() -> None:
        start.wait(timeout=30)
        for _ in range(ROUNDS):
            try:
                access.rotate_keys(app, world.provider_admin, purpose=AUDIT)
            except Conflict as exc:
                _deadlock(exc, errors)
            except BaseException as exc:
                errors.append(exc)

    threads = [
        threading.Thread(target=decide, args=(world.contoso, world.contoso_approver)),
        threading.Thread(target=decide, args=(world.fabrikam, world.fabrikam_approver)),
        threading.Thread(target=decide, args=(world.contoso, world.contoso_approver2)),
        threading.Thread(target=rotate),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"
    assert errors == [], errors

    keys = independent.load_keys(checkpoints.keys_document(app))
    assert len(keys) > 1
    with app.read() as tx:
        kept = [
            (r.tenant_id, r.seq, r.hash, r.kid)
            for r in tx.conn.execute(select(t.audit_checkpoints)).all()
        ]
        receipt_rows = [r.id for r in tx.conn.execute(select(t.decision_receipts.c.id)).all()]
    items: list[dict[str, object]] = []
    for chain in {c for c, *_ in kept}:
        page, cursor = checkpoints.history(app, OPERATOR, chain, limit=200)
        while True:
            items += [v.checkpoint.document() for v in page]
            if cursor is None:
                break
            page, cursor = checkpoints.history(app, OPERATOR, chain, limit=200, cursor=cursor)
    assert len(items) == len(kept)
    for document in items:
        independent.checkpoint(document, keys)  # raises if signed after its key's retirement
    assert receipt_rows
    with app.read() as tx:
        for receipt_id in receipt_rows:
            found = receipt_store.get(tx.conn, receipt_id)
            assert found is not None
            independent.receipt(found.document(), keys)
    for tenant in (world.contoso, world.fabrikam):
        assert audit.verify(app, OPERATOR, tenant)[0].ok
        held = [d for d in items if d["checkpoint"]["tenant"] == tenant]  # type: ignore[index]
        assert checkpoints.verify_with_checkpoints(app, OPERATOR, tenant, held).ok


def _deadlock(exc: Conflict, errors: list[BaseException]) -> None:
    if getattr(getattr(exc.__cause__, "orig", None), "sqlstate", None) == "40P01":
        errors.append(exc.__cause__ or exc)
