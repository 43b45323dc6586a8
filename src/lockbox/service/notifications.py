"""Who hears what: turns a request change into outbox rows, inside its transaction.

Recipients are resolved *now*, while the change commits, and each row carries
a snapshot of what it announces, so a message rendered hours later (after an
outage) still says what was true when it happened. Rendering and delivery are
the worker's job (:mod:`lockbox.notify`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from lockbox.domain.audit import PROVIDER_CHAIN, format_time
from lockbox.domain.lifecycle import Event, State
from lockbox.domain.request import AccessRequest, Change
from lockbox.domain.roles import Principal, Role
from lockbox.domain.user import User
from lockbox.service import approvers
from lockbox.store import repositories as repo
from lockbox.store.outbox import OutboxMessage, enqueue, enqueue_many

if TYPE_CHECKING:
    from lockbox.service.app import Tx

#: Email topics; each has a template in ``lockbox/notify/templates``.
TOPICS = (
    "review_needed",
    "approval_needed",
    "approval_reminder",
    "approved",
    "rejected",
    "denied",
    "expired",
    "revoked",
    "access_ended",
    "closed",
    "canceled",
    "first_use",
    "access_ending",
    "extension_needed",
    "extended",
    "extension_denied",
    "password_reset",
    "audit_digest",
)

#: The webhook event type of a signed checkpoint (also in ``service.webhooks.EVENT_TYPES``).
CHECKPOINT_EVENT = "audit.checkpoint"

#: Payload keys holding a secret (a one-time code): never shown in outbox views, and
#: scrubbed from the row once the message is sent.
SECRET_KEYS = frozenset({"secret_code"})


def redact(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with every secret replaced: what operators may see of it."""
    return {k: ("[redacted]" if k in SECRET_KEYS else v) for k, v in payload.items()}


_REQUESTER_TOPIC: dict[Event, str] = {
    Event.REVIEW_REJECT: "rejected",
    Event.DENY: "denied",
    Event.EXPIRE: "expired",
    Event.REVOKE: "revoked",
    Event.END_ACCESS: "access_ended",
}


#: A payload key: the message is only sent while the request's access deadline is still
#: this one (a warning that access ends soon is dropped once an extension moved it).
ONLY_IF_DEADLINE = "only_if_access_deadline"
#: How long before access ends the engineer is warned.
ENDING_WARNING = timedelta(minutes=15)


def snapshot(tx: Tx, request: AccessRequest, change: Change | None = None) -> dict[str, Any]:
    """Everything a message about ``request`` needs, captured at this moment."""
    tenant = tx.tenant(request.tenant_id)
    case = tx.case(request.case_id)
    requester = tx.user(request.requester_id)
    deadline = request.stage_deadline()
    data: dict[str, Any] = {
        "request_id": request.id,
        "state": request.state.value,
        "tenant_id": request.tenant_id,
        "tenant_name": tenant.name if tenant else request.tenant_id,
        "case_id": request.case_id,
        "case_title": case.title if case else "",
        "case_reference": case.reference if case else None,
        "requester": requester.display_name if requester else request.requester_id,
        "requester_email": requester.email if requester else None,
        "resources": list(request.resources),
        "access_level": request.access_level.value,
        "justification": request.justification,
        "deadline": format_time(deadline) if deadline else None,
        "access_deadline": format_time(request.access_deadline)
        if request.access_deadline
        else None,
        "required_approvals": request.required_approvals,
        "approvals": len(request.approvals()),
        "at": format_time(tx.now),
    }
    if request.asked_resources is not None or request.asked_level is not None:
        data["asked_resources"] = list(request.asked_resources or request.resources)
        data["asked_access_level"] = (request.asked_level or request.access_level).value
    if request.extension is not None:
        data["extension_seconds"] = int(request.extension.by.total_seconds())
        data["extension_reason"] = request.extension.reason
    if change is not None and "auto_approved_by_rule" in change.details:
        # Approved by one of the customer's own auto-approval rules, not by a person.
        data["approved_by_rule"] = change.details["auto_approved_by_rule"]
        data["rule_name"] = change.details.get("rule_name")
    if change is not None:
        data.update(
            event=change.event.value,
            actor=change.actor.display or change.actor.id,
            actor_kind=change.actor.kind.value,
            comment=change.comment,
        )
    return data


