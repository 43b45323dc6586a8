"""Reports of what engineers did at a resource service: each becomes an audit record.

A resource service reports every action it allowed (``success`` / ``failure``) and
every attempt it refused (``denied``), so the customer's auditor sees both. Each
event lands in the chain of the tenant whose content it concerns: the request's
tenant, or the tenant the service names when it refused a path of one tenant with
a grant of another (then nothing about the other tenant is recorded).

Each event of a batch stands alone: an invalid one is listed in
:attr:`ReportResult.rejected` and never costs the others their record. Resource
names the service could not even parse are kept, escaped, as ``resource_raw`` on a
refusal instead of being dropped. A service only reports for the tenants and
resource prefixes it is registered for; anything else reads as a missing request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lockbox.domain import text
from lockbox.domain.errors import ValidationError
from lockbox.domain.instants import format_instant
from lockbox.domain.lifecycle import State
from lockbox.domain.permissions import Intent, authorize
from lockbox.domain.request import AccessRequest, check_access
from lockbox.domain.resource_service import ServiceScope
from lockbox.domain.resources import Action, validate_resource
from lockbox.domain.roles import Principal
from lockbox.service import notifications
from lockbox.service.app import Lockbox, Tx
from lockbox.service.resource_services import scope_of
from lockbox.store import repositories as repo

OUTCOMES = ("success", "failure", "denied")
MAX_EVENTS = 100
DETAIL_MAX = 2000
RAW_MAX = 512
REASON_MAX = 64
#: How far from the server's clock a reported time may be: a reporter may hold events
#: through an outage of Lockbox, but not for months, and not from the future.
OCCURRED_PAST = timedelta(days=30)
OCCURRED_FUTURE = timedelta(minutes=10)
_NOT_FOUND = "no such access request"


@dataclass(frozen=True)
class RecordedEvent:
    index: int
    audit_id: str
    tenant_id: str
    seq: int
    request_id: str | None
    operation: str
    flag: str | None = None
    first_use: bool = False


@dataclass(frozen=True)
class RejectedEvent:
    index: int
    field: str
    message: str


@dataclass(frozen=True)
class ReportResult:
    recorded: list[RecordedEvent] = field(default_factory=list)
    rejected: list[RejectedEvent] = field(default_factory=list)


@dataclass
class _Planned:
    """One valid event, classified, before anything is written."""

    index: int
    tenant_id: str
    request: AccessRequest | None
    action: Action
    details: dict[str, Any]
    flag: str | None

    @property
    def may_be_first_use(self) -> bool:
        return (
            self.request is not None
            and self.flag is None
            and self.details.get("outcome") == "success"
        )


def report_events(app: Lockbox, actor: Principal, events: object) -> ReportResult:
    """Record each valid event in its tenant's chain; list the invalid ones."""
    authorize(actor, Intent.ACCESS_REPORT, kind="access", tenant_id=None)
    if not isinstance(events, list) or not events:
        raise ValidationError("events", "report at least one event")
    if len(events) > MAX_EVENTS:
        raise ValidationError("events", f"at most {MAX_EVENTS} events per report")
    result = ReportResult()
    with app.tx() as tx:
        scope = scope_of(tx, actor)
        planned: list[_Planned] = []
        for index, event in enumerate(events):
            try:
                planned.append(_plan(tx, scope, event, index))
            except ValidationError as exc:
                message = exc.message.removeprefix(f"{exc.field}: ")
                result.rejected.append(RejectedEvent(index, exc.field, message))
        # Lock order: request rows (first-use marks, in id order) before the audit head.
        candidates = sorted({p.request.id for p in planned if p.request and p.may_be_first_use})
        first_uses = {rid for rid in candidates if repo.mark_first_use(tx.conn, rid, tx.now)}
        # Then the audit heads, one tenant after another in id order: two reports naming
        # the same tenants in opposite orders must not wait for each other's heads.
        for item in sorted(planned, key=lambda p: (p.tenant_id, p.index)):
            first = item.request is not None and item.request.id in first_uses
            if first and item.request is not None:
                first_uses.discard(item.request.id)
                item.details["first_use"] = True
            record = tx.audit(
                tenant_id=item.tenant_id,
                actor=actor,
                operation=f"access.{item.action.value}",
                request_id=item.request.id if item.request else None,
                details=item.details,
            )
            if first and item.request is not None:
                notifications.plan_first_use(tx, item.request)
            result.recorded.append(
                RecordedEvent(
                    index=item.index,
                    audit_id=record.id,
                    tenant_id=item.tenant_id,
                    seq=record.seq,
                    request_id=record.request_id,
                    operation=record.operation,
                    flag=item.flag,
                    first_use=first,
                )
            )
    result.recorded.sort(key=lambda r: r.index)
    return result


