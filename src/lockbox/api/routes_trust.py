"""Trust without trusting the provider: audit keys, signed checkpoints, receipts, the signed
export, verification against held checkpoints, and the provider's actions a tenant may see.

Thin as every router: each handler calls one use case of
:mod:`lockbox.service.checkpoints`, :mod:`lockbox.service.receipts` or
:mod:`lockbox.service.provider_audit`. The documents these routes hand out
(checkpoints, receipts, the keys) are the files a customer keeps and checks
offline (docs/audit.md); ``tenant`` may be ``provider`` for the provider's own
chain (``audit.provider``: the provider admin).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from lockbox.api import contract
from lockbox.api.deps import LockboxDep, PrincipalDep
from lockbox.api.params import RequestId, TenantRef, decimal_up_to, id_pattern
from lockbox.api.schemas import ChainReportOut
from lockbox.domain.errors import Conflict, PermissionDenied
from lockbox.service import audit, checkpoints, provider_audit, receipts, views

router = contract.router(tags=["trust"])

ReceiptId = Annotated[str, Path(description="Receipt id (`rct_…`).", pattern=id_pattern("receipt"))]
_SEQ_CURSOR = decimal_up_to(audit.MAX_SEQ)
#: A checkpoint history cursor: ``<seq>.<checkpoint id>`` of the last item seen.
_CURSOR = "^" + _SEQ_CURSOR[1:-1] + r"\." + id_pattern("checkpoint")[1:]
_B64_64_BYTES = r"^[A-Za-z0-9+/]{86}==$"
_CHAIN = "^(?:provider|" + id_pattern("tenant")[1:-1] + ")$"
_INSTANT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$"
#: Checkpoints one call verifies: the largest body stays well under the API's size limit
#: (more at once: the CLI, locally, or several calls).
MAX_HELD = 50
_B64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


class SignedDocument(BaseModel):
    """A signed statement as a customer keeps it (docs/audit.md, "Signed documents")."""

    alg: Literal["Ed25519"]
    kid: str = Field(
        description="The audit key that signed it (`/.well-known/lockbox-audit-keys.json`)."
    )
    payload: str = Field(
        description="Base64 of the canonical statement bytes: exactly what was signed."
    )
    signature: str = Field(description="Base64 of the 64-byte Ed25519 signature over those bytes.")


class CheckpointDocument(SignedDocument):
    checkpoint: dict[str, Any] = Field(
        description="A readable copy of the statement: v, type, tenant, seq, hash, at, kid."
    )


class ReceiptDocument(SignedDocument):
    receipt: dict[str, Any] = Field(
        description="A readable copy of the statement: the request, the engineer, the decision, "
        "who made it and when, and the audit record it corresponds to."
    )


class CheckpointItem(BaseModel):
    id: str
    reason: str = Field(description="decision, hourly, daily, export or manual")
    tenant_id: str = Field(description="The chain: a tenant's id, or `provider`.")
    seq: int
    hash: str
    at: str
    kid: str
    document: CheckpointDocument


class CheckpointPage(BaseModel):
    latest: CheckpointItem | None = Field(description="The newest checkpoint (null: none yet).")
    items: list[CheckpointItem] = Field(description="The history, newest first.")
    next_cursor: str | None


class AuditKey(BaseModel):
    kid: str
    alg: Literal["Ed25519"]
    public_key_pem: str = Field(
        description="SubjectPublicKeyInfo PEM (for `openssl pkeyutl -pubin`)."
    )
    x: str = Field(description="The raw public key, base64url (as in a JWK).")
    valid_from: str
    valid_until: str | None = Field(
        description="Retired: statements dated from then on are refused."
    )
    status: Literal["active", "retired"]


class AuditKeys(BaseModel):
    type: Literal["lockbox.audit-keys"]
    v: int
    keys: list[AuditKey]


class CheckpointStatement(BaseModel):
    """The readable copy of a checkpoint's statement (it must equal the signed payload)."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1]
    type: Literal["lockbox.checkpoint"]
    tenant: str = Field(description="A tenant's id, or `provider`.", pattern=_CHAIN)
    seq: int = Field(ge=0, le=audit.MAX_SEQ)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    at: str = Field(pattern=_INSTANT)
    kid: str = Field(pattern=id_pattern("key"))


