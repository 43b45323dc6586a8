"""Access request pages: the approval queue, every request, one request, its actions, active access.

The pages are shared by every role. What a person sees is what the service layer
lets them see (a customer its tenant's requests, an engineer their own, a
manager all of them; anything else is the same "not found" page as a made-up
id). Which buttons a page *offers* is computed here from the permission matrix,
the request's effective state and who the person is, so nobody is shown a
button that can only fail; whether the action is allowed is still decided by
the service when the form is posted.

Every change goes through a confirmation step that restates what will happen,
carries the request's version (a request that changed in the meantime gives
the "this has changed" page instead of approving something else), and ends in
Post/Redirect/Get with a message saying what happened.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final, Protocol
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import FormData
from starlette.responses import Response

from lockbox.domain import errors
from lockbox.domain.audit import AuditRecord
from lockbox.domain.case import SupportCase
from lockbox.domain.lifecycle import State
from lockbox.domain.permissions import Intent, allows
from lockbox.domain.request import AccessRequest, Narrowing
from lockbox.domain.resources import AccessLevel
from lockbox.domain.roles import Principal, Role, Side
from lockbox.domain.tenant import Tenant
from lockbox.domain.text import COMMENT_MAX
from lockbox.service import access, cases, people, receipts, requests, tenants
from lockbox.service.app import Lockbox
from lockbox.service.people import Person
from lockbox.service.requests import RequestView
from lockbox.web.page import Page, PageRoute, SignedInPage
from lockbox.web.pages_portal import CATEGORY_OPTIONS
from lockbox.web.rendering import localtime, state_style


class _RequestId(Convertor[str]):
    """Request ids (``req_…``) only, so ``/requests/new`` and friends stay free for other pages.

    Any other word after ``/requests/`` falls through to the other page modules
    and, if nobody serves it, to the same "not found" page a foreign id gets.
    """

    regex = "req_[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("request_id", _RequestId())

router = APIRouter(route_class=PageRoute)

PAGE_SIZE: Final = 25
#: The approval queue is read whole (up to this many) so it can be ordered by deadline.
QUEUE_SIZE: Final = requests.MAX_PAGE
JUSTIFICATION_PREVIEW: Final = 140
_DECIDERS: Final = (Role.APPROVER, Role.TENANT_ADMIN)
_PENDING: Final = frozenset({State.PENDING_REVIEW, State.PENDING_APPROVAL})

#: The filters of the request list: query value → (label, states asked of the service).
FILTERS: Final[dict[str, tuple[str, tuple[State, ...]]]] = {
    "": ("All requests", ()),
    "open": (
        "Open (waiting or active)",
        (State.PENDING_REVIEW, State.PENDING_APPROVAL, State.APPROVED),
    ),
    **{s.value: (state_style(s).label, (s,)) for s in State},
}


# --------------------------------------------------------------------------- what a page shows


@dataclass(frozen=True)
class Actions:
    """What the signed-in person may be offered on one request, in its effective state."""

    decide: bool = False
    revoke: bool = False
    review: bool = False
    cancel: bool = False
    close: bool = False
    token: bool = False
    extend: bool = False  # ask for more time
    decide_extension: bool = False

    @property
    def any(self) -> bool:
        return any(
            (
                self.decide,
                self.revoke,
                self.review,
                self.cancel,
                self.close,
                self.token,
                self.extend,
                self.decide_extension,
            )
        )


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a request's history: when, who (None for Lockbox itself), what in words."""

    at: datetime
    actor: Person | None
    text: str


@dataclass(frozen=True)
class Item:
    """A request with everything its pages show about it, names resolved."""

    request: AccessRequest
    state: State
    tenant: Tenant | None
    case: SupportCase | None
    people: Mapping[str, Person]
    actions: Actions
    history: Sequence[HistoryEntry] = field(default_factory=tuple)
    #: The service returns the first records only; the rest is read in the audit log.
    history_truncated: bool = False
    #: Who may still approve it now (user ids): the people of its current stage.
    can_approve: Sequence[str] = ()
    #: The name of the customer's auto-approval rule that approved it (None: none did).
    auto_rule: str | None = None

    @property
    def requester(self) -> Person:
        return self.people[self.request.requester_id]

    @property
    def reviewer(self) -> Person | None:
        return self.people.get(self.request.reviewer_id or "")

    @property
    def ended_by(self) -> Person | None:
        return self.people.get(self.request.ended_by or "")

    @property
    def tenant_name(self) -> str:
        return self.tenant.name if self.tenant else "the customer"

    @property
    def approvals(self) -> int:
        return len(self.request.approvals())

    @property
    def title(self) -> str:
        return self.case.title if self.case else "Access request"

    @property
    def level_label(self) -> str:
        return level_label(self.request.access_level)

    @property
    def category_label(self) -> str:
        """What the engineer says the access is for, in words."""
        return CATEGORY_WORDS.get(self.request.category, self.request.category)

    @property
    def short_justification(self) -> str:
        return shorten(self.request.justification, JUSTIFICATION_PREVIEW)

    @property
    def deadline(self) -> datetime | None:
        """The deadline of the stage the request is in (None once it ended)."""
        return self.request.stage_deadline() if self.state in _PENDING | {State.APPROVED} else None


#: A request's justification category in words (the request form's own labels).
CATEGORY_WORDS: Final = dict(CATEGORY_OPTIONS)


