"""Support cases: every access request hangs off one."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import CaseId, ref_query
from lockbox.api.schemas import (
    PROBLEM_RESPONSES,
    CaseCreate,
    CaseList,
    CaseOut,
    ClosedCaseOut,
    CommentBody,
)
from lockbox.service import cases, views

router = APIRouter(prefix="/v1/cases", tags=["cases"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, response_model=CaseOut, summary="Open a support case")
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


@router.get("", response_model=CaseList, summary="Support cases you can see")
def list_cases(
    lockbox: LockboxDep,
    principal: PrincipalDep,
    tenant: Annotated[str | None, ref_query("Tenant slug or id.")] = None,
    status: Annotated[Literal["open", "closed"] | None, Query()] = None,
) -> dict[str, Any]:
    found = cases.list_cases(lockbox, principal, tenant=tenant, status=status)
    return {"items": [views.case(c) for c in found]}


@router.get("/{case_id}", response_model=CaseOut, summary="One support case")
def get_case(case_id: CaseId, lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    return views.case(cases.get_case(lockbox, principal, case_id))


@router.post(
    "/{case_id}/close",
    response_model=ClosedCaseOut,
    summary="Close a support case",
    description="Every open request on the case ends in the same transaction.",
)
def close_case(
    case_id: CaseId,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    body: CommentBody | None = None,
) -> dict[str, Any]:
    case, ended = cases.close_case(
        lockbox, principal, case_id, comment=body.comment if body else None
    )
    return {**views.case(case), "ended_requests": [r.id for r in ended]}
