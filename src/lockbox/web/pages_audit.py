"""The organisation's audit log, for its auditors and tenant admins: read, filter, verify, download.

The log is shown **oldest first**, in the order of the hash chain, because that is
the order in which it is verified, exported and paged by the API (cursors are
sequence numbers); an auditor who wants recent records narrows the time range.
The page says so above the list.

Everything shown comes from the service layer's ``audit`` use cases, so the page,
the API and the CLI agree: the chain verification at the top is ``audit.verify``,
the downloads stream ``audit.export`` (the very bytes the API serves), and who may
read the log is the permission matrix's decision (an approver gets 403, another
tenant's log does not exist). People are shown by name and e-mail, times in the
person's zone, and the details of a record as "key: value" lines in plain words;
the exact operation name, sequence number and hash are kept next to them, so a
record on screen can be matched with the exported one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from lockbox.domain import errors
from lockbox.domain.audit import AuditRecord, ChainReport
from lockbox.domain.checkpoints import Checkpoint
from lockbox.domain.ids import PREFIXES
from lockbox.domain.roles import Role
from lockbox.service import audit, checkpoints, people, tenants
from lockbox.service.people import Person
from lockbox.web.page import ROLE_LABELS, Page, PageRoute, SignedInPage
from lockbox.web.rendering import localtime, resolve_zone, state_style

router = APIRouter(route_class=PageRoute)

DEFAULT_LIMIT: Final = 50
#: At most this many records are read to list the people in the "Who" filter.
ACTOR_SCAN_LIMIT: Final = 20 * audit.MAX_PAGE
DETAIL_MAX: Final = 300
_ROLE_VALUES: Final = frozenset(r.value for r in Role)
_USER_PREFIX: Final = f"{PREFIXES['user']}_"
#: An instant as the domain spells it (``format_instant``), shown in the person's zone.
_INSTANT: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z")
_MEDIA: Final = {"jsonl": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8"}

#: The operation filter: prefixes of the operation names, in plain words.
OPERATION_GROUPS: Final[tuple[tuple[str, str], ...]] = (
    ("request.", "Access requests and decisions"),
    ("access.", "Use of access (reads, writes, refusals)"),
    ("case.", "Support cases"),
    ("policy.", "Lockbox policy"),
    ("auto_rule.", "Auto-approval rules"),
    ("change.", "Changes for a second admin (four eyes)"),
    ("user.", "People and passwords"),
    ("session.", "Sign-ins and sessions"),
    ("token.", "API tokens"),
    ("webhook.", "Webhooks"),
    ("tenant.", "Organisation set-up"),
)

OPERATIONS: Final[Mapping[str, str]] = {
    "request.submit": "Access requested",
    "request.review_approve": "Request passed the provider's review",
    "request.review_reject": "Request rejected in the provider's review",
    "request.cancel": "Request withdrawn by the engineer",
    "request.approve": "Request approved",
    "request.deny": "Request denied",
    "request.expire": "Request expired: nobody decided in time",
    "request.close": "Request closed",
    "request.revoke": "Access revoked",
    "request.end_access": "Access window ended",
    "request.case_closed": "Request ended: the support case was closed",
    "request.first_use": "Access used for the first time",
    "access.read": "Content read",
    "access.write": "Content changed",
    "access.token_issued": "Access token issued to the engineer",
    "access.check_denied": "Access refused",
    "case.opened": "Support case opened",
    "case.closed": "Support case closed",
    "policy.changed": "Lockbox policy changed",
    "auto_rule.created": "Auto-approval rule in force",
    "auto_rule.updated": "Auto-approval rule changed",
    "auto_rule.enabled": "Auto-approval rule switched on",
    "auto_rule.disabled": "Auto-approval rule switched off",
    "auto_rule.deleted": "Auto-approval rule deleted",
    "change.proposed": "Change proposed: waits for a second admin",
    "change.approved": "Change approved by a second admin",
    "change.rejected": "Change rejected by a second admin",
    "change.withdrawn": "Change withdrawn by its author",
    "change.superseded": "Change superseded: what it changed moved on",
    "user.created": "Person added",
    "user.roles_changed": "Roles changed",
    "user.activated": "Person activated",
    "user.deactivated": "Person deactivated",
    "user.password_set": "Password set by the operator",
    "user.password_changed": "Password changed by its owner",
    "user.password_reset_started": "Password reset code sent",
    "user.password_reset_done": "New password chosen with a reset code",
    "user.password_reset_failed": "Wrong password reset code entered",
    "session.signed_in": "Signed in",
    "session.signed_out": "Signed out",
    "session.signin_failed": "Sign-in failed",
    "session.locked_out": "Sign-in locked after failed attempts",
    "session.revoked_all": "All sessions ended by an administrator",
    "token.created": "API token created",
    "token.revoked": "API token revoked",
    "webhook.create": "Webhook added",
    "webhook.delete": "Webhook deleted",
    "tenant.created": "Organisation set up",
    "tenant.domains_changed": "E-mail domains changed",
}

_KEY_LABELS: Final[Mapping[str, str]] = {
    "user_id": "Person",
    "engineer_id": "Engineer",
    "engineer": "Engineer",
    "requester_id": "Requester",
    "reviewer_id": "Reviewer",
    "case_id": "Support case",
    "email": "E-mail",
    "credential": "Credential",
    "client_ip": "From address",
    "session_id": "Session",
    "sessions": "Sessions ended",
    "token_id": "Token",
    "webhook_id": "Webhook",
    "url": "Address",
    "expires_at": "Expires",
    "occurred_at": "Happened",
    "review_deadline": "Review by",
    "approval_deadline": "Approve by",
    "access_deadline": "Access until",
    "deadline": "Deadline",
    "access_level": "Access level",
    "approval_window_seconds": "Approval window",
    "access_window_seconds": "Access window",
    "review_window_seconds": "Review window",
    "required_approvals": "Required approvals",
    "notify_emails": "Extra notification addresses",
    "reminder_fraction": "Reminder",
    "enabled": "Lockbox on",
    "email_domains": "E-mail domains",
    "rule_id": "Rule",
    "rule_name": "Rule",
    "auto_approved_by_rule": "Approved by the rule",
    "change_id": "Change",
    "reasons": "Why it needs a second admin",
    "proposed_by": "Proposed by",
    "category": "What it is for",
}


def operation_words(operation: str) -> str:
    """``request.approve`` → "Request approved"; unknown ones read as their words."""
    known = OPERATIONS.get(operation)
    if known is not None:
        return known
    group, _, action = operation.partition(".")
    words = f"{group} {action}".replace("_", " ").strip()
    return words[:1].upper() + words[1:]


# -- filters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What the person asked for, as typed (``raw``) and as the service takes it."""

    raw: dict[str, str]
    operation: str | None = None
    request_id: str | None = None
    actor_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int = 0
    limit: int = DEFAULT_LIMIT

    @property
    def narrowed(self) -> bool:
        return any(self.raw.get(k) for k in ("operation", "request", "actor", "from", "to"))

    def url(self, after: int | None = None) -> str:
        """This view's address, optionally at another cursor (empty values left out)."""
        query = {k: v for k, v in self.raw.items() if v and k != "after"}
        if after:
            query["after"] = str(after)
        return "/audit" + (f"?{urlencode(query)}" if query else "")


