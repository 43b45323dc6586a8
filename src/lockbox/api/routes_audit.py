"""A tenant's tamper-evident audit log: query, export (streamed), verify."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.responses import StreamingResponse

from lockbox.api import contract
from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import ACTOR_REF, LINE_TEXT, Instant, TenantRef, decimal_up_to, id_query
from lockbox.api.schemas import AuditPage, ChainReportList, ChainReportOut
from lockbox.domain.errors import PermissionDenied, ValidationError
from lockbox.service import audit, people, views

router = contract.router(prefix="/v1", tags=["audit"])
#: An audit page's cursor: the sequence number of the last record seen.
AUDIT_CURSOR = decimal_up_to(audit.MAX_SEQ)

_MEDIA = {"jsonl": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8"}


def _after_seq(cursor: str | None) -> int:
    if cursor is None:
        return 0
    # ASCII digits only ('²'.isdigit() is true); the range is the service's to check.
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 10:
        raise ValidationError("cursor", "is not a cursor returned by this service")
    return int(cursor)


@router.get(
    "/tenants/{tenant}/audit",
    response_model=AuditPage,
    summary="A page of the tenant's audit log, oldest first",
    description="Filters combine with AND; `operation` is a prefix (`request.`, `policy.`). "
    "Continue with `cursor=<next_cursor>`.",
    operation_id="queryAudit",
)
@contract.raises(PermissionDenied)
def query_audit(
    tenant: TenantRef,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    request_id: Annotated[str | None, id_query("request", "Only this request's records.")] = None,
    operation: Annotated[
        str | None,
        Query(description="Operation prefix, e.g. `request.`", max_length=100, pattern=LINE_TEXT),
    ] = None,
    actor_id: Annotated[
        str | None,
        Query(
            description="Only this actor's records: a user id, `system` or `operator`.",
            pattern=ACTOR_REF,
        ),
    ] = None,
    since: Annotated[Instant | None, Query(description="At or after.")] = None,
    until: Annotated[Instant | None, Query(description="Before.")] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 100,
    cursor: Annotated[
        str | None,
        Query(description="`next_cursor` of the previous page.", pattern=AUDIT_CURSOR),
    ] = None,
) -> dict[str, Any]:
    records, next_seq = audit.query(
        lockbox,
        principal,
        tenant,
        request_id=request_id,
        operation=operation,
        actor_id=actor_id,
        since=since,
        until=until,
        after_seq=_after_seq(cursor),
        limit=limit,
    )
    return {
        "items": [views.audit_record(r) for r in records],
        "next_cursor": str(next_seq) if next_seq is not None else None,
        "people": people.as_map(people.resolve(lockbox, people.in_records(records))),
    }


@router.get(
    "/tenants/{tenant}/audit/export",
    summary="The whole audit log, streamed as JSON Lines or CSV",
    response_class=StreamingResponse,
    operation_id="exportAudit",
    responses={
        200: {
            "description": "The log, one record per line (JSON Lines) or row (CSV).",
            "content": {
                "application/x-ndjson": {
                    "schema": {"type": "string"},
                    "example": '{"seq": 1, "operation": "tenant.created"}\n',
                },
                "text/csv": {"schema": {"type": "string"}, "example": "seq,id,at,actor_id,…\n"},
            },
        }
    },
)
@contract.raises(PermissionDenied)
def export_audit(
    tenant: TenantRef,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    format: Annotated[Literal["jsonl", "csv"], Query()] = "jsonl",
) -> StreamingResponse:
    chunks = audit.export(lockbox, principal, tenant, format)  # checks permission first
    filename = f"audit-{tenant}.{format}"
    return StreamingResponse(
        (chunk.encode("utf-8") for chunk in chunks),
        media_type=_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/tenants/{tenant}/audit/verify",
    response_model=ChainReportOut,
    summary="Verify the tenant's hash chain",
    operation_id="verifyTenantAudit",
)
@contract.raises(PermissionDenied)
def verify_tenant(tenant: TenantRef, lockbox: LockboxDep, principal: PrincipalDep) -> Any:
    return views.chain_report(audit.verify(lockbox, principal, tenant)[0])


@router.get(
    "/audit/verify",
    response_model=ChainReportList,
    summary="Verify every chain you may verify",
    operation_id="verifyAudit",
)
def verify_all(lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    return {"items": [views.chain_report(r) for r in audit.verify(lockbox, principal)]}
