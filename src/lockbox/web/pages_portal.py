"""The support portal: support cases, requesting access on one, and the managers' review queue.

Every access request hangs off a support case, and only the engineer assigned to
an open case may request access on it, so the request form offers exactly those
cases. Managers see every case and the queue of requests waiting for their
review. Handlers read a form, call one service function as the signed-in person
and then either redirect with a message (Post/Redirect/Get) or re-render the
form with field-level errors (422, nothing changed).

The form helpers at the top (:func:`require_section`, :func:`sentence`,
:func:`numbered_lines`, :func:`split_field`) are shared with the provider admin
pages, which face the same problems: a refusal of the core names a field such as
``resources[1]``, and a person needs "Line 2: …" next to the right box.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.responses import Response

from lockbox.domain import errors, text
from lockbox.domain.case import CaseStatus, SupportCase
from lockbox.domain.lifecycle import OPEN_STATES, State
from lockbox.domain.permissions import Intent, allows
from lockbox.domain.resources import MAX_RESOURCES, AccessLevel, validate_resource
from lockbox.domain.roles import Role
from lockbox.domain.tenant import Tenant
from lockbox.service import cases, people, requests, tenants, users
from lockbox.service.requests import RequestView
from lockbox.web import navigation
from lockbox.web.page import Page, PageRoute, SignedInPage
from lockbox.web.rendering import resolve_zone

router = APIRouter(route_class=PageRoute)

#: The access levels a request may ask for, in the order the form offers them.
LEVELS: Final = (
    (AccessLevel.READ.value, "Read", "Look at the content; change nothing."),
    (AccessLevel.READ_WRITE.value, "Read and write", "Also change or delete content."),
)
LEVEL_LABELS: Final = {value: label for value, label, _hint in LEVELS}
#: How many requests the review queue shows per page (soonest deadline first within a page).
REVIEW_PAGE: Final = 50
_STAFF_WORK: Final = "support engineers and managers"
_INDEXED: Final = re.compile(r"^(?P<name>[A-Za-z_]+)\[(?P<index>\d+)\]$")


# -- helpers shared with the admin pages ---------------------------------------------------


def require_section(page: Page, key: str, audience: str) -> None:
    """Refuse (403) a page whose section the person's navigation does not show.

    The service layer still decides every read and change; this only keeps, say,
    an engineer from a provider-admin page that would otherwise show them a
    confusing subset, and a customer from the provider's support cases.
    """
    if key not in {s.key for s in navigation.visible(page.actor)}:
        provider = page.settings.provider_name
        raise errors.PermissionDenied(f"this page is for {provider}'s {audience}")


def field_of(exc: errors.LockboxError) -> str:
    """The input a refusal is about (``resources[1]``), or "" when it names none."""
    if isinstance(exc, errors.ValidationError):
        return exc.field
    return str(exc.extra.get("field") or "")


def detail(exc: errors.LockboxError) -> str:
    """A refusal's message without its ``field: `` prefix, as the core wrote it."""
    name = field_of(exc)
    return exc.message.removeprefix(f"{name}: ") if name else exc.message


def sentence(exc: errors.LockboxError, label: str = "") -> str:
    """A refusal as a sentence for a form, optionally after the field's label.

    ``must be at most 200 characters`` reads well only with its subject:
    ``Title must be at most 200 characters``.
    """
    said = f"{label} {detail(exc)}" if label else detail(exc)
    return said[:1].upper() + said[1:]


def split_field(name: str) -> tuple[str, int | None]:
    """``resources[1]`` → ``("resources", 1)``; ``title`` → ``("title", None)``."""
    match = _INDEXED.match(name)
    if match is None:
        return name, None
    return match["name"], int(match["index"])


def numbered_lines(value: str) -> list[tuple[int, str]]:
    """The non-blank lines of a text box with their 1-based numbers, for "Line 2: …"."""
    return [(n, line.strip()) for n, line in enumerate(value.splitlines(), 1) if line.strip()]


