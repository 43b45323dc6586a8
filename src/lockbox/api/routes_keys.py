"""``/v1/keys``: the signing keys, for provider admins: list, rotate, retire.

The same use cases as ``lockbox keys`` on the server's own database, so the
command works over the API too (``LOCKBOX_SERVER``): an operator rotates keys
without a shell on the database host. Who may do it is ``keys.manage`` (the
provider admin); the answers never hold a private key.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from lockbox.api import contract
from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import LINE
from lockbox.domain import errors
from lockbox.service import access

router = contract.router(prefix="/v1/keys", tags=["keys"])

Purpose = Literal["access", "audit"]
KeyId = Annotated[
    str, Path(description="The key id (kid).", min_length=1, max_length=64, pattern=LINE)
]


class KeyOut(BaseModel):
    """A signing key as it may be shown (the public half only, never the private key)."""

    kid: str
    purpose: str | None = None
    algorithm: str | None = None
    status: str = Field(description="active (signs), published (verifies only) or retired")
    created_at: str | None = None
    retired_at: str | None = None
    publish_until: str | None = None


class KeyList(BaseModel):
    items: list[KeyOut]


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are refused, never ignored

    purpose: Purpose = Field(
        default="access", description="access (signs access tokens) or audit (signs the log)"
    )


@router.get(
    "", response_model=KeyList, operation_id="listKeys", summary="Signing keys, newest first"
)
def list_keys(
    lockbox: LockboxDep,
    principal: PrincipalDep,
    purpose: Annotated[
        Purpose | Literal["all"], Query(description="access (default), audit, or all")
    ] = "access",
) -> dict[str, Any]:
    chosen = None if purpose == "all" else purpose
    return {"items": access.list_keys(lockbox, principal, chosen)}


@router.post(
    "/rotate",
    response_model=KeyOut,
    status_code=201,
    operation_id="rotateKey",
    summary="Start signing with a new key",
    description="The previous access key stays published for one token lifetime, so tokens "
    "it signed keep verifying until they expire; a previous audit key stays published.",
)
def rotate_keys(
    lockbox: LockboxDep, principal: PrincipalDep, body: KeyRotate | None = None
) -> dict[str, Any]:
    purpose = body.purpose if body is not None else "access"
    return access.rotate_keys(lockbox, principal, purpose=purpose)


@router.post(
    "/{kid}/retire",
    response_model=KeyOut,
    operation_id="retireKey",
    summary="Unpublish a key that no longer signs",
    description="Every access token it signed stops verifying at once. The signing key "
    "itself cannot be retired (rotate first), nor can audit keys.",
)
@contract.raises(errors.InvalidTransition)
def retire_key(kid: KeyId, lockbox: LockboxDep, principal: PrincipalDep) -> dict[str, Any]:
    return access.retire_key(lockbox, principal, kid)