def level_label(level: AccessLevel) -> str:
    return "Read and write" if level is AccessLevel.READ_WRITE else "Read only"


def level_verb(level: AccessLevel) -> str:
    """What the engineer can do, as a verb phrase: "read" or "read and change"."""
    return "read and change" if level is AccessLevel.READ_WRITE else "read"


def shorten(value: str, limit: int) -> str:
    """``value`` on one line, cut at a word boundary with "…" when longer than ``limit``."""
    flat = " ".join(value.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] or flat[:limit]
    return cut.rstrip(",.;:") + "…"


def resource_words(resources: Sequence[str], most: int = 3) -> str:
    """``a, b and c`` or ``a, b, c and 4 more``: names for a sentence (a flash, a confirmation)."""
    shown = list(resources[:most])
    rest = len(resources) - len(shown)
    if rest > 0:
        return f"{', '.join(shown)} and {rest} more"
    if len(shown) <= 1:
        return "".join(shown)
    return f"{', '.join(shown[:-1])} and {shown[-1]}"


def duration_words(span: timedelta) -> str:
    """``4 hours``, ``30 minutes``, ``1 day 2 hours``: a policy window for a sentence."""
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour"), (mins, "minute")]
    words = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n]
    return " ".join(words) or "0 minutes"


def actions_for(actor: Principal, request: AccessRequest, state: State) -> Actions:
    """Which actions to offer: the matrix (role), the effective state and the person rules.

    Mirrors the transition table's actor rules only to hide buttons that would
    fail; the service checks them again when the form is posted.
    """

    def may(intent: Intent) -> bool:
        return allows(actor, intent, request.tenant_id, request.requester_id)

    customer_here = actor.side is Side.CUSTOMER and actor.tenant_id == request.tenant_id
    mine = actor.id == request.requester_id
    approved = state is State.APPROVED
    return Actions(
        decide=state is State.PENDING_APPROVAL
        and customer_here
        and may(Intent.REQUEST_DECIDE)
        and not request.decided_by(actor.id),
        revoke=approved and customer_here and may(Intent.REQUEST_REVOKE),
        review=state is State.PENDING_REVIEW and not mine and may(Intent.REQUEST_REVIEW),
        cancel=state in _PENDING and mine and may(Intent.REQUEST_CANCEL),
        close=approved and may(Intent.REQUEST_CLOSE),
        token=approved and mine and may(Intent.ACCESS_TOKEN),
        extend=approved and mine and may(Intent.REQUEST_EXTEND) and request.extension is None,
        decide_extension=approved
        and customer_here
        and request.extension is not None
        and may(Intent.REQUEST_DECIDE)
        and not any(d.actor_id == actor.id for d in request.extension.approvals),
    )


# --------------------------------------------------------------------------- loading


def _case(page: Page, case_id: str) -> SupportCase | None:
    """The request's support case, or None if this person may not read it (never an error)."""
    try:
        return cases.get_case(page.app, page.actor, case_id)
    except (errors.NotFound, errors.PermissionDenied):
        return None


def _tenant(page: Page, tenant_id: str) -> Tenant | None:
    """The tenant with its policy (windows, approvals), or None if not readable."""
    try:
        return tenants.get_policy(page.app, page.actor, tenant_id)
    except (errors.NotFound, errors.PermissionDenied):
        return None


def _people_ids(request: AccessRequest) -> list[str | None]:
    return [
        request.requester_id,
        request.reviewer_id,
        request.ended_by,
        *(d.actor_id for d in request.decisions),
    ]


def _history_ids(records: Iterable[AuditRecord]) -> list[str | None]:
    found: list[str | None] = []
    for record in records:
        found.append(record.actor_id)
        engineer = record.details.get("engineer")
        found.append(engineer if isinstance(engineer, str) else None)
    return found


def items_for(page: Page, views: Sequence[RequestView]) -> list[Item]:
    """List rows: each request with its case, tenant and people (each looked up once)."""
    ids = [i for v in views for i in _people_ids(v.request)]
    found = people.resolve(page.app, ids)
    case_of = {cid: _case(page, cid) for cid in {v.request.case_id for v in views}}
    tenant_of = {tid: _tenant(page, tid) for tid in {v.request.tenant_id for v in views}}
    return [
        Item(
            request=v.request,
            state=v.state,
            tenant=tenant_of[v.request.tenant_id],
            case=case_of[v.request.case_id],
            people=found,
            actions=actions_for(page.actor, v.request, v.state),
        )
        for v in views
    ]


def load_item(page: Page, request_id: str) -> Item:
    """One request with its history in words; a foreign or missing id raises NotFound (404)."""
    view = requests.get_request(page.app, page.actor, request_id, history=True)
    found = people.resolve(
        page.app,
        [*_people_ids(view.request), *_history_ids(view.history), *view.can_approve],
    )
    tenant = _tenant(page, view.request.tenant_id)
    base = Item(
        request=view.request,
        state=view.state,
        tenant=tenant,
        case=_case(page, view.request.case_id),
        people=found,
        actions=actions_for(page.actor, view.request, view.state),
    )
    story = History(base, page.settings.provider_name)
    return replace(
        base,
        history=story.entries(view.history),
        history_truncated=view.history_truncated,
        can_approve=view.can_approve,
        auto_rule=next(
            (
                str(r.details.get("rule_name") or r.details["auto_approved_by_rule"])
                for r in view.history
                if r.operation == "request.review_approve"
                and r.details.get("auto_approved_by_rule")
            ),
            None,
        ),
    )