def text_of(data: FormData, name: str) -> str:
    """One posted field as text ("" when absent or a file)."""
    value = data.get(name)
    return value if isinstance(value, str) else ""


def tenants_by_id(page: Page) -> dict[str, Tenant]:
    return {t.id: t for t in tenants.list_tenants(page.app, page.actor)}


def query_url(path: str, **params: str | None) -> str:
    """``path`` with the given non-empty query parameters, safely encoded."""
    present = {k: v for k, v in params.items() if v}
    return f"{path}?{urlencode(present)}" if present else path


# -- request access ----------------------------------------------------------------------


@dataclass(frozen=True)
class RequestForm:
    """What the engineer typed, kept to re-show the form after an error."""

    case: str = ""
    resources: str = ""
    access_level: str = AccessLevel.READ.value
    justification: str = ""
    category: str = "other"
    starts_at: str = ""  # a datetime-local value, in the person's zone; empty: at approval


#: What a request can say it is for, in the engineer's words (the customer's auto-approval
#: rules select on it; "other" when none fits).
CATEGORY_OPTIONS: Final = (
    ("incident", "Incident: something is broken now"),
    ("maintenance", "Planned maintenance"),
    ("investigation", "Investigation of a reported problem"),
    ("customer_request", "The customer asked for it"),
    ("other", "Other"),
)


def _case_label(case: SupportCase, by_id: Mapping[str, Tenant]) -> str:
    """``Contoso · Alice's mailbox does not sync · INC-1042``: whom, what, which ticket."""
    tenant = by_id.get(case.tenant_id)
    parts = [tenant.name if tenant else "Unknown customer", case.title]
    if case.reference:
        parts.append(case.reference)
    return " · ".join(parts)


def _my_open_cases(page: Page) -> list[SupportCase]:
    """The open cases the signed-in engineer is assigned to: the only ones they may use."""
    found = cases.list_cases(page.app, page.actor, status=CaseStatus.OPEN.value)
    return [c for c in found if c.engineer_id == page.actor.id]


def _new_request_page(
    page: Page, form: RequestForm, problems: dict[str, str], *, status: int = 200
) -> Response:
    mine = _my_open_cases(page)
    by_id = tenants_by_id(page)
    if not form.case and len(mine) == 1:
        form = replace(form, case=mine[0].id)
    options = [("", "Choose a case"), *((c.id, _case_label(c, by_id)) for c in mine)]
    return page.render(
        "portal/new_request.html",
        title="Request access",
        section="new-request",
        status=status,
        form=form,
        case_options=options,
        has_cases=bool(mine),
        levels=LEVELS,
        category_options=CATEGORY_OPTIONS,
        max_resources=MAX_RESOURCES,
        errors=problems,
    )


@router.get("/requests/new")
def new_request_form(page: SignedInPage, case: str | None = None) -> Response:
    require_section(page, "new-request", "support engineers")
    return _new_request_page(page, RequestForm(case=case or ""), {})


def _resource_problem(numbered: list[tuple[int, str]]) -> str | None:
    if not numbered:
        return "Enter at least one resource, one per line"
    if len(numbered) > MAX_RESOURCES:
        return f"Ask for at most {MAX_RESOURCES} resources in one request"
    for number, name in numbered:
        try:
            validate_resource(name, "resources")
        except errors.ValidationError as exc:
            if any(c.isspace() for c in name):
                return f"Line {number}: “{name}” has a space; resource names have none"
            return f"Line {number}: {detail(exc)}"
    return None