_FILTER_KEYS: Final = ("operation", "request", "actor", "from", "to", "after", "limit")
_MINUTE: Final = timedelta(minutes=1)
#: What people type (``datetime-local`` sends the first), and how long the typed instant lasts.
_DATE_FORMATS: Final = (
    ("%Y-%m-%dT%H:%M", _MINUTE),
    ("%Y-%m-%dT%H:%M:%S", timedelta(seconds=1)),
    ("%Y-%m-%d %H:%M", _MINUTE),
    ("%Y-%m-%d %H:%M:%S", timedelta(seconds=1)),
    ("%Y-%m-%d", timedelta(days=1)),
)
_DATE_HINT: Final = "Enter a date and time such as 2026-01-05 14:30"


def parse_local(text: str, zone: tzinfo, *, end: bool) -> datetime:
    """A date-time typed in the person's zone, as UTC.

    The end of a range includes the minute (or the day) typed: "to 14:30" keeps the
    records of 14:30:59, because that is what a person means by it.
    """
    for fmt, span in _DATE_FORMATS:
        try:
            local = datetime.strptime(text.strip(), fmt)  # noqa: DTZ007 (zone attached below)
        except ValueError:
            continue
        return (local + span if end else local).replace(tzinfo=zone).astimezone(UTC)
    raise ValueError(text)


