"""Helpers shared by the benchmarks: a populated database and a timer."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lockbox.clock import ManualClock
from lockbox.domain.roles import Principal
from lockbox.service import cases, tenants, users
from lockbox.service.app import Lockbox
from lockbox.store.db import Database, upgrade


@dataclass
class Setup:
    app: Lockbox
    clock: ManualClock
    engineer: Principal
    manager: Principal
    approver: Principal
    case_id: str


def make_setup(url: str | None = None) -> Setup:
    if url is None:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='lockbox-bench-')) / 'bench.db'}"
    db = Database(url)
    upgrade(db)
    clock = ManualClock()
    app = Lockbox(db, clock)
    op = Principal.operator()
    tenants.create_tenant(app, op, slug="contoso", name="Contoso")
    eng = users.create_user(app, op, email="e@p.test", roles=["engineer"]).principal()
    mgr = users.create_user(app, op, email="m@p.test", roles=["manager"]).principal()
    appr = users.create_user(
        app, op, email="a@c.test", roles=["approver"], tenant="contoso"
    ).principal()
    case = cases.open_case(app, eng, tenant="contoso", title="bench")
    return Setup(app, clock, eng, mgr, appr, case.id)


def timed(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time of ``repeat`` runs, in seconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def report(
    name: str, value: float, unit: str, baseline: float | None = None, note: str = ""
) -> None:
    ratio = f"  ({value / baseline:.2f}x baseline)" if baseline else ""
    print(f"  {name:<48} {value:>12.1f} {unit}{ratio} {note}")