def _request_problems(
    form: RequestForm, numbered: list[tuple[int, str]], mine: Mapping[str, SupportCase]
) -> dict[str, str]:
    """Every problem of the form at once, checked with the domain's own rules.

    The service would stop at the first one; a person fixing a form wants them all.
    """
    problems: dict[str, str] = {}
    if form.case not in mine:
        problems["case"] = "Choose one of your open support cases"
    resource_problem = _resource_problem(numbered)
    if resource_problem:
        problems["resources"] = resource_problem
    if form.access_level not in LEVEL_LABELS:
        problems["access_level"] = "Choose read, or read and write"
    if form.category not in {value for value, _label in CATEGORY_OPTIONS}:
        problems["category"] = "Choose what the access is for; “Other” if nothing fits"
    if form.starts_at:
        try:
            datetime.fromisoformat(form.starts_at)
        except ValueError:
            problems["starts_at"] = "Enter a date and time such as 2026-12-05 22:00, or nothing"
    if not form.justification.strip():
        problems["justification"] = "Say why you need this access; the customer reads it"
    else:
        try:
            text.required_text(form.justification, "justification", max_len=text.JUSTIFICATION_MAX)
        except errors.ValidationError as exc:
            problems["justification"] = sentence(exc, "The justification")
    return problems


def _submit_problem(exc: errors.ValidationError, numbered: list[tuple[int, str]]) -> dict[str, str]:
    """Point a refusal of the service at its field (``resources[1]`` → "Line 2: …")."""
    name, index = split_field(exc.field)
    if name == "resources" and index is not None and index < len(numbered):
        return {"resources": f"Line {numbered[index][0]}: {detail(exc)}"}
    target = {"case_id": "case", "access_level": "access_level"}.get(name, name)
    if target in {"case", "resources", "access_level", "justification", "category", "starts_at"}:
        return {target: sentence(exc)}
    return {"_form": sentence(exc)}


def _sent_message(case: SupportCase, by_id: Mapping[str, Tenant]) -> str:
    tenant = by_id.get(case.tenant_id)
    if tenant is None:
        return "Request sent: a support manager reviews it first."
    if tenant.policy.enabled:
        return (
            "Request sent: a support manager reviews it first, "
            f"then {tenant.name} decides whether to approve it."
        )
    return (
        "Request sent: a support manager reviews it first. "
        f"{tenant.name} has its lockbox off, so access starts once the manager approves."
    )


def _start(value: str, page: SignedInPage) -> datetime | None:
    """A ``datetime-local`` value read in the person's zone (the zone the page shows)."""
    if not value:
        return None
    local = datetime.fromisoformat(value)
    return local if local.tzinfo else local.replace(tzinfo=resolve_zone(page.tz))


@router.post("/requests/new")
async def new_request(page: SignedInPage) -> Response:
    require_section(page, "new-request", "support engineers")
    data = await page.form()
    form = RequestForm(
        case=text_of(data, "case"),
        resources=text_of(data, "resources"),
        access_level=text_of(data, "access_level"),
        justification=text_of(data, "justification"),
        category=text_of(data, "category") or "other",
        starts_at=text_of(data, "starts_at").strip(),
    )
    mine = {c.id: c for c in _my_open_cases(page)}
    numbered = numbered_lines(form.resources)
    problems = _request_problems(form, numbered, mine)
    if not problems:
        case = mine[form.case]
        try:
            created = requests.submit_request(
                page.app,
                page.actor,
                tenant=case.tenant_id,
                case_id=case.id,
                resources=[name for _n, name in numbered],
                access_level=form.access_level,
                justification=form.justification,
                category=form.category,
                starts_at=_start(form.starts_at, page),
            )
        except errors.ValidationError as exc:
            problems = _submit_problem(exc, numbered)
        else:
            message = _sent_message(case, tenants_by_id(page))
            return page.redirect(f"/requests/{created.id}", flash=("success", message))
    return _new_request_page(page, form, problems, status=422)


# -- support cases -----------------------------------------------------------------------


@dataclass(frozen=True)
class CaseForm:
    tenant: str = ""
    title: str = ""
    reference: str = ""
    engineer: str = ""


@dataclass(frozen=True)
class CaseRow:
    """One case as the list shows it: names instead of ids, and what the viewer may do."""

    case: SupportCase
    tenant_name: str
    engineer: people.Person
    closed_by: people.Person | None
    can_request: bool
    can_close: bool


@dataclass(frozen=True)
class CaseLists:
    open: list[CaseRow] = field(default_factory=list)
    closed: list[CaseRow] = field(default_factory=list)


