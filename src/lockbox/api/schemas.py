"""Request bodies and response models of the ``/v1`` API.

Request bodies refuse unknown fields and carry the same length limits as the
domain, so an over-long or misspelt field is a 422 naming the field before any
use case runs; the domain still validates everything again (it never trusts
an adapter). Response models mirror :mod:`lockbox.service.views` field for
field, so the API, the CLI's ``--json`` and the web pages show one shape.

Strings that reach the database are refused if they contain a NUL or (for
single-line values) any control character: PostgreSQL cannot store a NUL and
would otherwise answer a 500.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
)

from lockbox.domain import text
from lockbox.domain.policy import MAX_NOTIFY_EMAILS, REQUIRED_APPROVALS_BOUNDS, WINDOW_BOUNDS
from lockbox.domain.resources import MAX_RESOURCE_LENGTH, MAX_RESOURCES
from lockbox.domain.tenant import MAX_DOMAINS
from lockbox.service.passwords import PASSWORD_MAX

#: A single line of text: no control characters at all.
LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
EMAIL_MAX = 320
REF_MAX = 320


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Name = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=text.NAME_MAX, pattern=LINE_PATTERN)
]
OptionalName = Annotated[
    StrictStr, StringConstraints(max_length=text.NAME_MAX, pattern=LINE_PATTERN)
]
Reference = Annotated[StrictStr, StringConstraints(max_length=100, pattern=LINE_PATTERN)]
Justification = Annotated[
    StrictStr, StringConstraints(max_length=text.JUSTIFICATION_MAX), AfterValidator(_no_nul)
]
Ref = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=REF_MAX, pattern=LINE_PATTERN)
]
Email = Annotated[
    StrictStr, StringConstraints(min_length=3, max_length=EMAIL_MAX, pattern=LINE_PATTERN)
]
Comment = Annotated[
    StrictStr, StringConstraints(max_length=text.COMMENT_MAX), AfterValidator(_no_nul)
]
Resource = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=MAX_RESOURCE_LENGTH, pattern=LINE_PATTERN)
]
RoleName = Literal[
    "engineer",
    "manager",
    "provider_admin",
    "resource_service",
    "tenant_admin",
    "approver",
    "auditor",
]

Password = Annotated[StrictStr, StringConstraints(max_length=PASSWORD_MAX)]
Domain = Annotated[
    StrictStr, StringConstraints(min_length=3, max_length=253, pattern=r"^[A-Za-z0-9.-]+$")
]
Prefix = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=MAX_RESOURCE_LENGTH, pattern=LINE_PATTERN)
]

_MIN_WINDOW = int(min(low for low, _ in WINDOW_BOUNDS.values()).total_seconds())
_MAX_WINDOW = int(max(high for _, high in WINDOW_BOUNDS.values()).total_seconds())
WindowSeconds = Annotated[StrictInt, Field(ge=_MIN_WINDOW, le=_MAX_WINDOW)]


class Body(BaseModel):
    """Base of every request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


# -- tenants and policy ---------------------------------------------------------------


