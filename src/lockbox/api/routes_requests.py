"""Access requests: submit, query, and every decision of the lifecycle.

Reads return an ``ETag`` (the request's version); every action accepts
``If-Match`` so a client acts only on the version it saw (412 otherwise).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import IfMatch, Instant, RequestId, conditional, etag, ref_query
from lockbox.api.schemas import (
    PROBLEM_RESPONSES,
    CommentBody,
    DecideBody,
    RequestCreate,
    RequestOut,
    RequestPage,
    ReviewBody,
)
from lockbox.domain.errors import require
from lockbox.domain.lifecycle import State
from lockbox.domain.request import AccessRequest
from lockbox.service import people, requests, views
from lockbox.service.app import Lockbox

router = APIRouter(prefix="/v1/requests", tags=["requests"], responses=PROBLEM_RESPONSES)

StateName = Literal[
    "pending_review",
    "pending_approval",
    "approved",
    "rejected",
    "denied",
    "canceled",
    "expired",
    "closed",
    "revoked",
    "access_ended",
]
require(
    set(StateName.__args__) == {s.value for s in State},  # type: ignore[attr-defined]
    "StateName must list every State",
)

_ACTION_DOC = (
    "Send `If-Match` with the ETag you read to act only on that version (412 if it "
    "changed). 409 with the current `state` if the request is not in a state that allows "
    "this; 403 if your roles or the separation-of-duties rules do not allow it."
)


def _written(lockbox: Lockbox, request: AccessRequest, response: Response) -> Any:
    """The answer to an action: the request as the use case wrote it (no second read)."""
    response.headers["ETag"] = etag(request.version)
    return views.request(requests.RequestView.of(request, lockbox.now()))


@router.post("", status_code=201, response_model=RequestOut, summary="Submit an access request")
def submit_request(
    body: RequestCreate, lockbox: LockboxDep, principal: PrincipalDep, response: Response
) -> Any:
    created = requests.submit_request(
        lockbox,
        principal,
        tenant=body.tenant,
        case_id=body.case_id,
        resources=list(body.resources),
        access_level=body.access_level,
        justification=body.justification,
    )
    response.headers["Location"] = f"/v1/requests/{created.id}"
    return _written(lockbox, created, response)


@router.get(
    "",
    response_model=RequestPage,
    summary="Requests you can see, newest first",
    description="Filters combine with AND; `state` may repeat (OR). The state filter uses "
    "the effective state (deadlines applied). Continue with `cursor=<next_cursor>`.",
)
def list_requests(
    lockbox: LockboxDep,
    principal: PrincipalDep,
    tenant: Annotated[str | None, ref_query("Tenant slug or id.")] = None,
    state: Annotated[list[StateName] | None, Query(max_length=10)] = None,
    requester: Annotated[str | None, ref_query("Requester id or e-mail.")] = None,
    case: Annotated[str | None, ref_query("Support case id.")] = None,
    created_after: Annotated[Instant | None, Query()] = None,
    created_before: Annotated[Instant | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=requests.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=500, pattern=r"^[A-Za-z0-9_-]+$")] = None,
) -> dict[str, Any]:
    page = requests.list_requests(
        lockbox,
        principal,
        tenant=tenant,
        states=list(state or []),
        requester=requester,
        case_id=case,
        created_after=created_after,
        created_before=created_before,
        limit=limit,
        cursor=cursor,
    )
    return {"items": [views.request(v) for v in page.items], "next_cursor": page.next_cursor}


@router.get(
    "/{request_id}",
    response_model=RequestOut,
    summary="One request, and (with ?history=true) its history",
    response_description="The request; the ETag header carries its version.",
)
def get_request(
    request_id: RequestId,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    response: Response,
    history: Annotated[
        bool,
        Query(
            description=f"Include the first {requests.HISTORY_LIMIT} audit records of the "
            "request (`history_truncated` says if there are more: page them with "
            "`GET /v1/tenants/{tenant}/audit?request_id=`)."
        ),
    ] = False,
) -> Any:
    view = requests.get_request(lockbox, principal, request_id, history=history)
    response.headers["ETag"] = etag(view.request.version)
    data = views.request(view, history=history)
    found = people.resolve(lockbox, people.in_request(view.request, view.history))
    return {**data, "people": people.as_map(found)}


@router.post(
    "/{request_id}/review",
    response_model=RequestOut,
    summary="Manager review: approve (forward) or reject",
    description=_ACTION_DOC,
)
def review_request(
    request_id: RequestId,
    body: ReviewBody,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    response: Response,
    if_match: IfMatch = None,
) -> Any:
    done = conditional(
        if_match,
        lambda expected: requests.review_request(
            lockbox,
            principal,
            request_id,
            approve=body.decision == "approve",
            comment=body.comment,
            expected_version=expected,
        ),
    )
    return _written(lockbox, done, response)


@router.post(
    "/{request_id}/decide",
    response_model=RequestOut,
    summary="Customer decision: approve or deny",
    description=_ACTION_DOC,
)
def decide_request(
    request_id: RequestId,
    body: DecideBody,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    response: Response,
    if_match: IfMatch = None,
) -> Any:
    done = conditional(
        if_match,
        lambda expected: requests.decide_request(
            lockbox,
            principal,
            request_id,
            approve=body.decision == "approve",
            comment=body.comment,
            expected_version=expected,
        ),
    )
    return _written(lockbox, done, response)


def _end(how: str, summary: str) -> None:
    action = {
        "cancel": requests.cancel_request,
        "close": requests.close_request,
        "revoke": requests.revoke_request,
    }[how]

    def handler(
        request_id: RequestId,
        lockbox: LockboxDep,
        principal: PrincipalDep,
        response: Response,
        body: CommentBody | None = None,
        if_match: IfMatch = None,
    ) -> Any:
        comment = body.comment if body else None
        done = conditional(
            if_match,
            lambda expected: action(
                lockbox, principal, request_id, comment=comment, expected_version=expected
            ),
        )
        return _written(lockbox, done, response)

    handler.__name__ = f"{how}_request"
    router.add_api_route(
        f"/{{request_id}}/{how}",
        handler,
        methods=["POST"],
        response_model=RequestOut,
        summary=summary,
        description=_ACTION_DOC,
    )


_end("cancel", "Withdraw your own pending request")
_end("close", "End granted access: the work is done (requester or manager)")
_end("revoke", "End granted access early (tenant approver or admin)")