class HeldCheckpoint(BaseModel):
    """A checkpoint document as downloaded, unchanged."""

    model_config = ConfigDict(extra="forbid")

    alg: Literal["Ed25519"]
    kid: str = Field(pattern=id_pattern("key"))
    payload: str = Field(
        min_length=4,
        max_length=400,
        pattern=_B64,
        description="Base64 of the canonical statement bytes (at most 300 bytes).",
    )
    signature: str = Field(pattern=_B64_64_BYTES)
    checkpoint: CheckpointStatement | None = None


class VerifyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoints: list[HeldCheckpoint] = Field(
        min_length=1,
        max_length=MAX_HELD,
        description="Checkpoint documents you hold (as downloaded, unchanged). One whose "
        "signature does not verify with a published audit key, or of another chain, is "
        "refused (422, naming it).",
    )


class ReceiptSummary(BaseModel):
    id: str
    request_id: str
    kind: str = Field(description="approve, deny, revoke or auto_approve")
    basis: str | None = Field(
        description="customer, or the rule of an automatic decision (lockbox_off)"
    )
    at: str
    decided_by: str | None
    decided_by_email: str | None
    audit_seq: int | None
    audit_hash: str | None
    kid: str
    document: ReceiptDocument


class ReceiptList(BaseModel):
    items: list[ReceiptSummary]


class StaffHolder(BaseModel):
    id: str
    email: str
    display_name: str
    roles: list[str]
    active: bool


class ProviderView(BaseModel):
    tenant_id: str
    holders: list[StaffHolder] = Field(
        description="Provider staff who hold the engineer, manager or provider admin role now."
    )
    items: list[dict[str, Any]] = Field(
        description="The provider-chain records that concern this tenant, oldest first."
    )
    next_cursor: str | None
    head: dict[str, Any] = Field(description="The provider chain's head: {seq, hash}.")
    checkpoint: CheckpointDocument | None = Field(
        description="The provider chain's latest signed checkpoint."
    )


# -- keys ----------------------------------------------------------------------------------


@router.get(
    "/.well-known/lockbox-audit-keys.json",
    response_model=AuditKeys,
    summary="Public keys that verify checkpoints and receipts, current and retired",
    description="No token needed. Every audit key ever used stays here with its validity "
    "period, so old signatures stay verifiable. Save it to verify offline.",
    operation_id="getAuditKeys",
)
def audit_keys(lockbox: LockboxDep, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "no-cache"  # a rotation shows at once
    return checkpoints.keys_document(lockbox)


# -- checkpoints ---------------------------------------------------------------------------


def _item(view: checkpoints.CheckpointView) -> dict[str, Any]:
    return view.as_dict()


@router.get(
    "/v1/tenants/{tenant}/audit/checkpoints",
    response_model=CheckpointPage,
    summary="The chain's latest signed checkpoint and its history",
    description="`tenant` is a tenant's slug or id, or `provider` for the provider's own "
    "chain. Keep a checkpoint outside Lockbox: verifying against it later proves the log "
    "was not cut, rebuilt or rolled back since.",
    operation_id="listAuditCheckpoints",
)
@contract.raises(PermissionDenied)
def list_checkpoints(
    tenant: TenantRef,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=checkpoints.MAX_PAGE)] = 50,
    cursor: Annotated[
        str | None,
        Query(description="`next_cursor` of the previous page: `<seq>.<id>`.", pattern=_CURSOR),
    ] = None,
) -> dict[str, Any]:
    items, next_cursor = checkpoints.history(lockbox, principal, tenant, limit=limit, cursor=cursor)
    latest = checkpoints.latest(lockbox, principal, tenant)
    return {
        "latest": _item(latest) if latest else None,
        "items": [_item(v) for v in items],
        "next_cursor": next_cursor,
    }


@router.post(
    "/v1/tenants/{tenant}/audit/checkpoints",
    response_model=CheckpointItem,
    status_code=201,
    summary="Sign the chain's head now",
    operation_id="issueAuditCheckpoint",
)
@contract.raises(PermissionDenied)
def issue_checkpoint(tenant: TenantRef, lockbox: LockboxDep, principal: PrincipalDep) -> Any:
    return _item(checkpoints.issue(lockbox, principal, tenant))