# --------------------------------------------------------------------------- history in words


def _quoted(value: object) -> str:
    return f": “{value}”" if isinstance(value, str) and value else ""


class History:
    """Audit records of one request as sentences a customer can read ("Paula approved: …")."""

    def __init__(self, item: Item, provider: str) -> None:
        self.item = item
        self.provider = provider

    def name(self, person_id: object) -> str:
        person = self.item.people.get(person_id) if isinstance(person_id, str) else None
        return person.display_name if person else "someone"

    def entries(self, records: Iterable[AuditRecord]) -> list[HistoryEntry]:
        lines = [self.entry(r) for r in records]
        pending = self.unrecorded_end()
        return [*lines, pending] if pending else lines

    def entry(self, record: AuditRecord) -> HistoryEntry:
        actor = self.item.people.get(record.actor_id)
        system = record.actor_kind == "system" or record.actor_id == "system"
        who = None if system else actor
        return HistoryEntry(record.at, who, self.sentence(record, self.name(record.actor_id)))

    def sentence(self, record: AuditRecord, who: str) -> str:
        d = record.details
        op = record.operation
        tenant = self.item.tenant_name
        simple = {
            "request.submit": f"{who} submitted the request",
            "request.review_reject": f"{who} rejected it{_quoted(d.get('comment'))}",
            "request.deny": f"{who} denied it{_quoted(d.get('comment'))}",
            "request.cancel": f"{who} withdrew the request{_quoted(d.get('comment'))}",
            "request.close": f"{who} closed it; access ended{_quoted(d.get('comment'))}",
            "request.revoke": f"{who} revoked access{_quoted(d.get('comment'))}",
            "request.expire": "Nobody decided before the deadline; the request expired",
            "request.end_access": "The access window ended",
            "request.case_closed": "The support case was closed, which ended this request",
        }
        if op in simple:
            return simple[op]
        if op == "request.review_approve":
            if d.get("auto_approved_by_rule"):
                return (
                    f"{who} forwarded it to {tenant}{_quoted(d.get('comment'))}; it was "
                    f"approved by the rule “{d.get('rule_name') or d['auto_approved_by_rule']}” "
                    f"of {tenant}, so access started at once"
                )
            if d.get("lockbox") == "off":
                return (
                    f"{who} approved it{_quoted(d.get('comment'))}; {tenant}'s lockbox is off, "
                    "so access started at once"
                )
            return f"{who} forwarded it to {tenant}{_quoted(d.get('comment'))}"
        if op == "request.approve":
            return self.approval(who, d)
        if op.startswith("request.extend"):
            return self.extension(op, who, d)
        if op == "access.token_issued":
            return f"{who} got an access token for {self.provider}'s systems"
        if op in ("access.read", "access.write", "access.check_denied"):
            return self.use(record, who)
        return f"{who}: {op}"

    def approval(self, who: str, d: Mapping[str, Any]) -> str:
        text = f"{who} approved{_quoted(d.get('comment'))}"
        count, needed = d.get("approvals"), d.get("required_approvals")
        if isinstance(count, int) and isinstance(needed, int) and needed > 1:
            text += f" (approval {count} of {needed})"
        granted = d.get("granted")
        if isinstance(granted, Mapping):
            level = "read and write" if granted.get("access_level") == "read_write" else "read"
            names = granted.get("resources") or []
            seconds = granted.get("access_window_seconds")
            text += f", granting less than asked: {level} access to {resource_words(names)}"
            if isinstance(seconds, int):
                text += f" for {duration_words(timedelta(seconds=seconds))}"
        if d.get("access_deadline"):
            text += "; access started"
        return text

    def extension(self, op: str, who: str, d: Mapping[str, Any]) -> str:
        seconds = d.get("by_seconds")
        more = duration_words(timedelta(seconds=seconds)) if isinstance(seconds, int) else "time"
        if op == "request.extend":
            text = f"{who} asked for {more} more{_quoted(d.get('reason'))}"
            if d.get("lockbox") == "off":
                text += f"; {self.item.tenant_name}'s lockbox is off, so access was extended"
            return text
        if op == "request.extend_deny":
            return f"{who} denied more time{_quoted(d.get('comment'))}"
        text = f"{who} approved {more} more{_quoted(d.get('comment'))}"
        return text + ("; access was extended" if d.get("extended") else "")

    def use(self, record: AuditRecord, who: str) -> str:
        d = record.details
        engineer = self.name(d.get("engineer")) if d.get("engineer") else "an engineer"
        resource = d.get("resource") or d.get("resource_raw") or "a resource"
        if record.operation == "access.check_denied":
            reason = str(d.get("reason", "denied")).replace("_", " ")
            return f"{who} refused {engineer} access to {resource} ({reason})"
        reading = record.operation == "access.read"
        if d.get("outcome") == "denied":
            text = f"{who} refused to let {engineer} {'read' if reading else 'change'} {resource}"
        else:
            text = f"{who} reports that {engineer} {'read' if reading else 'changed'} {resource}"
        flag = d.get("flag")
        return f"{text} (flagged: {str(flag).replace('_', ' ')})" if flag else text

    def unrecorded_end(self) -> HistoryEntry | None:
        """A deadline that passed before Lockbox's sweeper wrote it down still shows."""
        request = self.item.request
        deadline = request.stage_deadline()
        if deadline is None or self.item.state is request.state:
            return None
        text = (
            "The access window ended"
            if request.state is State.APPROVED
            else "Nobody decided before the deadline; the request expired"
        )
        return HistoryEntry(deadline, None, text)