def plan(tx: Tx, change: Change) -> None:
    """Queue the e-mails and webhook deliveries that ``change`` calls for."""
    request = change.request
    data = snapshot(tx, request, change)
    emails: list[tuple[str, str]] = []  # (topic, address)
    reminders: list[OutboxMessage] = []
    warn_ending = False  # access starts or is extended: warn before it ends
    requester = tx.user(request.requester_id)
    requester_addr = [requester.email] if requester and requester.active else []
    event = change.event

    if event is Event.SUBMIT:
        emails += _to(
            "review_needed", repo.emails_with_roles(tx.conn, [Role.MANAGER], tenant_id=None)
        )
    elif (event is Event.REVIEW_APPROVE and change.target is State.PENDING_APPROVAL) or (
        event is Event.APPROVE and "next_stage" in change.details
    ):
        # The request reached the customer, or its next stage: that stage's people hear.
        to_ask = _approver_addresses(tx, request)
        emails += _to("approval_needed", to_ask)
        reminders = _reminders(tx, request, data, to_ask)
    elif change.target is State.APPROVED and change.source is not State.APPROVED:
        emails += _to("approved", requester_addr)
        warn_ending = True
    elif (event is Event.EXTEND and request.extension is not None) or (
        event is Event.EXTEND_APPROVE and "next_stage" in change.details
    ):
        emails += _to("extension_needed", _approver_addresses(tx, request))
    elif event in (Event.EXTEND, Event.EXTEND_APPROVE) and request.extension is None:
        emails += _to("extended", requester_addr)
        warn_ending = True
    elif event is Event.EXTEND_DENY:
        emails += _to("extension_denied", requester_addr)
    elif event in _REQUESTER_TOPIC:
        emails += _to(_REQUESTER_TOPIC[event], requester_addr)
    elif change.actor.id != request.requester_id and change.target in (
        State.CLOSED,
        State.CANCELED,
    ):
        emails += _to(change.target.value, requester_addr)

    # The customer's approvers hear when access they granted ends, however it ends.
    if change.source is State.APPROVED and change.target.terminal and request.customer_step:
        emails += _to("access_ended", _decided_addresses(tx, request))
    if change.source is State.PENDING_APPROVAL and change.target in (State.CANCELED,):
        # Everyone who was asked to approve (approvers, tenant admins, the policy's extra
        # addresses: the approval_needed list) hears the ask is withdrawn, so nobody acts
        # on, or keeps waiting for, a request that no longer exists.
        emails += _to("canceled", _approver_addresses(tx, request))

    messages = [
        OutboxMessage(
            channel="email",
            topic=topic,
            recipient=address,
            payload=data,
            tenant_id=request.tenant_id,
            request_id=request.id,
        )
        for topic, address in dict.fromkeys(emails)  # once per (topic, address)
    ]
    messages += reminders
    messages += _webhook_messages(tx, f"request.{event.value}", request.tenant_id, request.id, data)
    if warn_ending and (due := _ending_due(request)) is not None and due > tx.now:
        messages += _ending_warning(tx, request, data, requester_addr)
        messages += _webhook_messages(
            tx,
            "request.access_ending",
            request.tenant_id,
            request.id,
            _ending_data(request, data),
            due_at=due,
            only_if_state=State.APPROVED.value,
        )
    enqueue_many(tx.conn, messages, tx.now)


def plan_first_use(tx: Tx, request: AccessRequest) -> None:
    """Approvers hear when access they approved is used for the first time."""
    data = snapshot(tx, request)
    for address in _decided_addresses(tx, request):
        enqueue(
            tx.conn,
            OutboxMessage(
                channel="email",
                topic="first_use",
                recipient=address,
                payload=data,
                tenant_id=request.tenant_id,
                request_id=request.id,
            ),
            tx.now,
        )
    plan_webhooks(tx, "request.first_use", request.tenant_id, request.id, data)


def plan_password_reset(
    tx: Tx, user: User, *, code: str, expires_at: datetime, actor: Principal
) -> None:
    """The one-time code goes to the user's own address, and nowhere else (no webhook)."""
    tenant = tx.tenant(user.tenant_id) if user.tenant_id else None
    enqueue(
        tx.conn,
        OutboxMessage(
            channel="email",
            topic="password_reset",
            recipient=user.email,
            payload={
                "secret_code": code,
                "user_name": user.display_name,
                "tenant_name": tenant.name if tenant else None,
                "actor": actor.display or actor.id,
                "expires_at": format_time(expires_at),
                "at": format_time(tx.now),
            },
            tenant_id=user.tenant_id,
        ),
        tx.now,
    )


def plan_checkpoint(tx: Tx, chain: str, document: dict[str, Any]) -> None:
    """A signed checkpoint goes to the chain's own webhooks only: a tenant's endpoints for
    its chain (provider-level endpoints do not need a customer's evidence), the
    provider-level endpoints for the provider's chain."""
    tenant_id = None if chain == PROVIDER_CHAIN else chain
    data = {"tenant_id": chain, "checkpoint": document}
    messages = [
        m
        for m in _webhook_messages(tx, CHECKPOINT_EVENT, tenant_id, None, data)
        if _hook_tenant(tx, tenant_id, m.recipient) == tenant_id
    ]
    enqueue_many(tx.conn, messages, tx.now)


def _hook_tenant(tx: Tx, tenant_id: str | None, hook_id: str) -> str | None:
    for hook in tx.webhooks(tenant_id):
        if hook["id"] == hook_id:
            found: str | None = hook["tenant_id"]
            return found
    return None