@router.post(
    "/v1/tenants/{tenant}/audit/verify",
    response_model=ChainReportOut,
    summary="Verify the chain against checkpoints you hold",
    description="Proves the chain as stored now contains each checkpoint's record at its "
    "sequence number with its hash; otherwise `ok` is false and `problem` names the first "
    "inconsistency (records removed from the end, a rebuilt chain, a rollback, a fork). A "
    "checkpoint with a bad signature, of an unknown key or of another chain is refused (422).",
    operation_id="verifyAuditWithCheckpoints",
)
@contract.raises(PermissionDenied, writes=False)
def verify_with_checkpoints(
    tenant: TenantRef, body: VerifyBody, lockbox: LockboxDep, principal: PrincipalDep
) -> Any:
    held = [c.model_dump(exclude_none=True) for c in body.checkpoints]
    report = checkpoints.verify_with_checkpoints(lockbox, principal, tenant, held)
    return views.chain_report(report)


@router.get(
    "/v1/tenants/{tenant}/audit/signed-export",
    summary="The whole audit log as JSON Lines, ending with its head signed now",
    description="Like `/audit/export?format=jsonl`, with one more line, "
    '`{"signed_head": <checkpoint>}`: the export proves it is complete as of that moment.',
    response_class=StreamingResponse,
    operation_id="exportSignedAudit",
    responses={
        200: {
            "description": "One record per line, then the signed head.",
            "content": {
                "application/x-ndjson": {
                    "schema": {"type": "string"},
                    "example": '{"seq": 1}\n{"signed_head": {}}\n',
                }
            },
        }
    },
)
@contract.raises(PermissionDenied, Conflict)
def signed_export(
    tenant: TenantRef, lockbox: LockboxDep, principal: PrincipalDep
) -> StreamingResponse:
    chunks = checkpoints.signed_export(lockbox, principal, tenant)  # checks permission first
    return StreamingResponse(
        (chunk.encode("utf-8") for chunk in chunks),
        media_type="application/x-ndjson; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-{tenant}.signed.jsonl"'},
    )


@router.get(
    "/v1/tenants/{tenant}/audit/provider",
    response_model=ProviderView,
    summary="Who at the provider could act on this tenant",
    description="The staff holding the engineer, manager or provider admin role, and the "
    "records of the provider's own chain that concern this tenant (staff with those roles, "
    "their tokens, this tenant's onboarding, resource services serving it, keys, "
    "provider-level webhooks), each with its sequence number and hash.",
    operation_id="listProviderActionsForTenant",
)
@contract.raises(PermissionDenied)
def provider_view(
    tenant: TenantRef,
    lockbox: LockboxDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=provider_audit.MAX_PAGE)] = 100,
    cursor: Annotated[
        str | None, Query(description="`next_cursor` of the previous page.", pattern=_SEQ_CURSOR)
    ] = None,
) -> Any:
    after = int(cursor) if cursor else 0
    return provider_audit.staff_view(lockbox, principal, tenant, after_seq=after, limit=limit)


# -- receipts -------------------------------------------------------------------------------


def _receipt(found: Any) -> dict[str, Any]:
    return {**found.summary(), "document": found.document()}


@router.get(
    "/v1/requests/{request_id}/receipts",
    response_model=ReceiptList,
    summary="The signed receipts of a request's decisions",
    operation_id="listRequestReceipts",
)
def list_receipts(request_id: RequestId, lockbox: LockboxDep, principal: PrincipalDep) -> Any:
    return {"items": [_receipt(r) for r in receipts.for_request(lockbox, principal, request_id)]}


@router.get(
    "/v1/receipts/{receipt_id}",
    response_model=ReceiptDocument,
    summary="One signed receipt, as a file to keep",
    description="Verify it offline: `lockbox receipt verify`, `python -m lockbox.verify "
    "receipt`, or openssl (docs/audit.md).",
    operation_id="getReceipt",
)
def get_receipt(
    receipt_id: ReceiptId, lockbox: LockboxDep, principal: PrincipalDep, response: Response
) -> Any:
    found = receipts.get_receipt(lockbox, principal, receipt_id)
    response.headers["Content-Disposition"] = f'attachment; filename="receipt-{found.id}.json"'
    return found.document()