def status_line(item: Item, provider: str) -> str:
    """What the state means for this request, in a sentence with names."""
    r = item.request
    engineer = item.requester.display_name
    tenant = item.tenant_name
    ender = item.ended_by.display_name if item.ended_by else "Lockbox"
    lines = {
        State.PENDING_REVIEW: f"Waiting for a {provider} support manager to review it; "
        f"{tenant} is asked only after that.",
        State.PENDING_APPROVAL: f"Waiting for {tenant} to approve it: {item.approvals} of "
        f"{r.required_approvals} approval{'s' if r.required_approvals != 1 else ''} so far.",
        State.APPROVED: f"Access is granted: {engineer} can {level_verb(r.access_level)} the "
        f"{'granted' if r.asked_resources is not None else 'requested'} resources until "
        "access ends" + (", and asked for more time." if r.extension is not None else "."),
        State.REJECTED: f"A {provider} support manager turned it down; {tenant} was never asked.",
        State.DENIED: f"{tenant} turned it down. No access was granted.",
        State.CANCELED: f"Withdrawn by {ender}. No access was granted.",
        State.EXPIRED: "Nobody decided before the deadline, so no access was granted.",
        State.CLOSED: f"{ender} closed it; access ended.",
        State.REVOKED: f"{ender} of {tenant} ended access early.",
        State.ACCESS_ENDED: "The access window is over; access has ended.",
    }
    return lines.get(item.state, state_style(item.state).hint)


# --------------------------------------------------------------------------- forms


def _comment(form: FormData) -> str | None:
    value = str(form.get("comment") or "").strip()
    return value or None


def _version(form: FormData) -> int:
    """The version of the request the person looked at (hidden field of every action form)."""
    raw = str(form.get("version") or "")
    if not raw.isdigit():
        raise errors.ValidationError(
            "version", "the form does not say which version of the request you saw; reload it"
        )
    return int(raw)


def _sentence(exc: errors.ValidationError) -> str:
    text = exc.message.removeprefix(f"{exc.field}: ")
    return text[:1].upper() + text[1:]


#: What the service raises when the request is no longer what the person saw.
_CHANGED: Final = (errors.Conflict, errors.InvalidTransition)


def _refused(
    page: Page, offered: bool, item: Item, states: Iterable[State], verb: str
) -> Response | None:
    """The answer for a form of an action this person cannot take now, or None if they can.

    A request in another state than the action needs, or already decided by
    this person, gets the "this has changed" page (409) saying where it stands;
    a role that never may gets the 403 page.
    """
    if offered:
        return None
    if item.state not in set(states):
        return _changed_page(page, item, already=False)
    if verb in ("approve", "deny") and item.request.decided_by(page.actor.id):
        return _changed_page(page, item, already=True)
    raise errors.PermissionDenied(f"you cannot {verb} this request")


def _changed(page: Page, request_id: str, exc: errors.LockboxError) -> Response:
    """The service refused because the request changed (version, state, deadline): say how."""
    item = load_item(page, request_id)
    return _changed_page(page, item, already=isinstance(exc, errors.AlreadyDecided))


def _changed_page(page: Page, item: Item, *, already: bool) -> Response:
    """409 with the request as it is now and its last change, instead of a bare error."""
    return page.render(
        "requests/changed.html",
        title="This has changed",
        section="requests",
        status=409,
        item=item,
        already=already,
        latest=item.history[-1] if item.history else None,
        status_text=status_line(item, page.settings.provider_name),
    )


def _url(item: Item, suffix: str = "") -> str:
    return f"/requests/{item.request.id}{suffix}"


# --------------------------------------------------------------------------- the lists


@dataclass(frozen=True)
class Paging:
    """The links of ``ui.pagination``: the next page, and back to the first when not on it."""

    next_url: str | None
    first_url: str | None


def paging(
    path: str, params: dict[str, str], next_cursor: str | None, cursor: str | None
) -> Paging:
    """Cursor links that keep the filters (cursors are opaque: they come from the service)."""
    kept = {k: v for k, v in params.items() if v}
    next_url = f"{path}?{urlencode({**kept, 'cursor': next_cursor})}" if next_cursor else None
    first_url = (f"{path}?{urlencode(kept)}" if kept else path) if cursor else None
    return Paging(next_url, first_url)


@router.get("/approvals")
def approvals(page: SignedInPage, cursor: str | None = None) -> Response:
    """The customer's queue: requests waiting for its approvers, soonest deadline first.

    The service lists newest first; the queue reads up to :data:`QUEUE_SIZE` at once
    and orders them by deadline (a longer queue pages on, each page ordered).
    """
    if not page.has(*_DECIDERS):
        return page.redirect("/requests?state=pending_approval")
    listed = requests.list_requests(
        page.app, page.actor, states=[State.PENDING_APPROVAL.value], limit=QUEUE_SIZE, cursor=cursor
    )
    rows = items_for(page, listed.items)
    rows.sort(key=lambda i: (i.request.approval_deadline or page.now, i.request.id))
    more_time = requests.list_requests(
        page.app,
        page.actor,
        states=[State.APPROVED.value],
        extension_pending=True,
        limit=QUEUE_SIZE,
    )
    extensions = [i for i in items_for(page, more_time.items) if i.actions.decide_extension]
    extensions.sort(key=lambda i: (i.request.access_deadline or page.now, i.request.id))
    return page.render(
        "requests/approvals.html",
        title="Approvals",
        section="approvals",
        rows=rows,
        extensions=extensions,
        duration_words=duration_words,
        me=page.actor.id,
        paging=paging("/approvals", {}, listed.next_cursor, cursor),
    )