def _plan(tx: Tx, scope: ServiceScope, event: object, index: int) -> _Planned:
    prefix = f"events[{index}]"
    if not isinstance(event, dict):
        raise ValidationError(prefix, "must be an object")
    action = _action(event.get("action"), f"{prefix}.action")
    outcome = event.get("outcome") or "success"
    if outcome not in OUTCOMES:
        raise ValidationError(f"{prefix}.outcome", f"must be one of {', '.join(OUTCOMES)}")
    detail = text.text(event.get("detail"), f"{prefix}.detail", max_len=DETAIL_MAX, required=False)
    reason = text.text(
        event.get("reason"), f"{prefix}.reason", max_len=REASON_MAX, required=False, multiline=False
    )
    engineer_ref = text.text(
        event.get("engineer"), f"{prefix}.engineer", max_len=320, required=False, multiline=False
    )
    occurred = _occurred_at(event.get("occurred_at"), f"{prefix}.occurred_at", tx.now)
    resource, raw = _resource(event.get("resource"), f"{prefix}.resource", outcome)
    if resource is not None and not scope.owns(resource):
        raise ValidationError(f"{prefix}.resource", "is not a resource this service serves")
    request = _request(tx, scope, event.get("request_id"), f"{prefix}.request_id")
    tenant_id = _tenant(tx, scope, event.get("tenant"), f"{prefix}.tenant", request)
    details: dict[str, Any] = {"action": action.value, "outcome": outcome}
    if resource is not None:
        details["resource"] = resource
    else:
        details["resource_raw"] = raw
    for key, value in (("detail", detail), ("reason", reason)):
        if value:
            details[key] = value
    if occurred is not None:
        details["occurred_at"] = format_instant(occurred)
    engineer = repo.get_user(tx.conn, engineer_ref) if engineer_ref else None
    flag: str | None = None
    if request is not None and request.tenant_id != tenant_id:
        # A grant of one tenant used on another tenant's content: record it in the
        # content's tenant, naming the engineer but nothing of the other tenant.
        request, flag = None, "grant_of_another_tenant"
    if request is None:
        details["engineer"] = engineer.id if engineer else None
        if engineer_ref and engineer is None:
            details["reported_engineer"] = engineer_ref
        if flag is None and outcome != "denied":
            flag = "no_request"
    else:
        details["engineer"] = request.requester_id
        flag = _request_flag(tx, request, engineer_ref, engineer, resource, action, details)
    if resource is None and flag is None:
        flag = "unparseable_resource"
    if flag:
        details["flag"] = flag
    return _Planned(index, tenant_id, request, action, details, flag)


def _request_flag(
    tx: Tx,
    request: AccessRequest,
    engineer_ref: str | None,
    engineer: Any,
    resource: str | None,
    action: Action,
    details: dict[str, Any],
) -> str | None:
    """What was wrong with an action reported under ``request`` (None: it was covered)."""
    if engineer_ref is not None and (engineer is None or engineer.id != request.requester_id):
        details["reported_engineer"] = engineer_ref
        return "not_requester"
    if resource is None:
        return "unparseable_resource"
    decision = check_access(request, request.requester_id, resource, action, tx.now)
    if decision.allowed:
        return None
    state = request.effective_state(tx.now)
    details["request_state"] = state.value
    return "request_not_active" if state is not State.APPROVED else str(decision.reason)


def _action(value: object, field_name: str) -> Action:
    try:
        return Action(str(value))
    except ValueError:
        raise ValidationError(field_name, "must be 'read' or 'write'") from None


def _resource(value: object, field_name: str, outcome: str) -> tuple[str | None, str | None]:
    """(the validated name, None), or for a refused unparseable name (None, escaped raw)."""
    try:
        return validate_resource(value, field_name, pattern=False), None
    except ValidationError:
        if outcome != "denied" or not isinstance(value, str) or not value:
            raise
    return None, escape_raw(value)


def escape_raw(value: str) -> str:
    """A name made safe to store and show: non-printable characters as ``\\uXXXX``, bounded."""
    escaped = "".join(
        c if c.isprintable() and c != "\\" else f"\\u{ord(c):04x}" for c in value[:RAW_MAX]
    )
    return escaped + ("…" if len(value) > RAW_MAX else "")


def _occurred_at(value: object, field_name: str, now: datetime) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise ValidationError(field_name, "must be an RFC 3339 time with a zone")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValidationError(field_name, "must be an RFC 3339 time with a zone") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValidationError(field_name, "must include a time zone (e.g. 2026-01-05T09:00:00Z)")
    try:
        if not now - OCCURRED_PAST <= parsed <= now + OCCURRED_FUTURE:
            raise ValidationError(
                field_name,
                "must be within the last 30 days and not in the future (check the clock)",
            )
    except OverflowError:
        raise ValidationError(field_name, "is out of range") from None
    return parsed


def _request(tx: Tx, scope: ServiceScope, value: object, field_name: str) -> AccessRequest | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 40 or not value.isprintable():
        raise ValidationError(field_name, "is not a request id")
    request = repo.get_request(tx.conn, value)
    if request is None or not scope.serves_tenant(request.tenant_id):
        raise ValidationError(field_name, _NOT_FOUND)  # foreign reads exactly like missing
    return request


def _tenant(
    tx: Tx, scope: ServiceScope, value: object, field_name: str, request: AccessRequest | None
) -> str:
    """The tenant whose content the event concerns: named by the service, else the request's."""
    if value is None or value == "":
        if request is None:
            raise ValidationError(field_name, "name the tenant, or the request, the event is about")
        return request.tenant_id
    if not isinstance(value, str) or len(value) > 100 or not value.isprintable():
        raise ValidationError(field_name, "must be a tenant slug or id")
    tenant = repo.get_tenant(tx.conn, value)
    if tenant is None or not scope.serves_tenant(tenant.id):
        raise ValidationError(field_name, "no such tenant")
    return tenant.id
