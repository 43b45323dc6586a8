"""Request datasets shared by the benchmarks of one run, and cleaned up at its end.

A million-request dataset takes minutes to generate, and two benchmarks need
one per database (the listing only reads it, the sweep changes it), so each is
generated once per run, into SQLite: a pristine file that a changing benchmark
copies. PostgreSQL gets the very same rows copied from that file into one
schema, which the listing reads first and the sweep then consumes (dropping it
afterwards). Everything is removed when the run ends, whatever happened.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.common import Context, progress
from bench.data import People, Shape, copy_from_sqlite, load_requests
from lockbox.store.db import Database, upgrade


def sqlite_pristine(ctx: Context, shape: Shape) -> tuple[Path, People]:
    key = f"sqlite:{shape}"
    if key not in ctx.cache:
        path = ctx.tmp / f"requests-{shape.requests}-{shape.due}-{shape.live}-{shape.seed}.db"
        progress(f"loading SQLite: {shape.describe()}")
        db = Database(f"sqlite:///{path}")
        upgrade(db)
        people = load_requests(db, shape)
        db.dispose()
        ctx.cache[key] = (path, people)
    path, people = ctx.cache[key]
    return path, people


def sqlite_copy(ctx: Context, shape: Shape, name: str) -> tuple[str, People]:
    """A private copy of the dataset (for a benchmark that changes it); the caller deletes it."""
    path, people = sqlite_pristine(ctx, shape)
    target = ctx.tmp / name
    shutil.copyfile(path, target)
    return f"sqlite:///{target}", people


def pg_dataset(ctx: Context, shape: Shape) -> tuple[str, People]:
    """A schema holding the dataset, built on first use; dropped by :func:`pg_release` or at
    the end of the run."""
    key = f"postgresql:{shape}"
    if key not in ctx.cache:
        if ctx.pg_base is None:
            raise RuntimeError(ctx.pg_skip_reason)
        schema = f"lockbox_bench_ds_{shape.requests}_{len(ctx.cache)}"
        _drop(ctx.pg_base, schema)
        _run(ctx.pg_base, f"CREATE SCHEMA {schema}")
        ctx.on_cleanup(lambda: _drop(str(ctx.pg_base), schema))
        url = f"{ctx.pg_base}?options=-csearch_path%3D{schema}"
        path, people = sqlite_pristine(ctx, shape)
        progress(f"copying into PostgreSQL: {shape.describe()}")
        db = Database(url)
        try:
            upgrade(db)
            copy_from_sqlite(str(path), db)
        finally:
            db.dispose()
        ctx.cache[key] = (url, people, schema)
    url, people, _schema = ctx.cache[key]
    return url, people


def pg_release(ctx: Context, shape: Shape) -> None:
    """Drop the dataset now (its last user is done, or changed it)."""
    entry = ctx.cache.pop(f"postgresql:{shape}", None)
    if entry is not None and ctx.pg_base is not None:
        _drop(ctx.pg_base, entry[2])


def _run(base: str, sql: str) -> None:
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def _drop(base: str, schema: str) -> None:
    _run(base, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