@router.get("/requests")
def request_list(page: SignedInPage, state: str = "", cursor: str | None = None) -> Response:
    """Every request this person may see, newest first, filtered by state, a page at a time."""
    problems: dict[str, str] = {}
    if state not in FILTERS:
        problems["state"] = "Choose one of the states in the list"
        state = ""
    wanted = [s.value for s in FILTERS[state][1]]
    listed = requests.list_requests(
        page.app, page.actor, states=wanted, limit=PAGE_SIZE, cursor=None if problems else cursor
    )
    return page.render(
        "requests/list.html",
        title="Requests",
        section="requests",
        status=422 if problems else 200,
        errors=problems,
        rows=items_for(page, listed.items),
        state=state,
        filters=[(key, label) for key, (label, _states) in FILTERS.items()],
        filter_label=FILTERS[state][0],
        staff=page.actor.side is Side.PROVIDER,
        mine_only=_mine_only(page),
        paging=paging("/requests", {"state": state}, listed.next_cursor, cursor),
    )


@router.get("/access")
def active_access(page: SignedInPage, cursor: str | None = None) -> Response:
    """Access granted right now (effective state approved): who, what, until when."""
    listed = requests.list_requests(
        page.app, page.actor, states=[State.APPROVED.value], limit=PAGE_SIZE, cursor=cursor
    )
    rows = items_for(page, listed.items)
    rows.sort(key=lambda i: (i.request.access_deadline or page.now, i.request.id))
    return page.render(
        "requests/access.html",
        title="Active access",
        section="access",
        rows=rows,
        staff=page.actor.side is Side.PROVIDER,
        mine_only=_mine_only(page),
        paging=paging("/access", {}, listed.next_cursor, cursor),
    )


def _mine_only(page: Page) -> bool:
    """Staff who see only their own requests (engineers): the pages say "your" then."""
    return page.actor.side is Side.PROVIDER and not page.has(Role.MANAGER)


# --------------------------------------------------------------------------- one request


def _section(page: Page) -> str:
    return "approvals" if page.has(*_DECIDERS) else "requests"


#: How the request page names each kind of signed receipt.
RECEIPT_LABELS: Final = {
    "approve": "Approval",
    "deny": "Denial",
    "revoke": "Revocation",
    "auto_approve": "Approval without the customer (lockbox off)",
    "auto_approve:approval_rule": "Approval by the customer's auto-approval rule",
}


def _receipt_kind(receipt: Any) -> str:
    """A receipt's kind, and for an automatic approval what it rests on."""
    basis = (receipt.statement.get("decision") or {}).get("basis")
    return f"{receipt.kind}:{basis}" if basis == "approval_rule" else str(receipt.kind)


def _detail(page: Page, item: Item, *, status: int = 200, **extra: Any) -> Response:
    longest = item.tenant.policy.access_window if item.tenant else timedelta(hours=4)
    extension = item.request.extension
    context: dict[str, Any] = {
        "errors": {},
        "review_comment": "",
        "extension_choices": [
            (str(int(w.total_seconds())), duration_words(w)) for w in WINDOW_CHOICES if w <= longest
        ],
        "extension_by": str(int(min(timedelta(hours=1), longest).total_seconds())),
        "extension_reason": "",
        "extension_words": duration_words(extension.by) if extension else "",
    }
    context.update(extra)
    return page.render(
        "requests/detail.html",
        title=f"Request: {item.title}",
        section="requests",
        status=status,
        item=item,
        status_text=status_line(item, page.settings.provider_name),
        comment_max=COMMENT_MAX,
        can_read_audit=allows(page.actor, Intent.AUDIT_READ, item.request.tenant_id),
        receipts=[
            {"id": r.id, "what": RECEIPT_LABELS.get(_receipt_kind(r), r.kind), "at": r.at}
            for r in receipts.for_request(page.app, page.actor, item.request.id)
        ],
        **context,
    )


@router.get("/requests/{request_id:request_id}/receipts/{receipt_id}")
def receipt_download(request_id: str, receipt_id: str, page: SignedInPage) -> Response:
    """A decision's signed receipt, as the file to keep (docs/audit.md says how to check it)."""
    found = receipts.get_receipt(page.app, page.actor, receipt_id)
    if found.request_id != request_id:
        raise errors.NotFound("receipt not found")
    return Response(
        json.dumps(found.document(), indent=2, ensure_ascii=False) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="receipt-{found.id}.json"'},
    )


@router.get("/requests/{request_id:request_id}")
def request_page(request_id: str, page: SignedInPage) -> Response:
    """Everything about one request, its history in words, and what this person may do."""
    return _detail(page, load_item(page, request_id))


