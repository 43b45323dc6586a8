"""The one results table: every benchmark's rows, printed and written as JSON.

A row is judged against its target by the benchmark that produced it (targets
differ in kind: an absolute rate, a ratio to a baseline, a latency bound), so
the reporter only lays rows out. Every figure travels with the baseline it was
measured against in the same run, because on a shared two-core machine an
absolute number means little on its own.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PASS, FAIL, INFO, SKIP, ERROR = "PASS", "FAIL", "info", "SKIP", "ERROR"


@dataclass
class Row:
    """One measured figure, its same-run baseline, and the verdict against its target."""

    benchmark: str  # the module (``decide``, ``http`` …), what ``--only`` selects
    case: str  # what exactly was measured
    size: str  # the data size it was measured on
    figure: float | None
    unit: str  # "/s", "ms", "s", "MB", "" …
    baseline: float | None = None
    baseline_label: str = ""  # what the baseline is
    target: str = ""
    result: str = INFO  # PASS, FAIL, info, SKIP, ERROR
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.figure is None or not self.baseline:
            return None
        return self.figure / self.baseline


def verdict(ok: bool) -> str:
    return PASS if ok else FAIL


def fmt(value: float | None, unit: str) -> str:
    """A figure in a form people read at a glance: thousands separated, 3 significant digits."""
    if value is None:
        return "-"
    if unit == "/s":
        return f"{value:,.0f}/s" if value >= 100 else f"{value:,.1f}/s"
    if unit in ("ms", "s", "MB"):
        if value >= 100:
            return f"{value:,.0f} {unit}"
        if value >= 10:
            return f"{value:.1f} {unit}"
        return f"{value:.2f} {unit}"
    if unit == "":
        return f"{value:,.1f}" if value != int(value) else f"{int(value):,}"
    return f"{value:,.3g} {unit}"


def _ratio(row: Row) -> str:
    r = row.ratio
    return "-" if r is None else f"{r:.2f}x"


COLUMNS = ("benchmark", "data size", "figure", "baseline", "ratio", "target", "result")


def table_lines(rows: list[Row]) -> list[str]:
    """The table, then numbered notes (what each baseline is, secondary figures)."""
    cells: list[tuple[str, ...]] = []
    notes: list[str] = []
    for row in rows:
        marks = []
        row_notes = ([f"baseline: {row.baseline_label}"] if row.baseline_label else []) + list(
            row.notes
        )
        for note in row_notes:
            notes.append(note)
            marks.append(str(len(notes)))
        name = f"{row.benchmark}: {row.case}"
        if marks:
            name += f" [{','.join(marks)}]"
        cells.append(
            (
                name,
                row.size,
                fmt(row.figure, row.unit),
                fmt(row.baseline, row.unit) if row.baseline is not None else "-",
                _ratio(row),
                row.target or "-",
                row.result,
            )
        )
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(COLUMNS)]
    right = {2, 3, 4}

    def line(values: tuple[str, ...]) -> str:
        parts = [
            v.rjust(widths[i]) if i in right else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "| " + " | ".join(parts) + " |"

    out = [line(COLUMNS), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(c) for c in cells]
    if notes:
        out.append("")
        out += [f"[{i}] {n}" for i, n in enumerate(notes, 1)]
    return out


# -- the machine, so a figure can be read next to what produced it ------------------------


def _cpu_model() -> str:
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _command_version(command: list[str], pattern: str) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(pattern, done.stdout + done.stderr)
    return match.group(1) if match else None


def machine(postgres_version: str | None) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    def package(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version,
        "wrk": _command_version(["wrk", "--version"], r"wrk (\S+)"),
        "casbin": package("casbin"),
        "sqlalchemy": package("sqlalchemy"),
        "uvicorn": package("uvicorn"),
        "platform": platform.platform(),
    }


def write_json(
    rows: list[Row], meta: dict[str, Any], directory: Path, started: datetime
) -> tuple[Path, Path]:
    """``latest.json`` plus a timestamped copy, so runs can be compared over time."""
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        **meta,
        "rows": [
            {**asdict(r), "ratio": r.ratio, "figure_text": fmt(r.figure, r.unit)} for r in rows
        ],
    }
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    latest = directory / "latest.json"
    dated = directory / f"bench-{stamp}.json"
    latest.write_text(text)
    dated.write_text(text)
    return latest, dated