def parse_filters(params: Mapping[str, str], zone: tzinfo) -> tuple[Filters, dict[str, str]]:
    """The query string as filters, and what could not be read (field → message)."""
    raw = {k: params.get(k, "").strip() for k in _FILTER_KEYS}
    problems: dict[str, str] = {}
    found: dict[str, Any] = {}
    if raw["operation"] and raw["operation"] not in dict(OPERATION_GROUPS):
        problems["operation"] = "Choose one of the kinds of records listed"
    for key, end in (("from", False), ("to", True)):
        if raw[key]:
            try:
                found["since" if key == "from" else "until"] = parse_local(raw[key], zone, end=end)
            except ValueError:
                problems[key] = _DATE_HINT
    since, until = found.get("since"), found.get("until")
    if since is not None and until is not None and until <= since:
        problems["to"] = "The end of the time range must be after its start"
    if len(raw["request"]) > 100:
        problems["request"] = "A request id is at most 100 characters"
    after = _whole(raw["after"], 0, audit.MAX_SEQ) if raw["after"] else 0
    limit = _whole(raw["limit"], 1, audit.MAX_PAGE) if raw["limit"] else DEFAULT_LIMIT
    if after is None:
        problems["_after"] = "This page link is not valid: start again from the first page."
    if limit is None:
        problems["_limit"] = f"Show from 1 to {audit.MAX_PAGE} records per page."
    filters = Filters(
        raw=raw,
        operation=raw["operation"] or None,
        request_id=raw["request"] or None,
        actor_id=raw["actor"] or None,
        since=since,
        until=until,
        after=after or 0,
        limit=limit or DEFAULT_LIMIT,
    )
    return filters, problems


def _whole(text: str, low: int, high: int) -> int | None:
    """A whole number in ``low..high`` typed in a URL (ASCII digits only), else None."""
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    value = int(text)
    return value if low <= value <= high else None


# -- records in plain words -----------------------------------------------------------------


@dataclass(frozen=True)
class Detail:
    """One "key: value" line of a record's details; ``person`` when the value is someone."""

    label: str
    text: str = ""
    person: Person | None = None
    code: bool = False


@dataclass(frozen=True)
class RecordView:
    seq: int
    at: datetime
    who: Person
    operation: str
    words: str
    request_id: str | None
    details: list[Detail]
    hash: str


def _label(key: str) -> str:
    known = _KEY_LABELS.get(key)
    if known is not None:
        return known
    words = key.removesuffix("_seconds").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def is_person_id(value: object) -> bool:
    """Whether a detail value names a person (user ids carry their own prefix)."""
    return isinstance(value, str) and value.startswith(_USER_PREFIX)


@dataclass(frozen=True)
class _Context:
    """What turning details into words needs: the people named, the zone to show times in."""

    who: Mapping[str, Person]
    zone: tzinfo


def _value(key: str, value: object, ctx: _Context) -> str:
    """A detail value in words: durations, percentages, local times, people, lists, yes/no."""
    if value is None:
        return "never" if key == "expires_at" else "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key.endswith("_seconds") and isinstance(value, int):
        return format_seconds(value)
    if key == "reminder_fraction" and isinstance(value, int | float):
        return f"{value * 100:g}% of the approval window left" if value else "no reminder"
    if isinstance(value, list | tuple):
        return ", ".join(_value(key, v, ctx) for v in value) or "none"
    if isinstance(value, dict):
        return _clip(json.dumps(value, ensure_ascii=False, sort_keys=True))
    if is_person_id(value) and str(value) in ctx.who:
        return ctx.who[str(value)].label
    if key == "roles" and str(value) in _ROLE_VALUES:
        return ROLE_LABELS[Role(str(value))]
    text = str(value)
    if _INSTANT.fullmatch(text):
        return localtime(datetime.fromisoformat(text), ctx.zone)
    return _clip(text)


def _clip(text: str) -> str:
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 1] + "…"