@router.post("/requests/{request_id:request_id}/review")
async def review(request_id: str, page: SignedInPage) -> Response:
    """A support manager forwards the request to the customer, or rejects it (with a reason)."""
    form = await page.form()
    comment, version = _comment(form), _version(form)
    forward = form.get("decision") == "forward"
    if form.get("decision") not in ("forward", "reject"):
        raise errors.ValidationError("decision", "choose to forward or to reject the request")
    if not forward and comment is None:
        item = load_item(page, request_id)
        refused = _refused(page, item.actions.review, item, [State.PENDING_REVIEW], "review")
        if refused is not None:
            return refused
        problems = {"comment": "Say why you reject it; the engineer reads this"}
        return _detail(page, item, status=422, errors=problems, review_comment="")
    try:
        done = requests.review_request(
            page.app,
            page.actor,
            request_id,
            approve=forward,
            comment=comment,
            expected_version=version,
        )
    except errors.ValidationError as exc:
        item = load_item(page, request_id)
        problems = {"comment": _sentence(exc)}
        return _detail(page, item, status=422, errors=problems, review_comment=comment or "")
    except _CHANGED as exc:
        return _changed(page, request_id, exc)
    item = load_item(page, done.id)
    return page.redirect(_url(item), flash=("success", _review_message(item, forward, page.tz)))


def _review_message(item: Item, forward: bool, tz: str | None) -> str:
    engineer = item.requester.display_name
    if not forward:
        return f"Request rejected. {engineer} is told why; {item.tenant_name} is not asked."
    if item.state is State.APPROVED:
        return (
            f"Approved: {item.tenant_name}'s lockbox is off, so {engineer} has access now "
            f"until {_when(item.request.access_deadline, tz)}."
        )
    return f"Forwarded to {item.tenant_name} for approval."


def _when(value: datetime | None, tz: str | None) -> str:
    return localtime(value, tz) if value else "the end of the access window"


# --------------------------------------------------------------------------- approve / deny


@dataclass(frozen=True)
class Grant:
    """What an approval grants and until when, for the confirmation step."""

    window: timedelta
    until: datetime
    last: bool  # this approval completes the required number
    number: int  # which approval this would be


def grant_for(item: Item, now: datetime) -> Grant:
    window = item.tenant.policy.access_window if item.tenant else timedelta(hours=4)
    number = item.approvals + 1
    r = item.request
    if r.access_window is not None:
        window = min(window, r.access_window)  # an earlier stage granted a shorter one
    stage, stages = r.current_stage(), r.planned_stages()
    last = (
        stage is not None
        and stage.key == stages[-1].key
        and len(r.stage_approvals(stage)) + 1 >= stage.required
    )
    start = max(now, r.starts_at) if r.starts_at is not None else now
    return Grant(window, start + window, last, number)


@router.get("/requests/{request_id:request_id}/approve")
def approve_form(request_id: str, page: SignedInPage) -> Response:
    """The confirmation step: exactly what will be granted, to whom, until about when."""
    item = load_item(page, request_id)
    refused = _refused(page, item.actions.decide, item, [State.PENDING_APPROVAL], "approve")
    return refused or _approve_page(page, item)


#: The access windows an approver can choose instead of the request's longest.
WINDOW_CHOICES = tuple(
    timedelta(minutes=m) for m in (15, 30, 60, 120, 180, 240, 480, 720, 1440, 2880, 10080)
)


def _window_choices(longest: timedelta) -> list[tuple[str, str]]:
    shorter = [w for w in WINDOW_CHOICES if w < longest]
    longest_label = f"{duration_words(longest)} (as asked)"
    return [("", longest_label)] + [
        (str(int(w.total_seconds())), duration_words(w)) for w in reversed(shorter)
    ]


def _narrowing(form: FormData) -> Narrowing | None:
    """What the approver chose to grant (None: as asked). The resource boxes are sent only
    when the page offered a choice (``resources_offered``); ticking all of them is "as
    asked", which the domain treats as no narrowing."""
    chosen = [str(v) for v in form.getlist("resources")]
    if form.get("resources_offered") == "1" and not chosen:
        raise errors.ValidationError("resources", "choose at least one resource to grant")
    raw = str(form.get("window") or "")
    if raw and not raw.isdigit():
        raise errors.ValidationError("window", "choose how long from the list")
    return Narrowing.of(
        resources=chosen or None,
        access_level="read" if form.get("read_only") == "on" else None,
        access_window_seconds=int(raw) if raw else None,
    )


def _approve_page(page: Page, item: Item, *, status: int = 200, **extra: Any) -> Response:
    context: dict[str, Any] = {
        "errors": {},
        "comment": "",
        "chosen_resources": None,  # None: first showing, everything asked is ticked
        "read_only": False,
        "window_value": "",
        "narrowed": False,
    }
    context.update(extra)
    grant = grant_for(item, page.now)
    context["window_choices"] = _window_choices(grant.window)
    return page.render(
        "requests/approve.html",
        title=f"Approve access for {item.requester.display_name}?",
        section=_section(page),
        status=status,
        item=item,
        grant=grant,
        window_words=duration_words(grant.window),
        verb=level_verb(item.request.access_level),
        comment_max=COMMENT_MAX,
        **context,
    )