def plan_digest(
    tx: Tx, chain: str, chain_name: str, checkpoint: dict[str, Any], recipients: list[str]
) -> None:
    """The daily digest: a chain's latest signed head (sequence and hash only, no links) to
    the people who keep the provider honest (a tenant's auditors; provider admins for the
    provider's chain), so a copy of the head lives outside Lockbox's database."""
    payload = {
        "tenant_id": chain,
        "tenant_name": chain_name,
        "audit_seq": checkpoint["seq"],
        "audit_hash": checkpoint["hash"],
        "audit_kid": checkpoint["kid"],
        "at": checkpoint["at"],
    }
    messages = [
        OutboxMessage(
            channel="email",
            topic="audit_digest",
            recipient=address,
            payload=payload,
            tenant_id=None if chain == PROVIDER_CHAIN else chain,
        )
        for address in dict.fromkeys(recipients)
    ]
    enqueue_many(tx.conn, messages, tx.now)


def plan_webhooks(
    tx: Tx, event_type: str, tenant_id: str | None, request_id: str | None, data: dict[str, Any]
) -> None:
    enqueue_many(tx.conn, _webhook_messages(tx, event_type, tenant_id, request_id, data), tx.now)


def _webhook_messages(
    tx: Tx,
    event_type: str,
    tenant_id: str | None,
    request_id: str | None,
    data: dict[str, Any],
    *,
    due_at: datetime | None = None,
    only_if_state: str | None = None,
) -> list[OutboxMessage]:
    messages = []
    for hook in tx.webhooks(tenant_id):
        events = hook["events"] or ["*"]
        if "*" not in events and event_type not in events:
            continue
        messages.append(
            OutboxMessage(
                channel="webhook",
                topic=event_type,
                recipient=hook["id"],
                payload=_webhook_payload(event_type, due_at or tx.now, data),
                tenant_id=tenant_id,
                request_id=request_id,
                due_at=due_at,
                only_if_state=only_if_state,
            )
        )
    return messages


def _webhook_payload(event_type: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {"type": event_type, "timestamp": format_time(at), "data": data}
    if ONLY_IF_DEADLINE in data:
        payload[ONLY_IF_DEADLINE] = data[ONLY_IF_DEADLINE]
    return payload


def _ending_due(request: AccessRequest) -> datetime | None:
    return None if request.access_deadline is None else request.access_deadline - ENDING_WARNING


def _ending_data(request: AccessRequest, data: dict[str, Any]) -> dict[str, Any]:
    """The snapshot of a warning: sent only while the deadline it announces still holds."""
    deadline = format_time(request.access_deadline) if request.access_deadline else None
    return {**data, "state": State.APPROVED.value, ONLY_IF_DEADLINE: deadline}


def _ending_warning(
    tx: Tx, request: AccessRequest, data: dict[str, Any], to: list[str]
) -> list[OutboxMessage]:
    """The engineer hears :data:`ENDING_WARNING` before access ends, so they can finish
    or ask for an extension in time; never for a deadline an extension has moved."""
    payload = _ending_data(request, data)
    due = _ending_due(request)
    return [
        OutboxMessage(
            channel="email",
            topic="access_ending",
            recipient=address,
            payload=payload,
            tenant_id=request.tenant_id,
            request_id=request.id,
            due_at=due,
            only_if_state=State.APPROVED.value,
        )
        for address in to
    ]


def _reminders(
    tx: Tx, request: AccessRequest, data: dict[str, Any], to: list[str]
) -> list[OutboxMessage]:
    """Reminders due when the policy's fraction of the approval window is left."""
    tenant = tx.tenant(request.tenant_id)
    if tenant is None or request.approval_deadline is None:
        return []
    fraction = tenant.policy.reminder_fraction
    if fraction <= 0:
        return []
    window = tenant.policy.approval_window
    due = request.approval_deadline - timedelta(seconds=window.total_seconds() * fraction)
    return [
        OutboxMessage(
            channel="email",
            topic="approval_reminder",
            recipient=address,
            payload=data,
            tenant_id=request.tenant_id,
            request_id=request.id,
            due_at=due,
            only_if_state=State.PENDING_APPROVAL.value,
        )
        for address in to
    ]


def _approver_addresses(tx: Tx, request: AccessRequest) -> list[str]:
    """Who is asked to approve: the people of the current stage (who may still approve,
    :func:`lockbox.service.approvers.eligible`) and the policy's extra addresses; once
    nobody is asked any more (canceled), everyone who could have approved."""
    tenant = tx.tenant(request.tenant_id)
    if request.state is State.PENDING_APPROVAL or (
        request.state is State.APPROVED and request.extension is not None
    ):
        people = [user.email for user in approvers.eligible(tx, request)]
    else:
        people = repo.emails_with_roles(
            tx.conn, [Role.APPROVER, Role.TENANT_ADMIN], tenant_id=request.tenant_id
        )
    extra = list(tenant.policy.notify_emails) if tenant else []
    return list(dict.fromkeys([*people, *extra]))


def _decided_addresses(tx: Tx, request: AccessRequest) -> list[str]:
    addresses = []
    for decision in request.approvals():
        user = tx.user(decision.actor_id)
        if user and user.active:
            addresses.append(user.email)
    return addresses


def _to(topic: str, addresses: Iterable[str]) -> list[tuple[str, str]]:
    return [(topic, a) for a in addresses]