def format_seconds(seconds: int) -> str:
    """A duration as people type it in the policy form: ``12h``, ``90m`` → ``1h30m``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{amount}{unit}" for amount, unit in parts if amount) or "0m"


def _change_words(operation: str, value: object) -> str:
    """A state or role named in a from/to pair, in the words the pages use for it."""
    if isinstance(value, list):
        return ", ".join(_change_words(operation, v) for v in value) or "none"
    if value is None:
        return "—"
    if operation.startswith("request."):
        return state_style(str(value)).label
    if operation == "user.roles_changed":
        try:
            return ROLE_LABELS[Role(str(value))]
        except ValueError:
            return str(value)
    return str(value)


_CHANGE_LABELS: Final = {"user.roles_changed": "Roles", "tenant.domains_changed": "E-mail domains"}


def _change(operation: str, before: object, after: object) -> Detail:
    """The ``from``/``to`` of a record as one line: "State: Pending approval → Approved"."""
    label = _CHANGE_LABELS.get(operation, "State")
    target = _change_words(operation, after)
    if before is None:
        return Detail(label, f"{target} (new)")
    return Detail(label, f"{_change_words(operation, before)} → {target}")


def details_of(record: AuditRecord, who: Mapping[str, Person], zone: tzinfo) -> list[Detail]:
    """The record's details as lines, in plain words; ids of people become the people."""
    details = dict(record.details)
    ctx = _Context(who, zone)
    lines: list[Detail] = []
    if "from" in details and "to" in details:
        lines.append(_change(record.operation, details.pop("from"), details.pop("to")))
    for key, value in details.items():
        lines.extend(_detail(key, value, ctx, ""))
    return lines


def _detail(key: str, value: object, ctx: _Context, prefix: str) -> list[Detail]:
    label = prefix + _label(key)
    if isinstance(value, dict):
        if set(value) == {"from", "to"}:
            words = f"{_value(key, value['from'], ctx)} → {_value(key, value['to'], ctx)}"
            return [Detail(label, words)]
        inner = "" if key == "changes" else f"{label} › "
        return [d for k, v in value.items() for d in _detail(str(k), v, ctx, inner)]
    if is_person_id(value) and str(value) in ctx.who:
        return [Detail(label, person=ctx.who[str(value)])]
    code = key.endswith("_id") or key in ("credential", "client_ip", "hash")
    return [Detail(label, _value(key, value, ctx), code=code)]


def _people_ids(records: list[AuditRecord]) -> set[str]:
    ids = {r.actor_id for r in records}
    for record in records:
        ids.update(_person_values(record.details))
    return ids


def _person_values(value: object) -> set[str]:
    """Every person id anywhere in a record's details (nested dicts and lists included)."""
    if isinstance(value, dict):
        return {i for v in value.values() for i in _person_values(v)}
    if isinstance(value, list | tuple):
        return {i for v in value for i in _person_values(v)}
    return {value} if isinstance(value, str) and is_person_id(value) else set()


def record_views(page: Page, records: list[AuditRecord]) -> list[RecordView]:
    who = people.resolve(page.app, _people_ids(records))
    zone = resolve_zone(page.tz)
    return [
        RecordView(
            seq=r.seq,
            at=r.at,
            who=who[r.actor_id],
            operation=r.operation,
            words=operation_words(r.operation),
            request_id=r.request_id,
            details=details_of(r, who, zone),
            hash=r.hash,
        )
        for r in records
    ]


# -- who appears in the log -----------------------------------------------------------------


def actor_choices(
    page: Page, tenant_id: str, domains: tuple[str, ...], also: set[str]
) -> list[tuple[str, str]]:
    """The "Who" filter: everyone who appears in the log, by name and e-mail.

    The service has no "distinct actors" query, so the log is read in its largest
    pages, up to :data:`ACTOR_SCAN_LIMIT` records; ``also`` (the people on the page
    shown, the person filtered by) are always offered.
    """
    ids = set(also)
    after: int | None = 0
    scanned = 0
    while after is not None and scanned < ACTOR_SCAN_LIMIT:
        records, after = audit.query(
            page.app, page.actor, tenant_id, after_seq=after, limit=audit.MAX_PAGE
        )
        ids.update(r.actor_id for r in records)
        scanned += len(records)
    found = people.resolve(page.app, ids)
    provider = page.settings.provider_name

    def label(p: Person) -> str:
        if not p.email:
            return p.display_name
        staff = p.email.rpartition("@")[2].lower() not in domains
        return f"{p.display_name} <{p.email}>" + (f" · {provider}" if staff else "")

    ordered = sorted(found.values(), key=lambda p: (p.kind != "user", label(p).casefold()))
    return [("", "Anyone"), *((p.id, label(p)) for p in ordered)]


