"""A tenant's auto-approval rules, and the changes waiting for a second tenant admin.

Writing a rule, loosening one (or switching it on) and a policy change that widens access
wait for a second tenant admin when the tenant has more than one (four eyes): the answer
is then ``202 Accepted`` with the pending change (``Location`` names it), and nothing
changed yet. Another tenant admin approves (it applies) or rejects it; its author can
withdraw it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Response, status
from fastapi.responses import JSONResponse

from lockbox.api import contract
from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import ChangeId, IfMatch, RuleId, TenantRef, conditional, etag
from lockbox.api.schemas import (
    NO_COMMENT,
    ChangeStateName,
    CommentBody,
    PendingChangeList,
    PendingChangeOut,
    RuleCreate,
    RuleList,
    RuleOut,
    RulePatch,
)
from lockbox.domain.changes import PendingChange
from lockbox.domain.errors import InvalidTransition, SeparationOfDuties
from lockbox.service import auto_approval, changes
from lockbox.service.auto_approval import RuleOutcome

router = contract.router(prefix="/v1/tenants", tags=["auto-approval"])

_ETAG = {"ETag": {"description": 'The version, e.g. `"3"`.', "schema": {"type": "string"}}}
_LOCATION = {"Location": {"schema": {"type": "string"}}}
#: The answer when the change waits for a second tenant admin.
PENDING_RESPONSE: dict[int | str, dict[str, Any]] = {
    202: {
        "model": PendingChangeOut,
        "description": "Accepted, not applied: the change widens access and the tenant has "
        "more than one tenant admin, so it waits for another one's approval (four eyes). "
        "`Location` names the pending change.",
        "headers": {**_LOCATION, **_ETAG},
    }
}
_RULES = "/{tenant}/auto-approval-rules"
_CHANGES = "/{tenant}/pending-changes"


def change_location(change: PendingChange, tenant: str) -> str:
    return f"/v1/tenants/{tenant}/pending-changes/{change.id}"


def accepted(change: PendingChange, tenant: str) -> JSONResponse:
    """202 with the pending change (a change that waits for a second tenant admin)."""
    return JSONResponse(
        changes.view(change),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": change_location(change, tenant), "ETag": etag(change.version)},
    )


def _rule_answer(outcome: RuleOutcome, tenant: str, response: Response) -> Any:
    if outcome.pending is not None:
        return accepted(outcome.pending, tenant)
    response.headers["ETag"] = etag(outcome.rule.version)
    return auto_approval.view(outcome.rule)


# -- rules -------------------------------------------------------------------------------------


@router.get(
    _RULES,
    response_model=RuleList,
    summary="A tenant's auto-approval rules, in the order they are tried",
    operation_id="listAutoApprovalRules",
)
def list_rules(
    tenant: TenantRef,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    include_ended: Annotated[
        bool, Query(description="Also deleted, rejected and withdrawn rules.")
    ] = False,
) -> dict[str, Any]:
    return {
        "items": auto_approval.rule_views(lockbox, principal, tenant, include_ended=include_ended)
    }


@router.post(
    _RULES,
    status_code=status.HTTP_201_CREATED,
    response_model=RuleOut,
    summary="Write an auto-approval rule (tenant admin)",
    description="Active at once when the tenant has one tenant admin; otherwise 202 with "
    "the pending change, and the rule waits (`state: pending`) for another admin.",
    operation_id="createAutoApprovalRule",
    responses={201: {"headers": {**_LOCATION, **_ETAG}}, **PENDING_RESPONSE},
)
def create_rule(
    tenant: TenantRef,
    body: RuleCreate,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    response: Response,
) -> Any:
    outcome = auto_approval.create_rule(lockbox, principal, tenant, body.settings())
    if outcome.pending is None:
        response.headers["Location"] = f"/v1/tenants/{tenant}/auto-approval-rules/{outcome.rule.id}"
    return _rule_answer(outcome, tenant, response)


@router.get(
    _RULES + "/{rule_id}",
    response_model=RuleOut,
    summary="One auto-approval rule",
    operation_id="getAutoApprovalRule",
    responses={200: {"headers": _ETAG}},
)
def get_rule(
    tenant: TenantRef,
    rule_id: RuleId,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    response: Response,
) -> Any:
    found = auto_approval.rule_views(lockbox, principal, tenant, rule_id=rule_id)[0]
    response.headers["ETag"] = etag(found["version"])
    return found


@router.patch(
    _RULES + "/{rule_id}",
    response_model=RuleOut,
    summary="Change an auto-approval rule (tenant admin)",
    description="Send only the settings to change. Narrowing it or `enabled: false` applies "
    "at once; loosening it or switching it on answers 202 with the pending change when the "
    "tenant has more than one tenant admin. 409 for a rule that is pending or ended.",
    operation_id="updateAutoApprovalRule",
    responses={200: {"headers": _ETAG}, **PENDING_RESPONSE},
)
@contract.raises(InvalidTransition)
def update_rule(
    tenant: TenantRef,
    rule_id: RuleId,
    body: RulePatch,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    response: Response,
    if_match: IfMatch = None,
) -> Any:
    outcome = conditional(
        if_match,
        lambda expected: auto_approval.update_rule(
            lockbox, principal, tenant, rule_id, body.settings(), expected_version=expected
        ),
    )
    return _rule_answer(outcome, tenant, response)


@router.delete(
    _RULES + "/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an auto-approval rule (tenant admin; at once)",
    operation_id="deleteAutoApprovalRule",
)
@contract.raises(InvalidTransition)
def delete_rule(
    tenant: TenantRef,
    rule_id: RuleId,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    if_match: IfMatch = None,
) -> Response:
    conditional(
        if_match,
        lambda expected: auto_approval.delete_rule(
            lockbox, principal, tenant, rule_id, expected_version=expected
        ),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- pending changes -----------------------------------------------------------------------------


@router.get(
    _CHANGES,
    response_model=PendingChangeList,
    summary="Changes that wait for (or were decided by) a second tenant admin, newest first",
    operation_id="listPendingChanges",
)
def list_changes(
    tenant: TenantRef,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    state: Annotated[
        list[ChangeStateName] | None,
        Query(max_length=5, description="Only changes in these states (repeat for several)."),
    ] = None,
) -> dict[str, Any]:
    found = changes.list_changes(lockbox, principal, tenant, states=list(state or []))
    return {"items": [changes.view(c) for c in found]}


@router.get(
    _CHANGES + "/{change_id}",
    response_model=PendingChangeOut,
    summary="One pending (or decided) change",
    operation_id="getPendingChange",
    responses={200: {"headers": _ETAG}},
)
def get_change(
    tenant: TenantRef,
    change_id: ChangeId,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    response: Response,
) -> Any:
    found = changes.get_change(lockbox, principal, tenant, change_id)
    response.headers["ETag"] = etag(found.version)
    return changes.view(found)


_DECISIONS = {
    "approve": (
        changes.approve_change,
        "Approve another admin's change: it applies now (tenant admin, not its author)",
        "409 if it is no longer pending, or if what it changes moved on since it was "
        "proposed (it is then marked superseded and nothing is applied).",
    ),
    "reject": (
        changes.reject_change,
        "Reject another admin's change (tenant admin, not its author)",
        "409 if it is no longer pending.",
    ),
    "withdraw": (
        changes.withdraw_change,
        "Withdraw your own change before anyone decided",
        "409 if it is no longer pending.",
    ),
}


def _decision_route(how: str) -> None:
    action, summary, description = _DECISIONS[how]

    def handler(
        tenant: TenantRef,
        change_id: ChangeId,
        lockbox: LockboxDep,
        principal: PrincipalDep,
        response: Response,
        body: CommentBody = NO_COMMENT,
        if_match: IfMatch = None,
    ) -> Any:
        comment = body.comment
        decided = conditional(
            if_match,
            lambda expected: action(
                lockbox, principal, tenant, change_id, comment=comment, expected_version=expected
            ),
        )
        response.headers["ETag"] = etag(decided.change.version)
        return changes.view(decided.change)

    handler.__name__ = f"{how}_change"
    router.add_api_route(
        _CHANGES + f"/{{change_id}}/{how}",
        contract.raises(SeparationOfDuties, InvalidTransition)(handler),
        methods=["POST"],
        response_model=PendingChangeOut,
        summary=summary,
        description=description,
        operation_id=f"{how}PendingChange",
        responses={200: {"headers": _ETAG}},
    )


for _how in _DECISIONS:
    _decision_route(_how)
