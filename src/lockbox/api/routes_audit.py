"""A tenant's tamper-evident audit log: query, export (streamed), verify."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import Instant, TenantRef, ref_query
from lockbox.api.schemas import PROBLEM_RESPONSES, AuditPage, ChainReportList, ChainReportOut
from lockbox.domain.errors import ValidationError
from lockbox.service import audit, people, views

router = APIRouter(prefix="/v1", tags=["audit"], responses=PROBLEM_RESPONSES)

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
)
def query_audit(
    tenant: TenantRef,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    request_id: Annotated[str | None, ref_query("Only this request's records.")] = None,
    operation: Annotated[str | None, ref_query("Operation prefix, e.g. request.")] = None,
    actor_id: Annotated[str | None, ref_query("Only this actor's records.")] = None,
    since: Annotated[Instant | None, Query()] = None,
    until: Annotated[Instant | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
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
    responses={
        200: {
            "content": {
                "application/x-ndjson": {"example": '{"seq": 1, "operation": "tenant.created"}\n'},
                "text/csv": {"example": "seq,id,at,actor_id,…\n"},
            }
        }
    },
)
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
)
def verify_tenant(tenant: TenantRef, lockbox: LockboxDep, principal: PrincipalDep) -> Any:
    return views.chain_report(audit.verify(lockbox, principal, tenant)[0])


@router.get(
    "/audit/verify",
    response_model=ChainReportList,
    summary="Verify every chain you may verify",
)
def verify_all(lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    return {"items": [views.chain_report(r) for r in audit.verify(lockbox, principal)]}