def _visible_cases(page: Page) -> list[SupportCase]:
    """Engineers see the cases assigned to them; managers see every case."""
    found = cases.list_cases(page.app, page.actor)
    if page.has(Role.MANAGER):
        return found
    return [c for c in found if c.engineer_id == page.actor.id]


def _case_rows(page: Page, found: Iterable[SupportCase]) -> CaseLists:
    found = list(found)
    by_id = tenants_by_id(page)
    who = people.resolve(page.app, [c.engineer_id for c in found] + [c.closed_by for c in found])
    lists = CaseLists()
    for c in found:
        is_open = c.status is CaseStatus.OPEN
        row = CaseRow(
            case=c,
            tenant_name=by_id[c.tenant_id].name if c.tenant_id in by_id else "Unknown customer",
            engineer=who[c.engineer_id],
            closed_by=who[c.closed_by] if c.closed_by else None,
            can_request=is_open and c.engineer_id == page.actor.id,
            can_close=is_open
            and allows(page.actor, Intent.CASE_CLOSE, c.tenant_id, owner_id=c.engineer_id),
        )
        (lists.open if is_open else lists.closed).append(row)
    return lists


def _engineer_options(page: Page) -> list[tuple[str, str]]:
    """Active support engineers a manager may assign a case to."""
    staff = users.list_users(page.app, page.actor)
    engineers = [u for u in staff if u.tenant_id is None and u.active and Role.ENGINEER in u.roles]
    return [("", "Choose an engineer")] + [
        (u.id, f"{u.display_name} ({u.email})") for u in engineers
    ]


def _cases_page(
    page: Page, form: CaseForm, problems: dict[str, str], *, status: int = 200
) -> Response:
    assigns = page.has(Role.MANAGER)
    tenant_options = [("", "Choose a customer")] + [
        (t.slug, t.name) for t in tenants.list_tenants(page.app, page.actor)
    ]
    return page.render(
        "portal/cases.html",
        title="Support cases",
        section="cases",
        status=status,
        lists=_case_rows(page, _visible_cases(page)),
        all_cases=assigns,
        form=form,
        tenant_options=tenant_options,
        engineer_options=_engineer_options(page) if assigns else [],
        errors=problems,
    )


@router.get("/cases")
def case_list(page: SignedInPage) -> Response:
    require_section(page, "cases", _STAFF_WORK)
    return _cases_page(page, CaseForm(), {})


_CASE_LABELS: Final = {"title": "The title", "reference": "The reference", "engineer": ""}


def _case_problems(form: CaseForm, assigns: bool) -> dict[str, str]:
    problems: dict[str, str] = {}
    if not form.tenant:
        problems["tenant"] = "Choose the customer the case is for"
    if not form.title.strip():
        problems["title"] = "Enter a title: what the customer reported, in a few words"
    if assigns and not form.engineer:
        problems["engineer"] = "Choose the engineer who works on the case"
    return problems


@router.post("/cases")
async def open_case(page: SignedInPage) -> Response:
    require_section(page, "cases", _STAFF_WORK)
    data = await page.form()
    assigns = page.has(Role.MANAGER)
    form = CaseForm(
        tenant=text_of(data, "tenant"),
        title=text_of(data, "title"),
        reference=text_of(data, "reference"),
        engineer=text_of(data, "engineer") if assigns else "",
    )
    problems = _case_problems(form, assigns)
    if not problems:
        try:
            case = cases.open_case(
                page.app,
                page.actor,
                tenant=form.tenant,
                title=form.title,
                reference=form.reference or None,
                engineer=form.engineer or None,
            )
        except errors.NotFound:
            problems = {"tenant": "Choose one of the customers in the list"}
        except errors.ValidationError as exc:
            name = exc.field if exc.field in _CASE_LABELS else "_form"
            problems = {name: sentence(exc, _CASE_LABELS.get(name, ""))}
            if name == "engineer":
                problems = {name: "Choose an active support engineer"}
        else:
            return page.redirect("/cases", flash=("success", _opened_message(page, case)))
    return _cases_page(page, form, problems, status=422)