# -- verification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int
    head: str
    problem: str | None
    broken_seq: int | None


def verification(report: ChainReport) -> Verification:
    head = f"{report.head_seq}:{report.head_hash[:12]}…"
    return Verification(report.ok, report.records, head, report.problem, report.broken_seq)


# -- pages ----------------------------------------------------------------------------------


def _tenant_id(page: Page) -> str:
    user = page.session.user if page.session else None
    if user is None or not user.tenant_id:
        raise errors.PermissionDenied(
            "the audit log page is for a customer organisation's auditors and administrators"
        )
    return user.tenant_id


@contextmanager
def _auditors_only() -> Iterator[None]:
    """The matrix's refusal in this page's words (an expired form keeps its own)."""
    try:
        yield
    except errors.PermissionDenied as exc:
        if type(exc) is not errors.PermissionDenied:
            raise
        raise errors.PermissionDenied(
            "only your organisation's auditors and tenant admins can read its audit log"
        ) from exc


@router.get("/audit")
def audit_log(page: SignedInPage) -> Response:
    """A page of the log with its filters, the chain's verification and the downloads."""
    tenant_id = _tenant_id(page)
    zone = resolve_zone(page.tz)
    with _auditors_only():  # refuses anyone else before anything is read
        report = audit.verify(page.app, page.actor, tenant_id)[0]
    tenant = tenants.get_tenant(page.app, page.actor, tenant_id)
    filters, problems = parse_filters(page.request.query_params, zone)
    records: list[AuditRecord] = []
    next_after: int | None = None
    if not problems:
        try:
            records, next_after = audit.query(
                page.app,
                page.actor,
                tenant_id,
                request_id=filters.request_id,
                operation=filters.operation,
                actor_id=filters.actor_id,
                since=filters.since,
                until=filters.until,
                after_seq=filters.after,
                limit=filters.limit,
            )
        except errors.ValidationError as exc:
            problems["_query"] = exc.message[:1].upper() + exc.message[1:] + "."
    also = {r.actor_id for r in records} | ({filters.actor_id} if filters.actor_id else set())
    return page.render(
        "audit/index.html",
        title="Audit log",
        section="audit",
        status=422 if problems else 200,
        tenant=tenant,
        verification=verification(report),
        checkpoint=_checkpoint(page, tenant_id),
        filters=filters,
        errors=problems,
        records=record_views(page, records),
        operation_options=[("", "All kinds"), *OPERATION_GROUPS],
        actor_options=actor_choices(page, tenant_id, tenant.email_domains, also),
        next_url=filters.url(next_after) if next_after is not None else None,
        first_url=filters.url() if filters.after else None,
        default_limit=DEFAULT_LIMIT,
    )


def _checkpoint(page: Page, tenant_id: str) -> Checkpoint | None:
    """The chain's latest signed checkpoint, shown with the log (issue #12)."""
    found = checkpoints.latest(page.app, page.actor, tenant_id)
    return found.checkpoint if found else None


@router.get("/audit/checkpoint.json")
def checkpoint_json(page: SignedInPage) -> Response:
    """The latest signed checkpoint, as the file to keep."""
    tenant_id = _tenant_id(page)
    with _auditors_only():
        found = checkpoints.latest(page.app, page.actor, tenant_id)
    if found is None:
        raise errors.NotFound("there is no signed checkpoint of this log yet")
    name = f"checkpoint-{found.checkpoint.seq}.json"
    return Response(
        json.dumps(found.checkpoint.document(), indent=2, ensure_ascii=False) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _export(page: Page, fmt: str) -> Response:
    """The whole log as a download, streamed from the same export the API serves."""
    tenant_id = _tenant_id(page)
    with _auditors_only():  # checked before the first chunk
        chunks: Iterator[str] = audit.export(page.app, page.actor, tenant_id, fmt)
    slug = tenants.get_tenant(page.app, page.actor, tenant_id).slug
    filename = f"audit-{slug}-{page.now:%Y-%m-%d}.{fmt}"
    return StreamingResponse(
        (chunk.encode("utf-8") for chunk in chunks),
        media_type=_MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/audit/export.jsonl")
def export_jsonl(page: SignedInPage) -> Response:
    return _export(page, "jsonl")


@router.get("/audit/export.csv")
def export_csv(page: SignedInPage) -> Response:
    return _export(page, "csv")
