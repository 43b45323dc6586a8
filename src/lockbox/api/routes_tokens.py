"""API tokens: the secret is in the creation response only; only a digest is stored."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Response

from lockbox.api import contract
from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import TokenId, user_query
from lockbox.api.schemas import IssuedTokenOut, TokenCreate, TokenList, TokenOut
from lockbox.domain.errors import NotFound, PermissionDenied
from lockbox.service import tokens, views

router = contract.router(prefix="/v1/tokens", tags=["tokens"])


@router.post(
    "",
    status_code=201,
    response_model=IssuedTokenOut,
    summary="Create an API token",
    description="For yourself only: nobody creates a credential for someone else (403). "
    "The `token` field is the secret: it is in this response only and cannot be shown again.",
    operation_id="createToken",
)
@contract.raises(NotFound)
def create_token(
    body: TokenCreate, lockbox: LockboxDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    issued = tokens.create_token(
        lockbox, principal, user=body.user, name=body.name, expires_at=body.expires_at
    )
    response.headers["Cache-Control"] = "no-store"
    return {**views.token(issued.row), "token": issued.secret}


@router.get(
    "",
    response_model=TokenList,
    summary="Tokens of a user (never their secrets)",
    operation_id="listTokens",
)
@contract.raises(NotFound, PermissionDenied)
def list_tokens(
    lockbox: LockboxDep,
    principal: PrincipalDep,
    user: Annotated[str | None, user_query("Whose tokens (id or e-mail); default: yours.")] = None,
) -> dict[str, Any]:
    return {"items": [views.token(t) for t in tokens.list_tokens(lockbox, principal, user)]}


@router.post(
    "/{token_id}/revoke",
    response_model=TokenOut,
    summary="Revoke a token now",
    operation_id="revokeToken",
)
def revoke_token(token_id: TokenId, lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    return views.token(tokens.revoke_token(lockbox, principal, token_id))
