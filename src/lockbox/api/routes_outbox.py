"""``/v1/outbox``: the notification outbox for operators (provider admin): list, show, retry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import LINE, MessageId, id_query, ref_query
from lockbox.service import outbox

router = APIRouter(prefix="/v1/outbox", tags=["outbox"])


@router.get("", summary="List outbox messages, newest first")
def list_outbox(
    lockbox: LockboxDep,
    principal: PrincipalDep,
    status: Annotated[
        str | None,
        Query(description="pending, sent, failed (parked) or skipped", max_length=20, pattern=LINE),
    ] = None,
    tenant: Annotated[str | None, ref_query("tenant id or slug")] = None,
    request_id: Annotated[str | None, id_query("Only this request's messages.")] = None,
    limit: Annotated[int, Query(ge=1, le=outbox.MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=500, pattern=r"^[A-Za-z0-9_-]+$")] = None,
) -> dict[str, Any]:
    rows, next_cursor = outbox.list_outbox(
        lockbox,
        principal,
        status=status,
        tenant=tenant,
        request_id=request_id,
        limit=limit,
        cursor=cursor,
    )
    return {"items": [outbox.view(r) for r in rows], "next_cursor": next_cursor}


@router.get("/{message_id}", summary="One outbox message, with its payload")
def get_message(
    lockbox: LockboxDep, principal: PrincipalDep, message_id: MessageId
) -> dict[str, Any]:
    return outbox.view(outbox.get_message(lockbox, principal, message_id), payload=True)


@router.post("/{message_id}/retry", summary="Re-queue a parked (failed) message")
def retry_message(
    lockbox: LockboxDep, principal: PrincipalDep, message_id: MessageId
) -> dict[str, Any]:
    return outbox.view(outbox.retry_message(lockbox, principal, message_id))