@router.post("/requests/{request_id:request_id}/approve")
async def approve(request_id: str, page: SignedInPage) -> Response:
    form = await page.form()
    comment, version = _comment(form), _version(form)
    try:
        narrow = _narrowing(form)
        done = requests.decide_request(
            page.app,
            page.actor,
            request_id,
            approve=True,
            comment=comment,
            expected_version=version,
            narrow=narrow,
        )
    except errors.ValidationError as exc:
        item = load_item(page, request_id)
        field = {"access_window_seconds": "window", "access_level": "read_only"}.get(
            exc.field, exc.field.split("[")[0]
        )
        if field not in ("resources", "window", "read_only"):
            field = "comment"
        return _approve_page(
            page,
            item,
            status=422,
            errors={field: _sentence(exc)},
            comment=comment or "",
            chosen_resources=tuple(str(v) for v in form.getlist("resources")),
            read_only=form.get("read_only") == "on",
            window_value=str(form.get("window") or ""),
            narrowed=field != "comment",
        )
    except _CHANGED as exc:
        return _changed(page, request_id, exc)
    item = load_item(page, done.id)
    return page.redirect(_url(item), flash=("success", _approved_message(item, page.tz)))


def _approved_message(item: Item, tz: str | None) -> str:
    r = item.request
    engineer = item.requester.display_name
    if item.state is State.APPROVED:
        less = " (less than asked)" if r.asked_resources is not None else ""
        return (
            f"Access approved{less}: {engineer} can {level_verb(r.access_level)} "
            f"{resource_words(r.resources)} until {_when(r.access_deadline, tz)}."
        )
    return (
        f"Your approval is recorded ({item.approvals} of {r.required_approvals}). "
        "Access starts when the last approval arrives."
    )


@router.get("/requests/{request_id:request_id}/deny")
def deny_form(request_id: str, page: SignedInPage) -> Response:
    item = load_item(page, request_id)
    refused = _refused(page, item.actions.decide, item, [State.PENDING_APPROVAL], "deny")
    return refused or _deny_page(page, item)


def _deny_page(page: Page, item: Item, *, status: int = 200, **extra: Any) -> Response:
    context: dict[str, Any] = {"errors": {}, "comment": ""}
    context.update(extra)
    return page.render(
        "requests/deny.html",
        title=f"Deny access for {item.requester.display_name}",
        section=_section(page),
        status=status,
        item=item,
        comment_max=COMMENT_MAX,
        **context,
    )


@router.post("/requests/{request_id:request_id}/deny")
async def deny(request_id: str, page: SignedInPage) -> Response:
    """Denying needs a reason: the engineer reads it. A blank one changes nothing (422)."""
    form = await page.form()
    comment, version = _comment(form), _version(form)
    problem = "Say why you deny it; the engineer reads this" if comment is None else None
    if problem is None:
        try:
            done = requests.decide_request(
                page.app,
                page.actor,
                request_id,
                approve=False,
                comment=comment,
                expected_version=version,
            )
        except errors.ValidationError as exc:
            problem = _sentence(exc)
        except _CHANGED as exc:
            return _changed(page, request_id, exc)
        else:
            item = load_item(page, done.id)
            text = f"Request denied. {item.requester.display_name} is told your reason."
            return page.redirect(_url(item), flash=("success", text))
    item = load_item(page, request_id)
    refused = _refused(page, item.actions.decide, item, [State.PENDING_APPROVAL], "deny")
    return refused or _deny_page(
        page, item, status=422, errors={"comment": problem}, comment=comment or ""
    )


# --------------------------------------------------------------------------- more time


@router.post("/requests/{request_id:request_id}/extend")
async def extend(request_id: str, page: SignedInPage) -> Response:
    """The engineer asks for more time; the customer approves it like the request."""
    form = await page.form()
    version = _version(form)
    raw, reason = str(form.get("by") or ""), str(form.get("reason") or "").strip()
    problems: dict[str, str] = {}
    if not raw.isdigit():
        problems["by"] = "Choose how much more time from the list"
    if not reason:
        problems["reason"] = "Say why you need more time; the customer's approvers read it"
    if not problems:
        try:
            done = requests.extend_request(
                page.app,
                page.actor,
                request_id,
                by=timedelta(seconds=int(raw)),
                reason=reason,
                expected_version=version,
            )
        except errors.ValidationError as exc:
            problems[exc.field if exc.field in ("by", "reason") else "by"] = _sentence(exc)
        except _CHANGED as exc:
            return _changed(page, request_id, exc)
        else:
            item = load_item(page, done.id)
            if done.extension is None:
                note = f"Access extended until {_when(done.access_deadline, page.tz)}."
            else:
                note = f"More time asked: {item.tenant_name} is asked to approve it."
            return page.redirect(_url(item), flash=("success", note))
    item = load_item(page, request_id)
    return _detail(
        page, item, status=422, errors=problems, extension_by=raw, extension_reason=reason
    )


@router.post("/requests/{request_id:request_id}/extension")
async def decide_extension(request_id: str, page: SignedInPage) -> Response:
    """A customer approver approves or denies the extension waiting on granted access."""
    form = await page.form()
    version = _version(form)
    decision = form.get("decision")
    if decision not in ("approve", "deny"):
        raise errors.ValidationError("decision", "choose to approve or to deny the extension")
    comment = str(form.get("extension_comment") or "").strip() or None
    try:
        done = requests.decide_extension(
            page.app,
            page.actor,
            request_id,
            approve=decision == "approve",
            comment=comment,
            expected_version=version,
        )
    except errors.ValidationError as exc:
        item = load_item(page, request_id)
        return _detail(page, item, status=422, errors={"extension_comment": _sentence(exc)})
    except _CHANGED as exc:
        return _changed(page, request_id, exc)
    item = load_item(page, done.id)
    engineer = item.requester.display_name
    if decision == "deny":
        note = f"More time denied. {engineer} is told; access ends as granted."
    elif done.extension is None:
        note = f"More time approved: {engineer} has access until {_when(done.access_deadline, page.tz)}."
    else:
        note = "Your approval of more time is recorded; the next stage is asked."
    return page.redirect(_url(item), flash=("success", note))


