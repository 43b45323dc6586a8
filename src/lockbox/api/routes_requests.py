"""Access requests: submit, query, and every decision of the lifecycle.

Reads return an ``ETag`` (the request's version); every action accepts
``If-Match`` so a client acts only on the version it saw (412 otherwise).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Query, Response

from lockbox.api import contract
from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import (
    IfMatch,
    Instant,
    RequestId,
    conditional,
    cursor_query,
    etag,
    id_query,
    tenant_query,
    user_query,
)
from lockbox.api.schemas import (
    NO_COMMENT,
    CommentBody,
    DecideBody,
    ExtendBody,
    ExtensionDecideBody,
    RequestCreate,
    RequestOut,
    RequestPage,
    ReviewBody,
    StateName,
)
from lockbox.domain.errors import (
    AlreadyDecided,
    DeadlinePassed,
    InvalidTransition,
    NotFound,
    SeparationOfDuties,
)
from lockbox.domain.request import AccessRequest, Narrowing
from lockbox.service import people, requests, views
from lockbox.service.app import Lockbox

router = contract.router(prefix="/v1/requests", tags=["requests"])

#: The ``ETag`` every answer about one request carries (its version).
_ETAG = {
    "ETag": {"description": 'The request\'s version, e.g. `"3"`.', "schema": {"type": "string"}}
}
#: What an action on a request can refuse besides its shape: the person rules, the state.
_ACTION_REFUSALS = contract.raises(
    SeparationOfDuties, InvalidTransition, DeadlinePassed, AlreadyDecided
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


@router.post(
    "",
    status_code=201,
    response_model=RequestOut,
    summary="Submit an access request",
    operation_id="submitRequest",
    responses={201: {"headers": {**_ETAG, "Location": {"schema": {"type": "string"}}}}},
)
@contract.raises(NotFound, SeparationOfDuties, InvalidTransition)
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
        category=body.category,
        starts_at=body.starts_at,
    )
    response.headers["Location"] = f"/v1/requests/{created.id}"
    return _written(lockbox, created, response)


@router.get(
    "",
    response_model=RequestPage,
    summary="Requests you can see, newest first",
    description="Filters combine with AND; `state` may repeat (OR). The state filter uses "
    "the effective state (deadlines applied). Continue with `cursor=<next_cursor>`.",
    operation_id="listRequests",
)
@contract.raises(NotFound)
def list_requests(
    lockbox: LockboxDep,
    principal: PrincipalDep,
    tenant: Annotated[str | None, tenant_query()] = None,
    state: Annotated[
        list[StateName] | None,
        Query(max_length=10, description="Effective state; repeat for any of several."),
    ] = None,
    requester: Annotated[str | None, user_query("Requester id or e-mail.")] = None,
    case: Annotated[str | None, id_query("case", "Support case id (`case_…`).")] = None,
    created_after: Annotated[Instant | None, Query(description="Created at or after.")] = None,
    created_before: Annotated[Instant | None, Query(description="Created before.")] = None,
    limit: Annotated[int, Query(ge=1, le=requests.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, cursor_query()] = None,
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
    operation_id="getRequest",
    responses={200: {"headers": _ETAG}},
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
    named = people.in_request(view.request, view.history) | set(view.can_approve)
    found = people.resolve(lockbox, named)
    return {**data, "people": people.as_map(found)}


@router.post(
    "/{request_id}/review",
    response_model=RequestOut,
    summary="Manager review: approve (forward) or reject",
    description=_ACTION_DOC,
    operation_id="reviewRequest",
    responses={200: {"headers": _ETAG}},
)
@_ACTION_REFUSALS
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
    operation_id="decideRequest",
    responses={200: {"headers": _ETAG}},
)
@_ACTION_REFUSALS
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
            narrow=Narrowing.of(
                resources=body.resources,
                access_level=body.access_level,
                access_window_seconds=body.access_window_seconds,
            ),
        ),
    )
    return _written(lockbox, done, response)


@router.post(
    "/{request_id}/extend",
    response_model=RequestOut,
    summary="Ask for more time on granted access (the requester)",
    description="The customer approves it like the request (the policy's extension stages), "
    "or it is granted at once when the tenant's lockbox is off. " + _ACTION_DOC,
    operation_id="extendRequest",
    responses={200: {"headers": _ETAG}},
)
@_ACTION_REFUSALS
def extend_request(
    request_id: RequestId,
    body: ExtendBody,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    response: Response,
    if_match: IfMatch = None,
) -> Any:
    done = conditional(
        if_match,
        lambda expected: requests.extend_request(
            lockbox,
            principal,
            request_id,
            by=timedelta(seconds=body.by_seconds),
            reason=body.reason,
            expected_version=expected,
        ),
    )
    return _written(lockbox, done, response)


@router.post(
    "/{request_id}/extension/decide",
    response_model=RequestOut,
    summary="Customer decision on an extension: approve or deny",
    description=_ACTION_DOC,
    operation_id="decideExtension",
    responses={200: {"headers": _ETAG}},
)
@_ACTION_REFUSALS
def decide_extension(
    request_id: RequestId,
    body: ExtensionDecideBody,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    response: Response,
    if_match: IfMatch = None,
) -> Any:
    done = conditional(
        if_match,
        lambda expected: requests.decide_extension(
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
        body: CommentBody = NO_COMMENT,
        if_match: IfMatch = None,
    ) -> Any:
        comment = body.comment
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
        _ACTION_REFUSALS(handler),
        methods=["POST"],
        response_model=RequestOut,
        summary=summary,
        description=_ACTION_DOC,
        operation_id=f"{how}Request",
        responses={200: {"headers": _ETAG}},
    )


_end("cancel", "Withdraw your own pending request")
_end("close", "End granted access: the work is done (requester or manager)")
_end("revoke", "End granted access early (tenant approver or admin)")
