"""API tokens: the secret is in the creation response only; only a digest is stored."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response

from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import TokenId, ref_query
from lockbox.api.schemas import PROBLEM_RESPONSES, IssuedTokenOut, TokenCreate, TokenList, TokenOut
from lockbox.service import tokens, views

router = APIRouter(prefix="/v1/tokens", tags=["tokens"], responses=PROBLEM_RESPONSES)


@router.post(
    "",
    status_code=201,
    response_model=IssuedTokenOut,
    summary="Create an API token",
    description="For yourself, or (provider admin) for another user. The `token` field "
    "is the secret: it is in this response only and cannot be shown again.",
)
def create_token(
    body: TokenCreate, lockbox: LockboxDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    issued = tokens.create_token(
        lockbox, principal, user=body.user, name=body.name, expires_at=body.expires_at
    )
    response.headers["Cache-Control"] = "no-store"
    return {**views.token(issued.row), "token": issued.secret}


@router.get("", response_model=TokenList, summary="Tokens of a user (never their secrets)")
def list_tokens(
    lockbox: LockboxDep,
    principal: PrincipalDep,
    user: Annotated[str | None, ref_query("Whose tokens (id or e-mail); default: yours.")] = None,
) -> dict[str, Any]:
    return {"items": [views.token(t) for t in tokens.list_tokens(lockbox, principal, user)]}


@router.post("/{token_id}/revoke", response_model=TokenOut, summary="Revoke a token now")
def revoke_token(token_id: TokenId, lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    return views.token(tokens.revoke_token(lockbox, principal, token_id))
