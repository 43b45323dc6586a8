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

from annotated_types import Interval
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
)

from lockbox.api import params
from lockbox.api.params import Instant
from lockbox.domain import ids, text
from lockbox.domain.auto_approval import CATEGORIES, DAYS, MAX_PATTERNS, ZONE_PATTERN, RuleState
from lockbox.domain.auto_approval import NAME_MAX as RULE_NAME_MAX
from lockbox.domain.changes import ChangeKind, ChangeState
from lockbox.domain.errors import require
from lockbox.domain.lifecycle import State
from lockbox.domain.policy import (
    MAX_EXTENSIONS_BOUNDS,
    MAX_NOTIFY_EMAILS,
    REQUIRED_APPROVALS_BOUNDS,
    WINDOW_BOUNDS,
)
from lockbox.domain.resources import MAX_RESOURCE_LENGTH, MAX_RESOURCES
from lockbox.domain.roles import Role
from lockbox.domain.tenant import MAX_DOMAINS
from lockbox.service.passwords import PASSWORD_MAX, PASSWORD_MIN

EMAIL_MAX = params.EMAIL_MAX


def _text(pattern: str, max_length: int) -> Any:
    return StringConstraints(max_length=max_length, pattern=pattern)


#: A required single line (a name, a title): not blank, no control or bidi characters.
Name = Annotated[StrictStr, _text(params.LINE_TEXT, text.NAME_MAX)]
#: An optional single line: blank means absent.
OptionalName = Annotated[StrictStr, _text(params.LINE, text.NAME_MAX)]
Reference = Annotated[StrictStr, _text(params.LINE, 100)]
Justification = Annotated[StrictStr, _text(params.TEXT_REQUIRED, text.JUSTIFICATION_MAX)]
Comment = Annotated[StrictStr, _text(params.TEXT, text.COMMENT_MAX)]
TenantRef = Annotated[StrictStr, _text(params.TENANT_REF, ids.ID_MAX)]
UserRef = Annotated[StrictStr, _text(params.USER_REF, EMAIL_MAX)]
CaseId = Annotated[StrictStr, StringConstraints(pattern=params.id_pattern("case"))]
RequestId = Annotated[StrictStr, StringConstraints(pattern=params.id_pattern("request"))]
Email = Annotated[StrictStr, _text(params.EMAIL, EMAIL_MAX)]
Resource = Annotated[StrictStr, _text(params.RESOURCE, MAX_RESOURCE_LENGTH)]
RoleName = Literal[
    "engineer",
    "manager",
    "provider_admin",
    "resource_service",
    "tenant_admin",
    "approver",
    "auditor",
]
Password = Annotated[StrictStr, StringConstraints(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
#: A password given to prove who you are: any length (a wrong one is simply wrong).
GivenPassword = Annotated[StrictStr, StringConstraints(max_length=PASSWORD_MAX)]
Domain = Annotated[StrictStr, _text(params.DOMAIN, params.DOMAIN_MAX)]
Prefix = Annotated[StrictStr, _text(params.PREFIX, MAX_RESOURCE_LENGTH + 1)]
Audience = Annotated[StrictStr, StringConstraints(pattern=params.AUDIENCE)]
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

require(set(StateName.__args__) == {s.value for s in State}, "StateName must list every State")  # type: ignore[attr-defined]
require(set(RoleName.__args__) == {r.value for r in Role}, "RoleName must list every Role")  # type: ignore[attr-defined]


def _whole(value: object) -> object:
    """``3.0`` as ``3``: JSON has one number type, and 3.0 is the integer 3 to JSON Schema."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _number(value: object) -> object:
    """``1`` as ``1.0``: to JSON there is one number type (a boolean is not one)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _seconds(name: str) -> Interval:
    low, high = WINDOW_BOUNDS[name]
    return Interval(ge=int(low.total_seconds()), le=int(high.total_seconds()))


# Integers as JSON Schema means them (``3`` or ``3.0``), never a string or a boolean. The
# bounds come before the conversion: on the plain integer they are written into the
# schema as ``minimum``/``maximum``.
ApprovalWindow = Annotated[StrictInt, _seconds("approval_window"), BeforeValidator(_whole)]
AccessWindow = Annotated[StrictInt, _seconds("access_window"), BeforeValidator(_whole)]
ReviewWindow = Annotated[StrictInt, _seconds("review_window"), BeforeValidator(_whole)]
RequiredApprovals = Annotated[
    StrictInt,
    Interval(ge=REQUIRED_APPROVALS_BOUNDS[0], le=REQUIRED_APPROVALS_BOUNDS[1]),
    BeforeValidator(_whole),
]
Fraction = Annotated[StrictFloat, Interval(ge=0, lt=1), BeforeValidator(_number)]


class Body(BaseModel):
    """Base of every request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


# -- tenants and policy ---------------------------------------------------------------


class StageCondition(Body):
    """When a stage applies; every part given must hold (none: always)."""

    access_level: Literal["read", "read_write"] | None = Field(
        None, description="Only for requests at this access level."
    )
    resources: Annotated[list[StrictStr], Field(max_length=20)] | None = Field(
        None,
        description="Only when a requested resource falls under one of these names or "
        "`prefix/*` patterns.",
    )


class StageIn(Body):
    """One customer approval stage."""

    key: Annotated[StrictStr, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,39}$")] = Field(
        description="A stable name for the stage (lower-case letters, digits, '-')."
    )
    name: Annotated[StrictStr, StringConstraints(min_length=1, max_length=80)] | None = Field(
        None, description="How people see it; default: the key."
    )
    required: RequiredApprovals = Field(1, description="Distinct approvals it needs.")
    roles: list[Literal["approver", "tenant_admin"]] | None = Field(
        None,
        description="Who may approve by role; default: approvers and tenant admins, or "
        "nobody by role when `group` is given.",
    )
    group: Annotated[StrictStr, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,62}$")] | None = (
        Field(None, description="Who may approve by membership of this group of `groups`.")
    )
    condition: StageCondition | None = None


class StageOut(BaseModel):
    key: str
    name: str
    required: int
    roles: list[str]
    group: str | None
    condition: dict[str, Any] | None = None


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
    approval_window_seconds: ApprovalWindow | None = Field(
        None, description="How long the customer has to decide, in seconds."
    )
    access_window_seconds: AccessWindow | None = Field(
        None, description="How long approved access lasts, in seconds."
    )
    review_window_seconds: ReviewWindow | None = Field(
        None, description="How long the manager has to review, in seconds."
    )
    required_approvals: RequiredApprovals | None = None
    notify_emails: Annotated[list[Email], Field(max_length=MAX_NOTIFY_EMAILS)] | None = None
    reminder_fraction: Fraction | None = Field(
        None, description="Remind approvers when this fraction of the window is left (0: never)."
    )
    stages: Annotated[list[StageIn], Field(max_length=5)] | None = Field(
        None,
        description="The customer's approval stages, in order (all that apply must be met; "
        "one denial denies). `[]`: one stage of `required_approvals` approvers or admins.",
    )
    max_extensions: (
        Annotated[
            StrictInt,
            Interval(ge=MAX_EXTENSIONS_BOUNDS[0], le=MAX_EXTENSIONS_BOUNDS[1]),
            BeforeValidator(_whole),
        ]
        | None
    ) = Field(None, description="How many times one request's access may be extended (0: never).")
    extension_stages: Annotated[list[StageIn], Field(max_length=5)] | None = Field(
        None,
        description="The stages an extension must pass; `[]`: the same as `stages`.",
    )
    groups: (
        Annotated[dict[StrictStr, Annotated[list[StrictStr], Field(max_length=100)]], Field()]
        | None
    ) = Field(
        None,
        description="Named groups of the tenant's people a stage can name: group name → "
        "e-mail addresses or user ids. Replaces all groups.",
    )

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
            elif key in ("stages", "extension_stages"):
                result[key] = [{k: v for k, v in stage.items() if v is not None} for stage in value]
            else:
                result[key] = value
        return result


class TenantCreate(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"slug": "contoso", "name": "Contoso Ltd"}]},
    )

    slug: Annotated[StrictStr, StringConstraints(pattern=params.SLUG)] = Field(
        description="Lower-case letters, digits and '-', 1 to 63, not starting or ending with '-'."
    )
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
    stages: list[StageOut] = Field(
        default_factory=list, description="`[]`: one stage of `required_approvals`."
    )
    groups: dict[str, list[str]] = Field(default_factory=dict, description="Group name → user ids.")
    max_extensions: int = Field(2, description="Extensions allowed per request.")
    extension_stages: list[StageOut] = Field(
        default_factory=list, description="`[]`: the same as `stages`."
    )

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


# -- auto-approval rules and four eyes ------------------------------------------------------

Category = Literal["incident", "maintenance", "investigation", "customer_request", "other"]
DayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
require(set(Category.__args__) == set(CATEGORIES), "Category must list every category")  # type: ignore[attr-defined]
require(set(DayName.__args__) == set(DAYS), "DayName must list every day")  # type: ignore[attr-defined]
#: ``09:00-17:00``: two times of day, the end exclusive; ``24:00`` ends at midnight.
HOURS = r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]-(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
RuleStateName = Literal["pending", "active", "disabled", "deleted", "rejected", "withdrawn"]
ChangeStateName = Literal["pending", "applied", "rejected", "withdrawn", "superseded"]
ChangeKindName = Literal["policy.change", "auto_rule.create", "auto_rule.update"]
require(set(RuleStateName.__args__) == {s.value for s in RuleState}, "RuleStateName")  # type: ignore[attr-defined]
require(set(ChangeStateName.__args__) == {s.value for s in ChangeState}, "ChangeStateName")  # type: ignore[attr-defined]
require(set(ChangeKindName.__args__) == {k.value for k in ChangeKind}, "ChangeKindName")  # type: ignore[attr-defined]
RuleName = Annotated[StrictStr, _text(params.LINE_TEXT, RULE_NAME_MAX)]
TimeZoneName = Annotated[StrictStr, StringConstraints(pattern=ZONE_PATTERN, max_length=64)]
RuleWindow = Annotated[StrictInt, _seconds("access_window"), BeforeValidator(_whole)]
_RULE_EXAMPLE: dict[str, Any] = {
    "name": "Calendars during office hours",
    "resources": ["exchange/calendar/*"],
    "access_level": "read",
    "categories": ["customer_request", "incident"],
    "days": ["mon", "tue", "wed", "thu", "fri"],
    "hours": "09:00-17:00",
    "time_zone": "Europe/Berlin",
    "max_access_window_seconds": 3600,
}


class RuleCreate(Body):
    """An auto-approval rule: requests it covers entirely are approved without a person."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_RULE_EXAMPLE]})

    name: RuleName = Field(description="How people see the rule.")
    resources: Annotated[list[Resource], Field(min_length=1, max_length=MAX_PATTERNS)] = Field(
        description="Names or `prefix/*` patterns; every resource of a request must fall "
        "under one of them."
    )
    access_level: Literal["read", "read_write"] | None = Field(
        None, description="The highest level it approves; default: `read`."
    )
    categories: Annotated[list[Category], Field(min_length=1, max_length=len(CATEGORIES))] = Field(
        description="The justification categories it approves."
    )
    days: Annotated[list[DayName], Field(min_length=1, max_length=7)] | None = Field(
        None, description="Days (in `time_zone`); default: Monday to Friday."
    )
    hours: Annotated[StrictStr, StringConstraints(pattern=HOURS)] | None = Field(
        None,
        description="Local hours, `09:00-17:00` (end exclusive; `24:00`: midnight; an end "
        "before the start spans midnight); default: all day. Start and end must differ, "
        "except `00:00-24:00`.",
    )
    time_zone: TimeZoneName | None = Field(
        None,
        description="An IANA time zone the hours are in (`Europe/Berlin`): daylight-saving "
        "time moves them with the clock there. Default: `UTC`.",
    )
    max_access_window_seconds: RuleWindow | None = Field(
        None,
        description="Access it grants lasts at most this long (and never longer than the "
        "policy's access window); default: 3600.",
    )
    enabled: StrictBool | None = Field(None, description="Switched on (default) or off.")

    def settings(self) -> dict[str, Any]:
        """The settings given, as :func:`lockbox.domain.auto_approval.parse_rule` takes them."""
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class RulePatch(Body):
    """The settings to change; omitted ones keep their value. `enabled: false` switches the
    rule off at once; loosening it (or switching it on) may wait for a second admin."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"hours": "10:00-16:00"}, {"enabled": False}]},
    )

    name: RuleName | None = None
    resources: Annotated[list[Resource], Field(min_length=1, max_length=MAX_PATTERNS)] | None = None
    access_level: Literal["read", "read_write"] | None = None
    categories: (
        Annotated[list[Category], Field(min_length=1, max_length=len(CATEGORIES))] | None
    ) = None
    days: Annotated[list[DayName], Field(min_length=1, max_length=7)] | None = None
    hours: Annotated[StrictStr, StringConstraints(pattern=HOURS)] | None = None
    time_zone: TimeZoneName | None = None
    max_access_window_seconds: RuleWindow | None = None
    enabled: StrictBool | None = None

    def settings(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class RuleOut(BaseModel):
    id: str
    tenant_id: str
    name: str
    resources: list[str]
    access_level: Literal["read", "read_write"]
    categories: list[Category]
    days: list[DayName]
    hours: str
    time_zone: str
    max_access_window_seconds: int
    enabled: bool = Field(description="Whether it approves requests now (`state` is active).")
    state: RuleStateName = Field(
        description="`pending`: waits for a second tenant admin; only `active` approves."
    )
    created_by: str
    created_at: str
    updated_by: str
    updated_at: str
    version: int = Field(description="Optimistic concurrency version; also the ETag.")
    pending_changes: list[str] = Field(
        default_factory=list, description="Ids of changes of this rule waiting for a second admin."
    )


class RuleList(BaseModel):
    items: list[RuleOut]


class PendingChangeOut(BaseModel):
    """A change that widens access, waiting for (or decided by) a second tenant admin."""

    id: str
    tenant_id: str
    kind: ChangeKindName
    state: ChangeStateName
    reasons: list[str] = Field(description="Why it needs a second admin, in words.")
    payload: dict[str, Any] = Field(
        description="What it changes: `changes` (policy settings, from → to) and "
        "`base_version`, or `rule_id`, `rule` (the rule's settings) and `base_version`."
    )
    proposed_by: str
    proposed_at: str
    decided_by: str | None
    decided_at: str | None
    comment: str | None
    version: int = Field(description="Optimistic concurrency version; also the ETag.")


class PendingChangeList(BaseModel):
    items: list[PendingChangeOut]


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
    tenant: TenantRef | None = Field(
        None,
        description="The tenant of a customer user (slug or id). Customer callers (tenant "
        "admins) may leave it out: it is then their own tenant, the only one they can add "
        "people to. The provider admin names it for customer roles and leaves it out for staff.",
    )
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
    code: Annotated[StrictStr, _text(params.LINE_TEXT, 64)]
    new_password: Password


class PasswordChange(Body):
    current_password: GivenPassword
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

    tenants: Annotated[list[TenantRef], Field(max_length=1000)] | Literal["*"] = Field(
        description="Tenants (slugs or ids) this service serves, or `*` for every tenant."
    )
    prefixes: Annotated[list[Prefix], Field(min_length=1, max_length=50)] = Field(
        description="Resource prefixes it owns (`exchange/`), or `*` for every resource."
    )
    audience: Audience | None = Field(
        None, description="The `aud` of access tokens for this service."
    )


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

    user: UserRef | None = Field(
        None,
        description="Owner (id or e-mail); default and only choice over the API: yourself.",
    )
    name: Name = "api"
    expires_at: Instant | None = Field(
        None, description="When the token stops working: in the future, within a year."
    )


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

    tenant: TenantRef
    title: Name
    engineer: UserRef | None = Field(
        None,
        description="The engineer the case is assigned to (id or e-mail): only they may ask "
        "for access on it. Default: you, if you are an engineer. A manager who is not an "
        "engineer must name one (422 otherwise).",
    )
    reference: Reference | None = None


class CommentBody(Body):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"comment": "fixed"}]}
    )

    comment: Comment | None = None


#: The body of an action sent without one: no comment. (A body is optional, but when one
#: is sent it is an object: ``null`` is not a comment.)
NO_COMMENT = CommentBody()


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
                    "case_id": "case_7d0m3q8x2v5k1n4p6r9s2t4w6y",
                    "resources": ["exchange/mailbox/alice@contoso.example"],
                    "access_level": "read",
                    "justification": "Inspect the mailbox sync state",
                }
            ]
        },
    )

    tenant: TenantRef
    case_id: CaseId
    resources: Annotated[list[Resource], Field(min_length=1, max_length=MAX_RESOURCES)]
    access_level: Literal["read", "read_write"] = "read"
    justification: Justification
    category: Category = Field(
        "other",
        description="What the access is for; the customer's auto-approval rules select on it.",
    )
    starts_at: Instant | None = Field(
        None,
        description="When access should start (a planned maintenance), at most 7 days ahead; "
        "approvals may come before, access then runs one window from this instant. "
        "Default: when the last approval arrives.",
    )


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
    resources: Annotated[list[Resource], Field(min_length=1, max_length=MAX_RESOURCES)] | None = (
        Field(
            None,
            description="Approve only these (each within what is granted so far): grant less "
            "than was asked, never more.",
        )
    )
    access_level: Literal["read", "read_write"] | None = Field(
        None, description="Approve `read` only, when `read_write` was asked."
    )
    access_window_seconds: AccessWindow | None = Field(
        None, description="A shorter access window than the policy's (or than granted so far)."
    )


class ExtendBody(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"by_seconds": 3600, "reason": "the migration needs another hour"}]
        },
    )

    by_seconds: AccessWindow = Field(
        description="How much more time, in seconds (at most the policy's access window)."
    )
    reason: Justification


class ExtensionDecideBody(Body):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"decision": "approve"}]}
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
    stage: str | None = Field(
        None, description="The key of the stage it was made in (null: before stages existed)."
    )
    on_behalf_of: str | None = Field(
        None, description="Made as this person's delegate (null: in the decider's own right)."
    )


class StageProgressOut(BaseModel):
    key: str
    name: str
    required: int = Field(description="Distinct approvals this stage needs.")
    roles: list[Literal["approver", "tenant_admin"]] = Field(
        description="Who may approve it by role."
    )
    group: str | None = Field(description="Who may approve it by membership of this group.")
    approved_by: list[str] = Field(description="User ids of the approvals counted for it.")
    met: bool


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


class ExtensionOut(BaseModel):
    by_seconds: int
    reason: str
    asked_at: str
    stages: list[StageProgressOut]
    current_stage: str | None


class RequestOut(BaseModel):
    id: str
    tenant_id: str
    case_id: str
    requester_id: str
    resources: list[str]
    access_level: Literal["read", "read_write"]
    justification: str
    category: Category = Field("other", description="What the access is for.")
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
    stages: list[StageProgressOut] = Field(
        default_factory=list,
        description="The customer's approval stages of this request, in order, as frozen "
        "when it reached the customer (empty before that, or with the lockbox off).",
    )
    current_stage: str | None = Field(
        None, description="The key of the stage waiting for approvals; null when none is."
    )
    asked_resources: list[str] | None = Field(
        None,
        description="What the engineer asked for, when an approver granted less (`resources` "
        "is what is granted); null: granted as asked.",
    )
    asked_access_level: Literal["read", "read_write"] | None = None
    access_window_seconds: int | None = Field(
        None, description="The access window granted (null: the policy's)."
    )
    extension: ExtensionOut | None = Field(
        None, description="More time the engineer asked for, waiting for approvals."
    )
    extensions: int = Field(0, description="How many extensions were granted.")
    starts_at: str | None = Field(
        None, description="The scheduled start of access (null: at approval)."
    )
    can_approve: list[str] = Field(
        default_factory=list,
        description="Who may still approve it now: user ids of the current stage's people "
        "who have not decided (in `people`). Filled on single-request reads.",
    )
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


#: Kept for routers written before :mod:`lockbox.api.contract`: error responses are now
#: derived for each route by :class:`lockbox.api.contract.ContractRouter`, so this adds none.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {}


# -- webhooks and the outbox -------------------------------------------------------------------


class WebhookOut(BaseModel):
    id: str
    tenant_id: str | None = Field(description="None: a provider-level endpoint (every tenant).")
    url: str
    format: Literal["standard", "slack", "teams"] = Field(
        description="`standard`: signed JSON events; `slack` / `teams`: chat messages (unsigned)."
    )
    events: list[str] = Field(description="Event types it hears; `*` for all.")
    active: bool
    created_at: str
    created_by: str


class CreatedWebhookOut(WebhookOut):
    secret: str | None = Field(
        description="The signing secret (`whsec_…`): in this response only, never again. "
        "None for `slack` and `teams` endpoints, which are not signed (the URL is the secret)."
    )


class WebhookList(BaseModel):
    items: list[WebhookOut]


class OutboxMessageOut(BaseModel):
    id: str
    channel: str = Field(description="`email` or `webhook`.")
    topic: str
    tenant_id: str | None
    request_id: str | None
    recipient: str
    status: Literal["pending", "sent", "failed", "skipped"]
    attempts: int
    last_error: str | None
    created_at: str | None
    due_at: str | None
    sent_at: str | None
    lease_until: str | None
    only_if_state: str | None
    payload: dict[str, Any] | None = Field(
        None, description="What is sent (one message only; one-time codes redacted)."
    )


class OutboxPage(BaseModel):
    items: list[OutboxMessageOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")


class OutboxStats(BaseModel):
    """How many outbox messages are in each status (what `lockbox outbox stats` prints)."""

    pending: int
    sent: int
    failed: int = Field(description="Parked after the last attempt: retry them one by one.")
    skipped: int


# -- health and keys ------------------------------------------------------------------------


class HealthOut(BaseModel):
    status: str = Field(examples=["ok"])


class Jwks(BaseModel):
    """A JWK Set (RFC 7517): the public keys that verify access tokens."""

    model_config = ConfigDict(extra="allow")

    keys: list[dict[str, Any]]