# --------------------------------------------------------------------------- ending things


class _EndCall(Protocol):
    """The service functions that end a request share this signature."""

    def __call__(
        self,
        app: Lockbox,
        actor: Principal,
        request_id: str,
        *,
        comment: str | None = None,
        expected_version: int | None = None,
    ) -> AccessRequest: ...


@dataclass(frozen=True)
class Ending:
    """One of the actions that end a request (revoke, cancel, close): words and service call."""

    verb: str
    states: frozenset[State]
    button: str
    call: _EndCall
    danger: bool = True


ENDINGS: Final[dict[str, Ending]] = {
    "revoke": Ending(
        "revoke", frozenset({State.APPROVED}), "Revoke access now", requests.revoke_request
    ),
    "cancel": Ending("withdraw", _PENDING, "Withdraw the request", requests.cancel_request),
    "close": Ending(
        "close", frozenset({State.APPROVED}), "Close and end access", requests.close_request
    ),
}


def _offered(item: Item, kind: str) -> bool:
    return bool(getattr(item.actions, kind))


def _ending_page(page: Page, item: Item, kind: str, *, status: int = 200, **extra: Any) -> Response:
    ending = ENDINGS[kind]
    context: dict[str, Any] = {"errors": {}, "comment": ""}
    context.update(extra)
    titles = {
        "revoke": f"Revoke access for {item.requester.display_name}?",
        "cancel": "Withdraw this request?",
        "close": "Close this request and end access?",
    }
    return page.render(
        "requests/end.html",
        title=titles[kind],
        section="access" if kind != "cancel" else "requests",
        status=status,
        item=item,
        kind=kind,
        ending=ending,
        verb=level_verb(item.request.access_level),
        comment_max=COMMENT_MAX,
        **context,
    )


def _ended_message(item: Item, kind: str) -> str:
    engineer = item.requester.display_name
    what = resource_words(item.request.resources)
    return {
        "revoke": f"Access revoked: {engineer} can no longer reach {what}.",
        "cancel": "Request withdrawn. Nobody will be asked to approve it.",
        "close": f"Request closed: access to {what} has ended.",
    }[kind]


async def _end(page: Page, request_id: str, kind: str) -> Response:
    form = await page.form()
    comment, version = _comment(form), _version(form)
    try:
        done = ENDINGS[kind].call(
            page.app, page.actor, request_id, comment=comment, expected_version=version
        )
    except errors.ValidationError as exc:
        item = load_item(page, request_id)
        problems = {"comment": _sentence(exc)}
        return _ending_page(page, item, kind, status=422, errors=problems, comment=comment or "")
    except _CHANGED as exc:
        return _changed(page, request_id, exc)
    item = load_item(page, done.id)
    return page.redirect(_url(item), flash=("success", _ended_message(item, kind)))


def _end_form(page: Page, request_id: str, kind: str) -> Response:
    item = load_item(page, request_id)
    ending = ENDINGS[kind]
    refused = _refused(page, _offered(item, kind), item, ending.states, ending.verb)
    return refused or _ending_page(page, item, kind)


@router.get("/requests/{request_id:request_id}/revoke")
def revoke_form(request_id: str, page: SignedInPage) -> Response:
    return _end_form(page, request_id, "revoke")


@router.post("/requests/{request_id:request_id}/revoke")
async def revoke(request_id: str, page: SignedInPage) -> Response:
    return await _end(page, request_id, "revoke")


@router.get("/requests/{request_id:request_id}/cancel")
def cancel_form(request_id: str, page: SignedInPage) -> Response:
    return _end_form(page, request_id, "cancel")


@router.post("/requests/{request_id:request_id}/cancel")
async def cancel(request_id: str, page: SignedInPage) -> Response:
    return await _end(page, request_id, "cancel")


@router.get("/requests/{request_id:request_id}/close")
def close_form(request_id: str, page: SignedInPage) -> Response:
    return _end_form(page, request_id, "close")


@router.post("/requests/{request_id:request_id}/close")
async def close(request_id: str, page: SignedInPage) -> Response:
    return await _end(page, request_id, "close")


# --------------------------------------------------------------------------- access token


@router.post("/requests/{request_id:request_id}/token")
async def token(request_id: str, page: SignedInPage) -> Response:
    """A short-lived access token, shown on this one answer only (never stored, never cached)."""
    await page.form()
    try:
        issued = access.issue_token(
            page.app,
            page.actor,
            request_id,
            config=access.TokenConfig.from_settings(page.settings),
        )
    except _CHANGED as exc:
        return _changed(page, request_id, exc)
    item = load_item(page, request_id)
    response = page.render(
        "requests/token.html",
        title="Your access token",
        section="access",
        item=item,
        issued=issued,
        audience=str(issued.claims.get("aud", "")),
        token_resources=list(issued.claims.get("resources") or item.request.resources),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/requests/{request_id:request_id}/token")
def token_again(request_id: str, page: SignedInPage) -> Response:
    """A token is never shown twice: back to the request, where a new one can be asked for."""
    item = load_item(page, request_id)
    text = "An access token is shown only once, right after you ask for it. Ask for a new one."
    return page.redirect(_url(item), flash=("info", text))
