"""Support cases: every access request hangs off one."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query, Response

from lockbox.api import contract
from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import CaseId, tenant_query
from lockbox.api.schemas import (
    NO_COMMENT,
    CaseCreate,
    CaseList,
    CaseOut,
    ClosedCaseOut,
    CommentBody,
)
from lockbox.domain.errors import InvalidTransition, NotFound
from lockbox.service import cases, views

router = contract.router(prefix="/v1/cases", tags=["cases"])


@router.post(
    "",
    status_code=201,
    response_model=CaseOut,
    summary="Open a support case",
    description="Engineers open cases for themselves; a manager opens one for an engineer "
    "(`engineer` is then required unless the manager is an engineer too).",
    operation_id="openCase",
    responses={201: {"headers": {"Location": {"schema": {"type": "string"}}}}},
)
@contract.raises(NotFound)
def open_case(
    body: CaseCreate, lockbox: LockboxDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    case = cases.open_case(
        lockbox,
        principal,
        tenant=body.tenant,
        title=body.title,
        engineer=body.engineer,
        reference=body.reference,
    )
    response.headers["Location"] = f"/v1/cases/{case.id}"
    return views.case(case)


@router.get(
    "", response_model=CaseList, summary="Support cases you can see", operation_id="listCases"
)
@contract.raises(NotFound)
def list_cases(
    lockbox: LockboxDep,
    principal: PrincipalDep,
    tenant: Annotated[str | None, tenant_query()] = None,
    status: Annotated[Literal["open", "closed"] | None, Query()] = None,
) -> dict[str, Any]:
    found = cases.list_cases(lockbox, principal, tenant=tenant, status=status)
    return {"items": [views.case(c) for c in found]}


@router.get(
    "/{case_id}", response_model=CaseOut, summary="One support case", operation_id="getCase"
)
def get_case(case_id: CaseId, lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    return views.case(cases.get_case(lockbox, principal, case_id))


@router.post(
    "/{case_id}/close",
    response_model=ClosedCaseOut,
    summary="Close a support case",
    description="Every open request on the case ends in the same transaction.",
    operation_id="closeCase",
)
@contract.raises(InvalidTransition)
def close_case(
    case_id: CaseId,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    body: CommentBody = NO_COMMENT,
) -> dict[str, Any]:
    case, ended = cases.close_case(lockbox, principal, case_id, comment=body.comment)
    return {**views.case(case), "ended_requests": [r.id for r in ended]}
