"""Denied checks are audited in batches off the request path: every one counted, none lost."""

from __future__ import annotations

import threading

from lockbox.service import access, audit
from lockbox.service.denials import DenialRecorder
from tests.access.helpers import ALICE, BOB, approved
from tests.conftest import World


def test_a_burst_of_denials_is_coalesced_counted_and_never_blocks_an_allowed_check(
    world: World,
) -> None:
    from dataclasses import replace

    approved(world)
    recorder = DenialRecorder(world.app, linger=0.01)
    app = replace(world.app, denials=recorder)
    answers: list[bool] = []

    def check(resource: str) -> None:
        result = access.check(
            app,
            world.service,
            engineer=world.engineer.id,
            tenant="contoso",
            resource=resource,
            action="read",
        )
        answers.append(result.allowed)

    threads = [threading.Thread(target=check, args=(BOB,)) for _ in range(40)]
    threads += [threading.Thread(target=check, args=(ALICE,)) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers.count(True) == 10 and answers.count(False) == 40
    assert recorder.close(timeout=30)
    records = [
        r
        for r in audit.query(world.app, world.contoso_auditor, "contoso", limit=1000)[0]
        if r.operation == "access.check_denied"
    ]
    assert sum(r.details.get("count", 1) for r in records) == 40
    assert len(records) < 40  # identical denials of a batch became one record
    assert all(
        r.details["resource"] == BOB and r.details["reason"] == "out_of_scope" for r in records
    )
    assert recorder.stats["written"] == 40 and recorder.stats["dropped"] == 0
    assert all(r.ok for r in audit.verify(world.app, world.provider_admin))