def _opened_message(page: Page, case: SupportCase) -> str:
    tenant = tenants_by_id(page).get(case.tenant_id)
    whom = tenant.name if tenant else "the customer"
    if case.engineer_id == page.actor.id:
        return (
            f"Case “{case.title}” for {whom} is open. "
            "Use “Request access” on it when you need to see the customer's content."
        )
    engineer = people.resolve(page.app, [case.engineer_id])[case.engineer_id]
    return f"Case “{case.title}” for {whom} is open and assigned to {engineer.label}."


def _closable(page: Page, case_id: str) -> SupportCase:
    """The case to close; refuses (403) anyone the core would refuse, before they confirm."""
    case = cases.get_case(page.app, page.actor, case_id)
    if not allows(page.actor, Intent.CASE_CLOSE, case.tenant_id, owner_id=case.engineer_id):
        raise errors.PermissionDenied(
            "only the engineer assigned to this case or a support manager can close it"
        )
    return case


@router.get("/cases/{case_id}/close")
def close_case_form(case_id: str, page: SignedInPage) -> Response:
    require_section(page, "cases", _STAFF_WORK)
    case = _closable(page, case_id)
    if case.status is CaseStatus.CLOSED:
        return page.redirect("/cases", flash=("info", f"The case “{case.title}” is closed."))
    ending = requests.list_requests(
        page.app,
        page.actor,
        case_id=case.id,
        states=[s.value for s in OPEN_STATES],
        limit=requests.MAX_PAGE,
    ).items
    row = _case_rows(page, [case]).open[0]
    return page.render(
        "portal/close_case.html",
        title="Close the case",
        section="cases",
        row=row,
        ending=ending,
        level_labels=LEVEL_LABELS,
    )


@router.post("/cases/{case_id}/close")
async def close_case(case_id: str, page: SignedInPage) -> Response:
    require_section(page, "cases", _STAFF_WORK)
    await page.form()
    closed, ended = cases.close_case(page.app, page.actor, case_id)
    if ended:
        count = f"{len(ended)} open request{'s' if len(ended) != 1 else ''} on it ended"
        message = f"Case “{closed.title}” is closed; {count}, and with them any access."
    else:
        message = f"Case “{closed.title}” is closed. No request on it was open."
    return page.redirect("/cases", flash=("success", message))


# -- the review queue --------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewRow:
    view: RequestView
    requester: people.Person
    tenant_name: str
    case: SupportCase | None


def _review_rows(page: Page, items: list[RequestView]) -> list[ReviewRow]:
    by_id = tenants_by_id(page)
    who = people.resolve(page.app, [v.request.requester_id for v in items])
    case_of: dict[str, SupportCase | None] = {}
    for case_id in {v.request.case_id for v in items}:
        try:
            case_of[case_id] = cases.get_case(page.app, page.actor, case_id)
        except errors.NotFound:
            case_of[case_id] = None
    rows = [
        ReviewRow(
            view=v,
            requester=who[v.request.requester_id],
            tenant_name=by_id[v.request.tenant_id].name
            if v.request.tenant_id in by_id
            else "Unknown customer",
            case=case_of[v.request.case_id],
        )
        for v in items
    ]
    return sorted(rows, key=lambda r: (r.view.request.review_deadline, r.view.request.id))


@router.get("/reviews")
def review_queue(page: SignedInPage, cursor: str | None = None) -> Response:
    require_section(page, "reviews", "support managers")
    found = requests.list_requests(
        page.app,
        page.actor,
        states=[State.PENDING_REVIEW.value],
        limit=REVIEW_PAGE,
        cursor=cursor or None,
    )
    return page.render(
        "portal/reviews.html",
        title="Requests to review",
        section="reviews",
        rows=_review_rows(page, found.items),
        level_labels=LEVEL_LABELS,
        next_url=query_url("/reviews", cursor=found.next_cursor) if found.next_cursor else None,
        first_url="/reviews" if cursor else None,
    )
