"""``python -m bench``: run the benchmarks of issue #10 and print one table.

Each benchmark is a module ``bench/bench_<name>.py`` with ``run(ctx) -> list[Row]``;
every row carries its figure, the same-run baseline, the target and a verdict.
The table goes to stdout (progress to stderr) and, with the machine it was
measured on, to ``var/bench/latest.json`` plus a timestamped copy.

Options: ``--only NAME[,NAME…]`` runs some benchmarks (``--list`` names them),
``--quick`` shrinks every data size for a smoke run (its verdicts mean little),
``--strict`` exits non-zero when a target is missed (by default only a broken
benchmark does: benchmarks report, tests assert).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from bench.common import REPO, cleanup_context, make_context, postgres_version, progress
from bench.report import ERROR, FAIL, Row, machine, table_lines, write_json

#: Run order (spec numbers in brackets). Listing runs before the sweep so both share one
#: million-request dataset per database: listing only reads it, the sweep then changes it.
BENCHMARKS = (
    "decide",  # 1
    "verify",  # 2
    "http",  # 3
    "lifecycle",  # 4
    "audit",  # 6
    "listing",  # 7
    "sweep",  # 5
    "feed",  # 8
    "scaleout",  # 9
)
#: Table order: the issue's numbering.
TABLE_ORDER = (
    "decide",
    "verify",
    "http",
    "lifecycle",
    "sweep",
    "audit",
    "listing",
    "feed",
    "scaleout",
)


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"bench.bench_{name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME[,NAME]")
    parser.add_argument("--quick", action="store_true", help="small data sizes (smoke run)")
    parser.add_argument("--list", action="store_true", help="name the benchmarks and stop")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--seed", type=int, default=20250602)
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench")
    args = parser.parse_args(argv)
    if args.list:
        for name in TABLE_ORDER:
            doc = (_module(name).__doc__ or "").strip().splitlines()[0]
            print(f"{name:<10} {doc}")
        return 0
    only = [n.strip() for part in args.only for n in part.split(",") if n.strip()]
    unknown = sorted(set(only) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; one of {', '.join(BENCHMARKS)}")
    selected = [n for n in BENCHMARKS if not only or n in only]

    started = datetime.now(UTC)
    ctx = make_context(args.quick, args.seed)
    load_before = os.getloadavg()
    rows: dict[str, list[Row]] = {}
    durations: dict[str, float] = {}
    try:
        for name in selected:
            print(f"== {name}", file=sys.stderr, flush=True)
            begin = time.perf_counter()
            try:
                rows[name] = _module(name).run(ctx)
            except Exception as exc:  # one broken benchmark must not hide the others
                traceback.print_exc()
                rows[name] = [
                    Row(name, "(failed)", "-", None, "", result=ERROR, notes=[repr(exc)[:300]])
                ]
            durations[name] = time.perf_counter() - begin
            progress(f"{name}: {durations[name]:.0f} s")
        pg_version = postgres_version(ctx)
    finally:
        for cleanup in ctx.cache.get("cleanups", []):
            cleanup()
        cleanup_context(ctx)

    ordered = [r for name in TABLE_ORDER for r in rows.get(name, [])]
    lines = table_lines(ordered)
    print("\n".join(lines))
    meta = {
        "started": started.isoformat(),
        "quick": args.quick,
        "seed": args.seed,
        "only": only,
        "durations_s": {k: round(v, 1) for k, v in durations.items()},
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "machine": machine(pg_version),
    }
    latest, dated = write_json(ordered, meta, args.out, started)
    m = meta["machine"]
    print(
        f"\n{m['nproc']} cores, {m['cpu']}; Python {m['python']}; SQLite {m['sqlite']}; "
        f"PostgreSQL {m['postgresql'] or '-'}; load average {load_before[0]:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after. Written to {latest.relative_to(REPO) if latest.is_relative_to(REPO) else latest} "
        f"and {dated.name}."
    )
    if any(r.result == ERROR for r in ordered):
        return 2
    if args.strict and any(r.result == FAIL for r in ordered):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
