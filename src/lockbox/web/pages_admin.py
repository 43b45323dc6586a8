"""The provider admin's pages: tenants, staff, the outbox and the access-token signing keys.

Each page calls the service functions the API and the CLI use, as the signed-in
provider admin, so the permission matrix decides exactly as it does there.
Changes that cannot be taken back or that cut someone off (deactivating a
person, retiring a key, rotating keys) get a confirmation page first that says
what happens; forms re-render with field-level errors (422, nothing changed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from fastapi import APIRouter
from starlette.responses import Response

from lockbox.domain import errors
from lockbox.domain.policy import LockboxPolicy
from lockbox.domain.roles import Role
from lockbox.domain.tenant import Tenant
from lockbox.domain.user import User
from lockbox.service import access, outbox, passwords, resource_services, tenants, users
from lockbox.web.page import ROLE_LABELS, Page, PageRoute, SignedInPage
from lockbox.web.pages_portal import (
    detail,
    field_of,
    numbered_lines,
    query_url,
    require_section,
    sentence,
    split_field,
    tenants_by_id,
    text_of,
)
from lockbox.web.rendering import localtime

router = APIRouter(route_class=PageRoute)

_ADMINS: Final = "provider admins"
#: Staff roles in the order the forms offer them, with what each may do.
STAFF_ROLES: Final = (
    (Role.ENGINEER, "Requests access on their own support cases."),
    (Role.MANAGER, "Reviews engineers' requests and sees every case."),
    (Role.PROVIDER_ADMIN, "Onboards tenants, manages staff, the outbox and signing keys."),
    (Role.RESOURCE_SERVICE, "Software holding customer content (a mail store) that checks access."),
)
#: Outbox statuses as the filter offers them; "failed" rows are parked until someone re-sends.
OUTBOX_FILTERS: Final = (
    ("failed", "Failed (parked)"),
    ("pending", "Waiting to send"),
    ("sent", "Sent"),
    ("skipped", "Skipped"),
    ("all", "All"),
)
OUTBOX_PAGE: Final = 50
_SPLIT: Final = re.compile(r"[\r\n,;]+")


def _require_admin(page: Page, key: str) -> None:
    require_section(page, key, _ADMINS)


def span(delta: timedelta) -> str:
    """``12 h``, ``90 min``, ``2 d``: a policy window as people say it."""
    minutes = int(delta.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)} d"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes // 60} h {minutes % 60} min" if minutes > 60 else f"{minutes} min"


# -- tenants -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantForm:
    slug: str = ""
    name: str = ""
    domains: str = ""
    lockbox: bool = True


def split_domains(value: str) -> list[str]:
    """Domains one per line or separated by commas: people paste both."""
    return [d.strip() for d in _SPLIT.split(value) if d.strip()]


def _domain_problem(exc: errors.LockboxError, listed: list[str]) -> str:
    """``email_domains[1]: 'x' is not …`` → a sentence that names the domain."""
    _name, index = split_field(field_of(exc))
    said = sentence(exc)
    if index is not None and index < len(listed) and listed[index] not in said:
        return f"{listed[index]}: {detail(exc)}"
    return said


def _tenant_problem(exc: errors.LockboxError, listed: list[str]) -> dict[str, str]:
    name, _index = split_field(field_of(exc))
    if name == "email_domains":
        return {"domains": _domain_problem(exc, listed)}
    if name == "slug":
        return {"slug": sentence(exc, "The short name")}
    if name == "name":
        return {"name": sentence(exc, "The name")}
    return {"_form": sentence(exc)}


def _tenants_page(
    page: Page, form: TenantForm, problems: dict[str, str], *, status: int = 200
) -> Response:
    return page.render(
        "admin/tenants.html",
        title="Tenants",
        section="tenants",
        status=status,
        tenants=tenants.list_tenants(page.app, page.actor),
        span=span,
        form=form,
        errors=problems,
    )


@router.get("/admin/tenants")
def tenant_list(page: SignedInPage) -> Response:
    _require_admin(page, "tenants")
    return _tenants_page(page, TenantForm(), {})


@router.post("/admin/tenants")
async def onboard_tenant(page: SignedInPage) -> Response:
    _require_admin(page, "tenants")
    data = await page.form()
    form = TenantForm(
        slug=text_of(data, "slug").strip(),
        name=text_of(data, "name"),
        domains=text_of(data, "domains"),
        lockbox=text_of(data, "lockbox") == "on",
    )
    problems: dict[str, str] = {}
    if not form.slug:
        problems["slug"] = "Enter a short name, for example contoso"
    if not form.name.strip():
        problems["name"] = "Enter the customer's name, for example Contoso Ltd"
    listed = split_domains(form.domains)
    if not problems:
        try:
            created = tenants.create_tenant(
                page.app,
                page.actor,
                slug=form.slug,
                name=form.name,
                policy={"enabled": form.lockbox},
                email_domains=listed,
            )
        except (errors.ValidationError, errors.AlreadyExists) as exc:
            problems = _tenant_problem(exc, listed)
        else:
            message = f"{created.name} is onboarded with its lockbox {_on_off(created.policy)}."
            return page.redirect(f"/admin/tenants/{created.slug}", flash=("success", message))
    return _tenants_page(page, form, problems, status=422)


def _on_off(policy: LockboxPolicy) -> str:
    return "on" if policy.enabled else "off"


def _tenant_page(
    page: Page, tenant: Tenant, domains: str, problems: dict[str, str], *, status: int = 200
) -> Response:
    return page.render(
        "admin/tenant.html",
        title=tenant.name,
        section="tenants",
        status=status,
        tenant=tenant,
        policy=tenant.policy,
        span=span,
        domains=domains,
        errors=problems,
    )


@router.get("/admin/tenants/{slug}")
def tenant_detail(slug: str, page: SignedInPage) -> Response:
    _require_admin(page, "tenants")
    tenant = tenants.get_policy(page.app, page.actor, slug)
    return _tenant_page(page, tenant, "\n".join(tenant.email_domains), {})


@router.post("/admin/tenants/{slug}/domains")
async def tenant_domains(slug: str, page: SignedInPage) -> Response:
    _require_admin(page, "tenants")
    data = await page.form()
    typed = text_of(data, "domains")
    listed = split_domains(typed)
    try:
        tenant = tenants.set_domains(page.app, page.actor, slug, listed)
    except (errors.ValidationError, errors.AlreadyExists) as exc:
        current = tenants.get_policy(page.app, page.actor, slug)
        problem = {"domains": _domain_problem(exc, listed)}
        return _tenant_page(page, current, typed, problem, status=422)
    if tenant.email_domains:
        message = f"E-mail domains of {tenant.name}: {', '.join(tenant.email_domains)}."
    else:
        message = f"{tenant.name} has no e-mail domains now: its admins cannot add people."
    return page.redirect(f"/admin/tenants/{tenant.slug}", flash=("success", message))


# -- staff -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffForm:
    email: str = ""
    name: str = ""
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceForm:
    """What a resource service serves, as the form holds it."""

    every_tenant: bool = True
    tenants: tuple[str, ...] = ()
    prefixes: str = ""
    audience: str = ""


def role_labels(roles: Iterable[Role]) -> list[str]:
    order = list(ROLE_LABELS)
    return [ROLE_LABELS[r] for r in sorted(roles, key=order.index)]


def _staff(page: Page) -> list[User]:
    """Provider staff are the users of no tenant (customers' people belong to one)."""
    return [u for u in users.list_users(page.app, page.actor) if u.tenant_id is None]


def _staff_member(page: Page, user_id: str) -> User:
    user = users.get_user(page.app, page.actor, user_id)
    if user.tenant_id is not None:
        raise errors.NotFound("there is no such staff member")
    return user


def _staff_problem(exc: errors.LockboxError) -> dict[str, str]:
    name, _index = split_field(field_of(exc))
    if name == "email":
        return {"email": sentence(exc)}
    if name == "display_name":
        return {"name": sentence(exc, "The name")}
    if name in {"roles", "tenant"}:
        return {"roles": sentence(exc)}
    return {"_form": sentence(exc)}


def _staff_page(
    page: Page, form: StaffForm, problems: dict[str, str], *, status: int = 200
) -> Response:
    return page.render(
        "admin/staff.html",
        title="Staff",
        section="staff",
        status=status,
        staff=_staff(page),
        role_labels=role_labels,
        staff_roles=STAFF_ROLES,
        ROLE_LABELS=ROLE_LABELS,
        form=form,
        errors=problems,
    )


@router.get("/admin/users")
def staff_list(page: SignedInPage) -> Response:
    _require_admin(page, "staff")
    return _staff_page(page, StaffForm(), {})


@router.post("/admin/users")
async def create_staff(page: SignedInPage) -> Response:
    _require_admin(page, "staff")
    data = await page.form()
    form = StaffForm(
        email=text_of(data, "email").strip(),
        name=text_of(data, "name"),
        roles=tuple(str(r) for r in data.getlist("roles")),
    )
    problems: dict[str, str] = {}
    if not form.email:
        problems["email"] = "Enter the person's work e-mail address"
    if not form.roles:
        problems["roles"] = "Choose at least one role"
    if not problems:
        try:
            created = users.create_user(
                page.app,
                page.actor,
                email=form.email,
                roles=list(form.roles),
                display_name=form.name or None,
            )
        except (errors.ValidationError, errors.AlreadyExists) as exc:
            problems = _staff_problem(exc)
        else:
            message = f"{created.display_name} ({created.email}) is added. " + (
                "Register below what this resource service serves."
                if Role.RESOURCE_SERVICE in created.roles
                else "Send a reset code so they can choose a password and sign in."
            )
            return page.redirect(f"/admin/users/{created.id}", flash=("success", message))
    return _staff_page(page, form, problems, status=422)


def _service_form(registration: resource_services.Registration) -> ServiceForm:
    scope = registration.scope
    return ServiceForm(
        every_tenant=scope.all_tenants,
        tenants=registration.tenant_slugs,
        prefixes="\n".join(scope.prefixes),
        audience=scope.audience or "",
    )


def _member_page(
    page: Page,
    user: User,
    problems: dict[str, str] | None = None,
    *,
    service_form: ServiceForm | None = None,
    roles: tuple[str, ...] | None = None,
    status: int = 200,
) -> Response:
    registration = None
    if Role.RESOURCE_SERVICE in user.roles:
        registration = resource_services.get_registration(page.app, page.actor, user.id)
        service_form = service_form or _service_form(registration)
    choices = tenants.list_tenants(page.app, page.actor)
    return page.render(
        "admin/staff_member.html",
        title=user.display_name,
        section="staff",
        status=status,
        member=user,
        is_self=user.id == page.actor.id,
        role_labels=role_labels,
        staff_roles=STAFF_ROLES,
        ROLE_LABELS=ROLE_LABELS,
        roles=roles if roles is not None else tuple(r.value for r in user.roles),
        registration=registration,
        service_form=service_form or ServiceForm(),
        tenant_choices=choices,
        tenant_names={t.slug: t.name for t in choices},
        reset_minutes=int(passwords.RESET_TTL.total_seconds() // 60),
        errors=problems or {},
    )


@router.get("/admin/users/{user_id}")
def staff_detail(user_id: str, page: SignedInPage) -> Response:
    _require_admin(page, "staff")
    return _member_page(page, _staff_member(page, user_id))


@router.post("/admin/users/{user_id}/roles")
async def staff_roles(user_id: str, page: SignedInPage) -> Response:
    _require_admin(page, "staff")
    data = await page.form()
    user = _staff_member(page, user_id)
    chosen = tuple(str(r) for r in data.getlist("roles"))
    problem = {"roles": "Choose at least one role; deactivate the account instead"}
    if chosen:
        try:
            changed = users.set_roles(page.app, page.actor, user.id, list(chosen))
        except errors.ValidationError as exc:
            problem = {"roles": sentence(exc)}
        else:
            said = ", ".join(role_labels(changed.roles))
            message = f"{changed.display_name} is now: {said}."
            return page.redirect(f"/admin/users/{user.id}", flash=("success", message))
    return _member_page(page, user, problem, roles=chosen, status=422)


def _confirm_active(page: Page, user_id: str, active: bool) -> Response:
    user = _staff_member(page, user_id)
    if user.active == active:
        state = "active" if active else "deactivated"
        message = f"{user.display_name} is already {state}."
        return page.redirect(f"/admin/users/{user.id}", flash=("info", message))
    return page.render(
        "admin/staff_active.html",
        title="Activate" if active else "Deactivate",
        section="staff",
        member=user,
        activate=active,
        role_labels=role_labels,
    )


async def _set_active(page: Page, user_id: str, active: bool) -> Response:
    await page.form()
    user = users.set_active(page.app, page.actor, user_id, active)
    message = (
        f"{user.display_name} is active again and can sign in."
        if active
        else f"{user.display_name} is deactivated: they can no longer sign in or use tokens."
    )
    return page.redirect(f"/admin/users/{user.id}", flash=("success", message))


@router.get("/admin/users/{user_id}/deactivate")
def deactivate_form(user_id: str, page: SignedInPage) -> Response:
    _require_admin(page, "staff")
    return _confirm_active(page, user_id, False)


@router.post("/admin/users/{user_id}/deactivate")
async def deactivate(user_id: str, page: SignedInPage) -> Response:
    _require_admin(page, "staff")
    _staff_member(page, user_id)
    return await _set_active(page, user_id, False)


@router.get("/admin/users/{user_id}/activate")
def activate_form(user_id: str, page: SignedInPage) -> Response:
    _require_admin(page, "staff")
    return _confirm_active(page, user_id, True)


@router.post("/admin/users/{user_id}/activate")
async def activate(user_id: str, page: SignedInPage) -> Response:
    _require_admin(page, "staff")
    _staff_member(page, user_id)
    return await _set_active(page, user_id, True)


@router.post("/admin/users/{user_id}/reset")
async def start_reset(user_id: str, page: SignedInPage) -> Response:
    _require_admin(page, "staff")
    await page.form()
    user = _staff_member(page, user_id)
    try:
        started = passwords.start_reset(page.app, page.actor, user.id)
    except errors.ValidationError as exc:
        return _member_page(page, user, {"_reset": sentence(exc, "The account")}, status=422)
    until = localtime(started.expires_at, page.tz)
    message = (
        f"A one-time reset code is on its way to {started.user.email}. It works once, "
        f"until {until}; nobody else sees it."
    )
    return page.redirect(f"/admin/users/{user.id}", flash=("success", message))


def _service_problem(exc: errors.LockboxError, numbered: list[tuple[int, str]]) -> dict[str, str]:
    name, index = split_field(field_of(exc))
    if name == "prefixes" and index is not None and index < len(numbered):
        return {"prefixes": f"Line {numbered[index][0]}: {detail(exc)}"}
    if name in {"prefixes", "audience"}:
        return {name: sentence(exc, "The audience" if name == "audience" else "")}
    if name == "tenants":
        return {"tenants": sentence(exc)}
    return {"_service": sentence(exc)}


@router.post("/admin/users/{user_id}/service")
async def register_service(user_id: str, page: SignedInPage) -> Response:
    _require_admin(page, "staff")
    data = await page.form()
    user = _staff_member(page, user_id)
    form = ServiceForm(
        every_tenant=text_of(data, "serves") != "chosen",
        tenants=tuple(str(t) for t in data.getlist("tenants")),
        prefixes=text_of(data, "prefixes"),
        audience=text_of(data, "audience").strip(),
    )
    numbered = numbered_lines(form.prefixes)
    problems: dict[str, str] = {}
    if not form.every_tenant and not form.tenants:
        problems["tenants"] = "Choose at least one tenant, or every tenant"
    if not numbered:
        problems["prefixes"] = "Enter at least one prefix, such as exchange/ (or * for all)"
    if not problems:
        try:
            resource_services.register(
                page.app,
                page.actor,
                user.id,
                tenants="*" if form.every_tenant else list(form.tenants),
                prefixes=[p for _n, p in numbered],
                audience=form.audience or None,
            )
        except (errors.ValidationError, errors.AlreadyExists) as exc:
            problems = _service_problem(exc, numbered)
        else:
            message = f"{user.display_name} now serves what is registered below."
            return page.redirect(f"/admin/users/{user.id}#service", flash=("success", message))
    return _member_page(page, user, problems, service_form=form, status=422)


# -- outbox ------------------------------------------------------------------------------


class OutboxMessage(Protocol):
    """What the outbox page shows of a message (the store's row has more)."""

    @property
    def id(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def topic(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def tenant_id(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def due_at(self) -> datetime: ...
    @property
    def sent_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class OutboxLine:
    message: OutboxMessage
    tenant_name: str


def _tenant_name(tenant_id: str | None, by_id: Mapping[str, Tenant]) -> str:
    """Whose message it is: a tenant's, or the provider's own (staff e-mails)."""
    if tenant_id is None:
        return "Provider"
    found = by_id.get(tenant_id)
    return found.name if found else "Unknown tenant"


def _outbox_lines(rows: Iterable[OutboxMessage], by_id: Mapping[str, Tenant]) -> list[OutboxLine]:
    return [OutboxLine(r, _tenant_name(r.tenant_id, by_id)) for r in rows]


@router.get("/admin/outbox")
def outbox_list(page: SignedInPage, status: str = "failed", cursor: str | None = None) -> Response:
    _require_admin(page, "outbox")
    chosen = status if status in dict(OUTBOX_FILTERS) else "failed"
    rows, next_cursor = outbox.list_outbox(
        page.app,
        page.actor,
        status=None if chosen == "all" else chosen,
        limit=OUTBOX_PAGE,
        cursor=cursor or None,
    )
    counts = outbox.counts(page.app, page.actor)
    return page.render(
        "admin/outbox.html",
        title="Outbox",
        section="outbox",
        status_filter=chosen,
        filters=OUTBOX_FILTERS,
        counts={**counts, "all": sum(counts.values())},
        lines=_outbox_lines(rows, tenants_by_id(page)),
        next_url=query_url("/admin/outbox", status=chosen, cursor=next_cursor)
        if next_cursor
        else None,
        first_url=query_url("/admin/outbox", status=chosen) if cursor else None,
    )


@router.post("/admin/outbox/{message_id}/retry")
async def outbox_retry(message_id: str, page: SignedInPage) -> Response:
    _require_admin(page, "outbox")
    await page.form()
    row = outbox.retry_message(page.app, page.actor, message_id)
    message = (
        f"The {row.channel} “{row.topic}” to {row.recipient} is queued again; "
        "the worker sends it on its next round."
    )
    return page.redirect("/admin/outbox?status=failed", flash=("success", message))


# -- signing keys ------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyView:
    kid: str
    algorithm: str
    status: str
    created_at: datetime | None
    retired_at: datetime | None
    publish_until: datetime | None


def _instant(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _key_view(summary: Mapping[str, Any]) -> KeyView:
    return KeyView(
        kid=str(summary["kid"]),
        algorithm=str(summary["algorithm"]),
        status=str(summary["status"]),
        created_at=_instant(summary.get("created_at")),
        retired_at=_instant(summary.get("retired_at")),
        publish_until=_instant(summary.get("publish_until")),
    )


def _keys(page: Page) -> list[KeyView]:
    return [_key_view(k) for k in access.list_keys(page.app, page.actor)]


def _token_config(page: Page) -> access.TokenConfig:
    return access.TokenConfig.from_settings(page.settings)


@router.get("/admin/keys")
def key_list(page: SignedInPage) -> Response:
    _require_admin(page, "keys")
    return page.render(
        "admin/keys.html",
        title="Signing keys",
        section="keys",
        keys=_keys(page),
        token_lifetime=span(_token_config(page).ttl),
    )


@router.get("/admin/keys/rotate")
def rotate_form(page: SignedInPage) -> Response:
    _require_admin(page, "keys")
    current = next((k for k in _keys(page) if k.status == "active"), None)
    return page.render(
        "admin/key_rotate.html",
        title="Rotate the signing key",
        section="keys",
        current=current,
        token_lifetime=span(_token_config(page).ttl),
    )


@router.post("/admin/keys/rotate")
async def rotate(page: SignedInPage) -> Response:
    _require_admin(page, "keys")
    await page.form()
    new = _key_view(access.rotate_keys(page.app, page.actor, _token_config(page)))
    lifetime = span(_token_config(page).ttl)
    message = (
        f"The new key {new.kid} signs from now on. The previous key keeps verifying "
        f"tokens for {lifetime}, until they expire."
    )
    return page.redirect("/admin/keys", flash=("success", message))


def _published_key(page: Page, kid: str) -> KeyView:
    """A key that may be retired: published, not the one that signs."""
    key = next((k for k in _keys(page) if k.kid == kid), None)
    if key is None:
        raise errors.NotFound("there is no such signing key")
    if key.status == "active":
        raise errors.InvalidTransition(
            "this key is the one that signs; rotate first, then retire it", state="active"
        )
    return key


@router.get("/admin/keys/{kid}/retire")
def retire_form(kid: str, page: SignedInPage) -> Response:
    _require_admin(page, "keys")
    key = _published_key(page, kid)
    if key.status == "retired":
        return page.redirect("/admin/keys", flash=("info", f"The key {key.kid} is retired."))
    return page.render("admin/key_retire.html", title="Retire a key", section="keys", key=key)


@router.post("/admin/keys/{kid}/retire")
async def retire(kid: str, page: SignedInPage) -> Response:
    _require_admin(page, "keys")
    await page.form()
    key = _key_view(access.retire_key(page.app, page.actor, kid))
    message = f"The key {key.kid} is retired: tokens it signed no longer verify."
    return page.redirect("/admin/keys", flash=("success", message))