class PolicyPatch(Body):
    """The policy settings to change; omitted settings keep their value."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"enabled": True, "approval_window_seconds": 43200, "required_approvals": 2}
            ]
        },
    )

    enabled: StrictBool | None = Field(None, description="Customer approval on (true) or off.")
    approval_window_seconds: WindowSeconds | None = None
    access_window_seconds: WindowSeconds | None = None
    review_window_seconds: WindowSeconds | None = None
    required_approvals: (
        Annotated[
            StrictInt, Field(ge=REQUIRED_APPROVALS_BOUNDS[0], le=REQUIRED_APPROVALS_BOUNDS[1])
        ]
        | None
    ) = None
    notify_emails: Annotated[list[Email], Field(max_length=MAX_NOTIFY_EMAILS)] | None = None
    reminder_fraction: Annotated[StrictFloat | StrictInt, Field(ge=0, lt=1)] | None = None

    def changes(self) -> dict[str, Any]:
        """The changes as :meth:`LockboxPolicy.with_changes` keywords."""
        from datetime import timedelta

        result: dict[str, Any] = {}
        for key, value in self.model_dump(exclude_unset=True).items():
            if value is None:
                continue
            if key.endswith("_window_seconds"):
                result[key.removesuffix("_seconds")] = timedelta(seconds=value)
            elif key == "notify_emails":
                result[key] = tuple(value)
            else:
                result[key] = value
        return result


class TenantCreate(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"slug": "contoso", "name": "Contoso Ltd"}]},
    )

    slug: Annotated[StrictStr, StringConstraints(min_length=1, max_length=63)]
    name: Name
    policy: PolicyPatch | None = None
    email_domains: Annotated[list[Domain], Field(max_length=MAX_DOMAINS)] = Field(
        default_factory=list,
        description="The customer's e-mail domains: its tenant admins add users only there.",
    )


class DomainsPut(Body):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email_domains": ["contoso.example"]}]}
    )

    email_domains: Annotated[list[Domain], Field(max_length=MAX_DOMAINS)]


class Policy(BaseModel):
    enabled: bool
    approval_window_seconds: int
    access_window_seconds: int
    review_window_seconds: int
    required_approvals: int
    notify_emails: list[str]
    reminder_fraction: float

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "enabled": True,
                    "approval_window_seconds": 43200,
                    "access_window_seconds": 14400,
                    "review_window_seconds": 43200,
                    "required_approvals": 1,
                    "notify_emails": ["security@contoso.example"],
                    "reminder_fraction": 0.25,
                }
            ]
        }
    )


class TenantOut(BaseModel):
    id: str
    slug: str
    name: str
    created_at: str | None
    version: int
    policy: Policy
    email_domains: list[str]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "ten_8k2m4q…",
                    "slug": "contoso",
                    "name": "Contoso Ltd",
                    "created_at": "2026-01-05T09:00:00.000000Z",
                    "version": 1,
                    "email_domains": ["contoso.example"],
                    "policy": Policy.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
                }
            ]
        }
    )


class TenantList(BaseModel):
    items: list[TenantOut]


# -- users and tokens ------------------------------------------------------------------


class UserCreate(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"email": "paula@contoso.example", "roles": ["approver"], "tenant": "contoso"}
            ]
        },
    )

    email: Email
    roles: Annotated[list[RoleName], Field(min_length=1, max_length=7)]
    tenant: Ref | None = Field(None, description="Tenant slug or id (customer users only).")
    display_name: OptionalName | None = None
    password: Password | None = Field(
        None,
        description="Only the local operator may set another person's password; everyone "
        "else starts a password reset, and the user chooses their own.",
    )


class PasswordResetComplete(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "paula@contoso.example",
                    "code": "K7QD-3M9X-TW2P",
                    "new_password": "a long passphrase of your own",
                }
            ]
        },
    )

    email: Email
    code: Annotated[StrictStr, StringConstraints(min_length=1, max_length=64, pattern=LINE_PATTERN)]
    new_password: Password


class PasswordChange(Body):
    current_password: Password
    new_password: Password


class ResetStartedOut(BaseModel):
    user_id: str
    email: str
    expires_at: str


class ServicePut(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"tenants": ["contoso"], "prefixes": ["exchange/"], "audience": "mailstore"}
            ]
        },
    )

    tenants: Annotated[list[Ref], Field(max_length=1000)] | Literal["*"] = Field(
        description="Tenants (slugs or ids) this service serves, or `*` for every tenant."
    )
    prefixes: Annotated[list[Prefix], Field(min_length=1, max_length=50)] = Field(
        description="Resource prefixes it owns (`exchange/`), or `*` for every resource."
    )
    audience: (
        Annotated[
            StrictStr,
            StringConstraints(
                min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
            ),
        ]
        | None
    ) = Field(None, description="The `aud` of access tokens for this service.")


class ServiceOut(BaseModel):
    user_id: str
    tenants: list[str] | Literal["*"]
    prefixes: list[str]
    audience: str | None


class UserPatch(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"active": False}]})

    active: StrictBool


class RolesPut(Body):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"roles": ["approver", "auditor"]}]}
    )

    roles: Annotated[list[RoleName], Field(max_length=7)]


class UserOut(BaseModel):
    id: str
    email: str
    display_name: str
    side: Literal["provider", "customer"]
    tenant_id: str | None
    roles: list[str]
    active: bool
    created_at: str | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "usr_3h…",
                    "email": "paula@contoso.example",
                    "display_name": "paula",
                    "side": "customer",
                    "tenant_id": "ten_8k2m4q…",
                    "roles": ["approver"],
                    "active": True,
                    "created_at": "2026-01-05T09:00:00.000000Z",
                }
            ]
        }
    )


class UserList(BaseModel):
    items: list[UserOut]


class TokenCreate(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "ci", "expires_at": "2026-12-31T00:00:00Z"}]},
    )

    user: Ref | None = Field(None, description="Owner (id or e-mail); default: yourself.")
    name: Name = "api"
    expires_at: AwareDatetime | None = None


class TokenOut(BaseModel):
    id: str
    user_id: str
    name: str
    created_at: str | None
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None


class IssuedTokenOut(TokenOut):
    token: str = Field(description="The secret: shown in this response only, never again.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "tok_5v…",
                    "user_id": "usr_3h…",
                    "name": "ci",
                    "created_at": "2026-01-05T09:00:00.000000Z",
                    "expires_at": None,
                    "revoked_at": None,
                    "last_used_at": None,
                    "token": "lbx_…",
                }
            ]
        }
    )


class TokenList(BaseModel):
    items: list[TokenOut]


# -- cases ------------------------------------------------------------------------------


class CaseCreate(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"tenant": "contoso", "title": "Mailbox does not sync", "reference": "SR-1042"}
            ]
        },
    )

    tenant: Ref
    title: Name
    engineer: Ref | None = Field(None, description="Assigned engineer; default: you.")
    reference: Reference | None = None


class CommentBody(Body):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"comment": "fixed"}]}
    )

    comment: Comment | None = None


class CaseOut(BaseModel):
    id: str
    tenant_id: str
    title: str
    reference: str | None
    engineer_id: str
    status: Literal["open", "closed"]
    opened_at: str | None
    opened_by: str
    closed_at: str | None
    closed_by: str | None


class ClosedCaseOut(CaseOut):
    ended_requests: list[str] = Field(description="Requests ended by closing the case.")


class CaseList(BaseModel):
    items: list[CaseOut]


# -- requests ---------------------------------------------------------------------------


class RequestCreate(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "tenant": "contoso",
                    "case_id": "case_7d…",
                    "resources": ["exchange/mailbox/alice@contoso.example"],
                    "access_level": "read",
                    "justification": "Inspect the mailbox sync state",
                }
            ]
        },
    )

    tenant: Ref
    case_id: Ref
    resources: Annotated[list[Resource], Field(min_length=1, max_length=MAX_RESOURCES)]
    access_level: Literal["read", "read_write"] = "read"
    justification: Justification


class ReviewBody(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"decision": "approve", "comment": "scope is fine"}]},
    )

    decision: Literal["approve", "reject"]
    comment: Comment | None = None


class DecideBody(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"decision": "approve", "comment": "for today only"}]},
    )

    decision: Literal["approve", "deny"]
    comment: Comment | None = None


class PersonOut(BaseModel):
    id: str
    name: str
    email: str | None = Field(description="None for Lockbox itself and the local operator.")


class DecisionOut(BaseModel):
    actor_id: str
    decision: Literal["approve", "deny"]
    at: str | None
    comment: str | None
    credential: str | None = Field(
        description="The credential the decision was made with (`token:tok_…`, `session:…`)."
    )


class AuditRecordOut(BaseModel):
    id: str
    tenant_id: str
    seq: int
    at: str
    actor_id: str
    actor_kind: str
    operation: str
    request_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "evt_2p…",
                    "tenant_id": "ten_8k2m4q…",
                    "seq": 7,
                    "at": "2026-01-05T09:30:00.000000Z",
                    "actor_id": "usr_3h…",
                    "actor_kind": "user",
                    "operation": "request.approve",
                    "request_id": "req_9x…",
                    "details": {"from": "pending_approval", "to": "approved"},
                    "prev_hash": "4f1c…",
                    "hash": "a90b…",
                }
            ]
        }
    )


class RequestOut(BaseModel):
    id: str
    tenant_id: str
    case_id: str
    requester_id: str
    resources: list[str]
    access_level: Literal["read", "read_write"]
    justification: str
    state: str = Field(description="The effective state now (deadlines applied).")
    stored_state: str = Field(description="The state last recorded in the database.")
    created_at: str | None
    updated_at: str | None
    review_deadline: str | None
    reviewer_id: str | None
    reviewed_at: str | None
    review_comment: str | None
    customer_step: bool | None
    required_approvals: int
    approval_deadline: str | None
    decisions: list[DecisionOut]
    approved_at: str | None
    access_deadline: str | None
    ended_at: str | None
    ended_by: str | None
    end_comment: str | None
    deadline: str | None = Field(description="The current stage's deadline; null when terminal.")
    version: int = Field(description="Optimistic concurrency version; also the ETag.")
    history: list[AuditRecordOut] | None = Field(
        None, description="The request's audit records, oldest first (with ?history=true)."
    )
    history_truncated: bool | None = Field(
        None, description="More records exist than `history` holds: page the audit log."
    )
    people: dict[str, PersonOut] | None = Field(
        None,
        description="Everyone this request names (requester, reviewer, deciders, history "
        "actors), by id: show people by name and e-mail (single-request reads only).",
    )


class RequestPage(BaseModel):
    items: list[RequestOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")


# -- audit ------------------------------------------------------------------------------


class AuditPage(BaseModel):
    items: list[AuditRecordOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")
    people: dict[str, PersonOut] = Field(
        default_factory=dict, description="The actors of these records, by id."
    )


class ChainReportOut(BaseModel):
    tenant_id: str
    ok: bool
    records: int
    head_seq: int
    head_hash: str
    problem: str | None
    broken_seq: int | None
    broken_id: str | None


class ChainReportList(BaseModel):
    items: list[ChainReportOut]


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str = Field(examples=["urn:lockbox:problem:invalid_state"])
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = Field(
        None, description="Validation errors: one {field, message} per bad input."
    )
    state: str | None = Field(None, description="The current state, for 409 invalid_state.")


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


#: The error responses every ``/v1`` route may give, for the OpenAPI schema.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _problem_response("No, malformed, expired or revoked token"),
    403: _problem_response("Visible, but your roles or separation of duties forbid it"),
    404: _problem_response("Missing, or not visible to you (indistinguishable)"),
    409: _problem_response("Wrong state (body: current `state`) or a concurrent change won"),
    412: _problem_response("If-Match names a version that is no longer current"),
    413: _problem_response("Body over the size limit"),
    422: _problem_response("Invalid input; `errors` names each field"),
}
