"""``/v1/outbox``: the notification outbox for operators (provider admin): list, show, count,
retry. To anyone else the outbox does not exist (404), like an object they may not see."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query

from lockbox.api import contract
from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import MessageId, cursor_query, id_query, tenant_query
from lockbox.api.schemas import OutboxMessageOut, OutboxPage, OutboxStats
from lockbox.domain.errors import InvalidTransition, NotFound
from lockbox.service import outbox

router = contract.router(prefix="/v1/outbox", tags=["outbox"])

#: The statuses of a message (``tests/api/test_contract.py`` keeps them the store's).
OutboxStatus = Literal["pending", "sent", "failed", "skipped"]


@router.get(
    "",
    response_model=OutboxPage,
    summary="List outbox messages, newest first",
    operation_id="listOutbox",
)
@contract.raises(NotFound)
def list_outbox(
    lockbox: LockboxDep,
    principal: PrincipalDep,
    status: Annotated[
        OutboxStatus | None, Query(description="`failed`: parked after the last attempt.")
    ] = None,
    tenant: Annotated[str | None, tenant_query()] = None,
    request_id: Annotated[str | None, id_query("request", "Only this request's messages.")] = None,
    limit: Annotated[int, Query(ge=1, le=outbox.MAX_PAGE)] = 100,
    cursor: Annotated[str | None, cursor_query()] = None,
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


@router.get(
    "/stats",
    response_model=OutboxStats,
    summary="How many messages are in each status",
    description="The counts `lockbox outbox stats` prints: a growing `failed` count means "
    "deliveries are being parked.",
    operation_id="getOutboxStats",
)
@contract.raises(NotFound)
def outbox_stats(lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, int]:
    return outbox.counts(lockbox, principal)


@router.get(
    "/{message_id}",
    response_model=OutboxMessageOut,
    summary="One outbox message, with its payload",
    operation_id="getOutboxMessage",
)
def get_message(
    lockbox: LockboxDep, principal: PrincipalDep, message_id: MessageId
) -> dict[str, Any]:
    return outbox.view(outbox.get_message(lockbox, principal, message_id), payload=True)


@router.post(
    "/{message_id}/retry",
    response_model=OutboxMessageOut,
    summary="Re-queue a parked (failed) message",
    description="409 with the message's `state` (its status) unless it is `failed`.",
    operation_id="retryOutboxMessage",
)
@contract.raises(InvalidTransition)
def retry_message(
    lockbox: LockboxDep, principal: PrincipalDep, message_id: MessageId
) -> dict[str, Any]:
    return outbox.view(outbox.retry_message(lockbox, principal, message_id))
