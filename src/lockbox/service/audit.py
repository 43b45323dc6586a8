"""Audit log use cases: query, export and verify a chain (a tenant's, or the provider's own)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime

from lockbox.domain import text
from lockbox.domain.audit import (
    PROVIDER_CHAIN,
    AuditRecord,
    ChainReport,
    format_time,
    verify_chain,
)
from lockbox.domain.errors import ValidationError
from lockbox.domain.ids import optional_id, optional_ref
from lockbox.domain.instants import optional_utc_instant
from lockbox.domain.permissions import Intent, authorize, list_scope
from lockbox.domain.roles import Principal
from lockbox.service.app import Lockbox, Tx
from lockbox.service.tenants import load_tenant
from lockbox.store import repositories as repo

MAX_PAGE = 1000
MAX_SEQ = 2**31 - 1  # the seq column is a 32-bit integer
CSV_COLUMNS = (
    "seq",
    "id",
    "at",
    "actor_id",
    "actor_kind",
    "operation",
    "request_id",
    "details",
    "prev_hash",
    "hash",
)


def resolve_chain(tx: Tx, actor: Principal, ref: str, intent: Intent) -> str:
    """The chain ``ref`` names: ``provider`` (the provider's own actions, for those who may
    read it: ``audit.provider``), else a tenant's, by slug or id, as ``intent`` allows.

    ``provider`` can never be a tenant's id, and new tenants cannot take it as a slug; a
    tenant that had it before stays reachable by its id.
    """
    if ref == PROVIDER_CHAIN:
        authorize(actor, Intent.AUDIT_PROVIDER, kind="provider_audit", tenant_id=None)
        return PROVIDER_CHAIN
    return load_tenant(tx, actor, ref, intent).id


def query(
    app: Lockbox,
    actor: Principal,
    tenant: str,
    *,
    request_id: str | None = None,
    operation: str | None = None,
    actor_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_seq: int = 0,
    limit: int = 100,
) -> tuple[list[AuditRecord], int | None]:
    """One page of a tenant's audit log, oldest first; returns the next ``after_seq`` cursor."""
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationError("limit", f"must be from 1 to {MAX_PAGE}")
    if not isinstance(after_seq, int) or not 0 <= after_seq <= MAX_SEQ:
        raise ValidationError("cursor", "is not a cursor returned by this service")
    since = optional_utc_instant(since, "since")
    until = optional_utc_instant(until, "until")
    optional_id(request_id, "request", "request_id")
    optional_ref(actor_id, "actor_id")
    if operation is not None:
        operation = text.required_text(operation, "operation", max_len=100, multiline=False)
    with app.read() as tx:
        chain = resolve_chain(tx, actor, tenant, Intent.AUDIT_READ)
        records = repo.query_audit(
            tx.conn,
            repo.AuditFilter(
                tenant_id=chain,
                request_id=request_id,
                operation_prefix=operation,
                actor_id=actor_id,
                since=since,
                until=until,
                after_seq=after_seq,
            ),
            limit,
        )
    next_cursor = records[-1].seq if len(records) == limit else None
    return records, next_cursor


def export(app: Lockbox, actor: Principal, tenant: str, fmt: str) -> Iterator[str]:
    """Stream the whole log as JSON Lines or CSV, in chunks, without holding it in memory.

    Permission is checked before the first chunk is produced, so a refused
    export fails cleanly instead of half-way through a response.
    """
    if fmt not in ("jsonl", "csv"):
        raise ValidationError("format", "must be 'jsonl' or 'csv'")
    with app.read() as tx:
        tenant_id = resolve_chain(tx, actor, tenant, Intent.AUDIT_READ)

    def generate() -> Iterator[str]:
        with app.read() as tx:
            if fmt == "csv":
                yield _csv_row(CSV_COLUMNS)
            for record in repo.iter_audit(tx.conn, tenant_id):
                if fmt == "jsonl":
                    yield json.dumps(record.as_dict(), ensure_ascii=False, sort_keys=True) + "\n"
                else:
                    row = record.as_dict()
                    row["details"] = json.dumps(row["details"], ensure_ascii=False, sort_keys=True)
                    row["at"] = format_time(record.at)
                    yield _csv_row([_csv_safe(row[c]) for c in CSV_COLUMNS])

    return generate()


def _csv_row(values: object) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)  # type: ignore[arg-type]
    return buffer.getvalue()


def _csv_safe(value: object) -> str:
    """Neutralise spreadsheet formulas (CSV injection) in text cells."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def verify(app: Lockbox, actor: Principal, tenant: str | None = None) -> list[ChainReport]:
    """Verify one tenant's chain, or every chain the actor may verify."""
    with app.read() as tx:
        if tenant is not None:
            tenant_ids = [resolve_chain(tx, actor, tenant, Intent.AUDIT_VERIFY)]
        else:
            visible, only = list_scope(actor, Intent.AUDIT_VERIFY)
            tenant_ids = [t.id for t in repo.list_tenants(tx.conn, only)] if visible else []
        reports = []
        for tenant_id in tenant_ids:
            reports.append(
                verify_chain(
                    tenant_id,
                    repo.iter_stored_audit(tx.conn, tenant_id),
                    head=repo.audit_head(tx.conn, tenant_id),
                )
            )
    return reports
