"""A customer's own administration: its lockbox policy, its people and its webhooks.

Handlers stay thin: they read a form, call one service function as the signed-in
tenant admin, and redirect with a message saying what changed (Post/Redirect/Get).
A refusal of the domain re-renders the form with the message next to the field it
is about (422) and nothing changed. Who may do what is the permission matrix's
decision, taken in the service layer: an approver may open ``/policy`` to read it,
and a change they post anyway is refused there (403). The pages only put such a
refusal in their own words, and ask the matrix up front where a service would
answer with an empty list instead of a refusal (the people of the tenant).

The one exception to Post/Redirect/Get is a new webhook's signing secret: it exists
readable only in the answer to the POST that created it, so that answer shows it (a
Slack or Microsoft Teams webhook has none: that answer says why, and that its address
is the secret).
A webhook's address is always shown through ``webhooks.display_url`` (list, confirmation,
messages, even right after adding it): receivers often put a credential into the URL
(``?token=…``, Slack's ``/services/…/<token>``), and a page must not hand it to whoever
looks at the screen.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.responses import Response

from lockbox.domain import errors
from lockbox.domain.changes import ChangeKind
from lockbox.domain.permissions import Intent, allows
from lockbox.domain.policy import REQUIRED_APPROVALS_BOUNDS, WINDOW_BOUNDS, LockboxPolicy
from lockbox.domain.policy import parse_duration as domain_parse_duration
from lockbox.domain.roles import Role
from lockbox.domain.tenant import Tenant
from lockbox.domain.user import User
from lockbox.service import changes as pending_changes
from lockbox.service import passwords, people, sessions, tenants, tokens, users, webhooks
from lockbox.web.page import ROLE_LABELS, Page, PageRoute, SignedInPage
from lockbox.web.pages_audit import format_seconds, operation_words
from lockbox.web.rendering import as_utc, localtime, resolve_zone

router = APIRouter(route_class=PageRoute)


# -- shared helpers -------------------------------------------------------------------------


def _tenant_id(page: Page) -> str:
    """The signed-in person's organisation: these pages only ever act on it."""
    user = page.session.user if page.session else None
    if user is None or not user.tenant_id:
        raise errors.PermissionDenied(
            "these pages are for a customer organisation's own administrators"
        )
    return user.tenant_id


_ADMINS_ONLY: Final = "only your organisation's tenant admins can {}"


@contextmanager
def only_admins(what: str) -> Iterator[None]:
    """The permission matrix's refusal, said in this page's words ("… can change the policy").

    Only a plain :class:`~lockbox.domain.errors.PermissionDenied` is reworded; an
    expired form or a separation-of-duties refusal keeps its own message.
    """
    try:
        yield
    except errors.PermissionDenied as exc:
        if type(exc) is not errors.PermissionDenied:
            raise
        raise errors.PermissionDenied(_ADMINS_ONLY.format(what)) from exc


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _message(exc: errors.LockboxError, label: str) -> str:
    """A domain refusal as a sentence naming the field: "Approval window must be …"."""
    field = exc.extra.get("field")
    text = exc.message.removeprefix(f"{field}: ") if isinstance(field, str) else exc.message
    if text.startswith(("must ", "is ", "at most ")):
        return f"{label} {text}"
    return f"{label}: {text}"


def format_duration(value: timedelta) -> str:
    """``12h``, ``90m`` → ``1h30m``, ``2d`` → ``48h``: the spelling the form accepts back.

    Hours rather than days because the domain's bounds read in hours (``168h``).
    """
    return format_seconds(int(value.total_seconds()))


# -- the lockbox policy ---------------------------------------------------------------------

#: Form field → (policy field, label shown in errors and in the "what changed" message).
POLICY_FIELDS: Final[Mapping[str, tuple[str, str]]] = {
    "enabled": ("enabled", "Lockbox"),
    "approval_window": ("approval_window", "Approval window"),
    "access_window": ("access_window", "Access window"),
    "review_window": ("review_window", "Review window"),
    "required_approvals": ("required_approvals", "Required approvals"),
    "notify_emails": ("notify_emails", "Extra notification addresses"),
    "reminder": ("reminder_fraction", "Reminder"),
}
_FORM_FIELD: Final = {policy: form for form, (policy, _label) in POLICY_FIELDS.items()}
_REMINDER_RULE: Final = "must be at least 0% (no reminder) and below 100%"


def policy_values(policy: LockboxPolicy) -> dict[str, str]:
    """The policy as the form shows it (and as a person would type it)."""
    return {
        "enabled": "on" if policy.enabled else "off",
        "approval_window": format_duration(policy.approval_window),
        "access_window": format_duration(policy.access_window),
        "review_window": format_duration(policy.review_window),
        "required_approvals": str(policy.required_approvals),
        "notify_emails": "\n".join(policy.notify_emails),
        "reminder": _percent(policy.reminder_fraction),
    }


def _percent(fraction: float) -> str:
    value = round(fraction * 100, 2)
    return f"{value:g}"


def _bounds_hint(name: str) -> str:
    low, high = WINDOW_BOUNDS[name]
    return f"From {format_duration(low)} to {format_duration(high)}, e.g. 12h, 90m or 1h30m."


def _parse_policy_form(values: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The typed values as policy changes, and what cannot even be read (field → message).

    Values that parse but break a rule (out of bounds, a bad address) are left to the
    domain, so the page says exactly what the API says.
    """
    changes: dict[str, Any] = {}
    problems: dict[str, str] = {}
    enabled = values.get("enabled", "")
    if enabled in ("on", "off"):
        changes["enabled"] = enabled == "on"
    else:
        problems["enabled"] = "Choose whether the lockbox is on or off"
    for name in WINDOW_BOUNDS:
        try:
            changes[name] = domain_parse_duration(values.get(name, ""), name)
        except errors.ValidationError as exc:
            problems[name] = _message(exc, POLICY_FIELDS[name][1])
    raw_count = values.get("required_approvals", "")
    # Not a number: passed on as typed, and the domain's rule ("a whole number from …") answers.
    changes["required_approvals"] = (
        int(raw_count) if raw_count.isascii() and raw_count.isdigit() else raw_count
    )
    changes["notify_emails"] = tuple(
        line.strip() for line in values.get("notify_emails", "").splitlines() if line.strip()
    )
    reminder = values.get("reminder", "").removesuffix("%").strip()
    try:
        changes["reminder_fraction"] = float(reminder) / 100
    except ValueError:
        problems["reminder"] = f"Reminder {_REMINDER_RULE}, e.g. 25"
    return changes, problems


def _domain_problems(current: LockboxPolicy, changes: Mapping[str, Any]) -> dict[str, str]:
    """Every field the domain refuses, each checked on its own so all are shown at once."""
    problems: dict[str, str] = {}
    for name, value in changes.items():
        try:
            current.with_changes(**{name: value})
        except errors.ValidationError as exc:
            field = _policy_form_field(exc.field)
            problems[field] = _policy_message(exc, field)
    return problems


def _policy_form_field(domain_field: str) -> str:
    """``approval_window`` → ``approval_window``; ``notify_emails[2]`` → ``notify_emails``."""
    base = domain_field.split("[", 1)[0]
    return _FORM_FIELD.get(base, "_policy")


def _policy_message(exc: errors.ValidationError, field: str) -> str:
    if field == "reminder":
        return f"Reminder {_REMINDER_RULE}"
    if field == "notify_emails" and "[" in exc.field:
        line = int(exc.field.split("[", 1)[1].rstrip("]")) + 1
        return _message(exc, f"Extra notification addresses, line {line}")
    label = POLICY_FIELDS[field][1] if field in POLICY_FIELDS else "Policy"
    return _message(exc, label)


def _describe(name: str, policy: LockboxPolicy) -> str:
    """One setting in words, for the "what changed" message."""
    value = getattr(policy, name)
    if name == "enabled":
        return "on" if value else "off"
    if isinstance(value, timedelta):
        return format_duration(value)
    if name == "reminder_fraction":
        return f"{_percent(float(value))}% left" if value else "no reminder"
    if name == "notify_emails":
        return ", ".join(value) if value else "none"
    return str(value)


def changed_settings(before: LockboxPolicy, after: LockboxPolicy) -> list[str]:
    """``approval window 6h (was 12h)`` for every setting that differs."""
    lines = []
    for policy_field, label in POLICY_FIELDS.values():
        old, new = _describe(policy_field, before), _describe(policy_field, after)
        if old != new:
            lines.append(f"{label.lower()} {new} (was {old})")
    return lines


def _policy_page(
    page: Page,
    tenant: Tenant,
    *,
    values: Mapping[str, str] | None = None,
    problems: Mapping[str, str] | None = None,
    version: str | None = None,
    status: int = 200,
) -> Response:
    """The policy page; ``version`` is the one the form was read at, kept across a 422.

    Keeping it means a change someone else made meanwhile still comes up as a conflict
    when the corrected form is sent, instead of being overwritten.
    """
    waiting = []
    if allows(page.actor, Intent.CHANGE_VIEW, tenant.id):
        found = pending_changes.list_changes(page.app, page.actor, tenant.id, states=["pending"])
        waiting = [c for c in found if c.kind is ChangeKind.POLICY]
    return page.render(
        "tenant/policy.html",
        title="Lockbox policy",
        section="policy",
        status=status,
        tenant=tenant,
        waiting=waiting,
        proposers=people.resolve(page.app, [c.proposed_by for c in waiting]),
        change_lines=_change_lines,
        policy=tenant.policy,
        values=values or policy_values(tenant.policy),
        errors=dict(problems or {}),
        version=version or str(tenant.version),
        can_edit=allows(page.actor, Intent.POLICY_CHANGE, tenant.id),
        hints={name: _bounds_hint(name) for name in WINDOW_BOUNDS},
        approvals_bounds=REQUIRED_APPROVALS_BOUNDS,
        described={name: _describe(name, tenant.policy) for name in _FORM_FIELD},
        reminder_percent=_percent(tenant.policy.reminder_fraction),
        stage_lines=_stage_lines(page, tenant.policy),
    )


def _stage_lines(page: Page, policy: LockboxPolicy) -> list[str]:
    """The policy's approval stages (and their groups, by name) as sentences."""
    if not policy.stages:
        return []
    names = people.resolve(page.app, [m for _g, members in policy.groups for m in members])
    groups = {
        name: ", ".join(names[m].display_name if m in names else m for m in members) or "nobody"
        for name, members in policy.groups
    }
    role_words = {"approver": "an approver", "tenant_admin": "a tenant admin"}
    lines = []
    for stage in policy.stages:
        who = [role_words[r.value] for r in sorted(stage.roles) if r.value in role_words]
        if stage.group is not None:
            who.append(f"a member of “{stage.group}” ({groups.get(stage.group, 'nobody')})")
        count = "1 approval" if stage.required == 1 else f"{stage.required} approvals"
        when = []
        if stage.condition.access_level is not None:
            when.append(f"for {stage.condition.access_level.value} access")
        if stage.condition.resources:
            when.append("for " + ", ".join(stage.condition.resources))
        lines.append(
            f"{stage.name}: {count} by {' or '.join(who)}"
            + (f", only {' and '.join(when)}" if when else ", for every request")
        )
    return lines


@router.get("/policy")
def policy(page: SignedInPage) -> Response:
    """The policy: a form for tenant admins, a read-only summary for approvers and auditors."""
    return _policy_page(page, tenants.get_policy(page.app, page.actor, _tenant_id(page)))


@router.post("/policy")
async def change_policy(page: SignedInPage) -> Response:
    """Save the policy if nobody changed it since the form was read (its version)."""
    form = await page.form()
    tenant_id = _tenant_id(page)
    values = {name: _text(form, name) for name in POLICY_FIELDS}
    values["notify_emails"] = str(form.get("notify_emails") or "")
    # An empty change asks the service first whether this person may change the policy
    # at all (403 otherwise, whatever they typed), and returns the current policy.
    with only_admins("change the policy"):
        current = tenants.change_policy(page.app, page.actor, tenant_id, {})
    changes, problems = _parse_policy_form(values)
    found = {**_domain_problems(current.policy, changes), **problems}
    problems = {name: found[name] for name in [*POLICY_FIELDS, *found] if name in found}
    read_at = _text(form, "version")
    if problems:
        return _policy_page(
            page, current, values=values, problems=problems, version=read_at, status=422
        )
    try:
        outcome = tenants.update_policy(
            page.app, page.actor, tenant_id, changes, expected_version=_version(form)
        )
    except errors.Conflict:
        latest = tenants.get_policy(page.app, page.actor, tenant_id)
        note = (
            "Someone else changed the policy while you were editing it, so nothing was saved. "
            "The form now shows the current settings: make your change again."
        )
        return _policy_page(page, latest, problems={"_conflict": note}, status=409)
    except errors.ValidationError as exc:
        field = _policy_form_field(exc.field)
        return _policy_page(
            page,
            current,
            values=values,
            problems={field: _policy_message(exc, field)},
            version=read_at,
            status=422,
        )
    if outcome.pending is not None:
        note = (
            f"Not saved yet: this change {'; '.join(outcome.pending.reasons)}. Your "
            "organisation has more than one tenant admin, so another tenant admin must approve "
            "it on the Auto-approval page; until then the policy stays as it is."
        )
        return page.redirect("/policy", flash=("warning", note))
    return page.redirect("/policy", flash=_policy_flash(current.policy, outcome.tenant.policy))


def _version(form: FormData) -> int:
    raw = _text(form, "version")
    if not (raw.isascii() and raw.isdigit()):
        raise errors.ValidationError("version", "the form is incomplete; reload the page")
    return int(raw)


def _change_lines(diff: Mapping[str, Any]) -> list[str]:
    """A pending policy change's settings in words (the Auto-approval page says the same)."""
    from lockbox.web.pages_auto_approval import policy_change_lines

    return policy_change_lines(diff)


def _policy_flash(before: LockboxPolicy, after: LockboxPolicy) -> tuple[str, str]:
    changed = changed_settings(before, after)
    if not changed:
        return ("info", "Nothing changed: the policy already had these settings.")
    return ("success", "Policy saved. Changed: " + "; ".join(changed) + ".")


# -- people ---------------------------------------------------------------------------------

#: The roles a tenant admin hands out, with what each one lets a person do.
CUSTOMER_ROLES: Final[tuple[tuple[Role, str], ...]] = (
    (Role.APPROVER, "Decides on support engineers' access requests."),
    (Role.AUDITOR, "Reads the audit log and the requests; changes nothing."),
    (
        Role.TENANT_ADMIN,
        "Manages the policy, people and webhooks, reads the audit log and decides on requests.",
    ),
)
_CONFIRMABLE: Final = ("deactivate", "activate", "reset", "sessions")


def role_names(roles: Iterable[Role]) -> str:
    ordered = [label for role, label in ROLE_LABELS.items() if role in set(roles)]
    return ", ".join(ordered) or "No role"


def _people_admin(page: Page) -> str:
    """The tenant whose people the signed-in person manages; refuses everyone else.

    Listing people answers "nobody" to someone who may not see them, and anyone may
    read their own account, so the matrix is asked here to say "not permitted" instead.
    """
    tenant_id = _tenant_id(page)
    if not allows(page.actor, Intent.USER_MANAGE, tenant_id):
        raise errors.PermissionDenied(_ADMINS_ONLY.format("manage its people"))
    return tenant_id


def _users_page(
    page: Page,
    *,
    values: Mapping[str, str] | None = None,
    problems: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    tenant_id = _people_admin(page)
    tenant = tenants.get_tenant(page.app, page.actor, tenant_id)
    people_list = sorted(
        users.list_users(page.app, page.actor, tenant=tenant_id),
        key=lambda u: (not u.active, u.display_name.casefold(), u.email),
    )
    return page.render(
        "tenant/users.html",
        title="People",
        section="users",
        status=status,
        tenant=tenant,
        people=people_list,
        me=page.actor.id,
        values=values or {"email": "", "display_name": "", "role": Role.APPROVER.value},
        errors=dict(problems or {}),
        role_options=[(r.value, ROLE_LABELS[r]) for r, _hint in CUSTOMER_ROLES],
        role_names=role_names,
    )


@router.get("/users")
def users_list(page: SignedInPage) -> Response:
    return _users_page(page)


@router.post("/users")
async def add_user(page: SignedInPage) -> Response:
    """Add a person at one of the organisation's e-mail domains; they choose their password."""
    form = await page.form()
    values = {name: _text(form, name) for name in ("email", "display_name", "role")}
    problems: dict[str, str] = {}
    if not values["email"]:
        problems["email"] = "Enter the person's e-mail address"
    if values["role"] not in {r.value for r, _hint in CUSTOMER_ROLES}:
        problems["role"] = "Choose a role"
    if not problems:
        try:
            user = users.create_user(
                page.app,
                page.actor,
                email=values["email"],
                roles=[values["role"]],
                display_name=values["display_name"] or None,
                tenant=_tenant_id(page),
            )
        except (errors.ValidationError, errors.AlreadyExists) as exc:
            problems.update(_user_problem(exc))
        else:
            note = (
                f"{user.display_name} ({user.email}) is added as {role_names(user.roles)}. "
                "They have no password yet: send them a reset code so they can choose one."
            )
            return page.redirect(f"/users/{user.id}", flash=("success", note))
    return _users_page(page, values=values, problems=problems, status=422)


_USER_FIELDS: Final = {"email": "E-mail address", "display_name": "Name", "roles": "Role"}


def _user_problem(exc: errors.LockboxError) -> dict[str, str]:
    raw = exc.extra.get("field")
    field = raw.split("[", 1)[0] if isinstance(raw, str) else "email"
    form_field = "role" if field == "roles" else field
    if form_field not in ("email", "display_name", "role"):
        return {"_form": _sentence(exc.message)}
    if isinstance(exc, errors.AlreadyExists):
        return {"email": "Someone in your organisation already has this e-mail address"}
    return {form_field: _message(exc, _USER_FIELDS.get(field, "Role"))}


@dataclass(frozen=True)
class TokenView:
    """One API token of a person, as the admin may see it: never its secret."""

    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    status: str  # active | revoked | expired


def _token_views(page: Page, user: User) -> list[TokenView]:
    views = []
    for row in tokens.list_tokens(page.app, page.actor, user.id):
        expired = row.expires_at is not None and as_utc(row.expires_at) <= as_utc(page.now)
        status = "revoked" if row.revoked_at else "expired" if expired else "active"
        views.append(
            TokenView(
                row.id,
                row.name,
                row.created_at,
                row.last_used_at,
                row.expires_at,
                row.revoked_at,
                status,
            )
        )
    return sorted(views, key=lambda t: (t.status != "active", -as_utc(t.created_at).timestamp()))


def _user_page(
    page: Page,
    user_id: str,
    *,
    confirm: str | None = None,
    problems: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    tenant_id = _people_admin(page)
    user = users.get_user(page.app, page.actor, user_id)
    if user.tenant_id != tenant_id:
        raise errors.NotFound("user not found")
    return page.render(
        "tenant/user.html",
        title=user.display_name,
        section="users",
        status=status,
        person=user,
        is_me=user.id == page.actor.id,
        tokens=_token_views(page, user),
        confirm=confirm if confirm in _CONFIRMABLE else None,
        errors=dict(problems or {}),
        roles=CUSTOMER_ROLES,
        role_labels=ROLE_LABELS,
        role_names=role_names,
        reset_minutes=int(passwords.RESET_TTL.total_seconds() // 60),
    )


@router.get("/users/{user_id}")
def user_detail(user_id: str, page: SignedInPage, confirm: str | None = None) -> Response:
    """One person; ``?confirm=…`` shows the confirmation step of an action before it is done."""
    return _user_page(page, user_id, confirm=confirm)


@router.post("/users/{user_id}/roles")
async def change_roles(user_id: str, page: SignedInPage) -> Response:
    form = await page.form()
    chosen = _texts(form, "roles")
    if not chosen:
        problem = "Choose at least one role. To stop someone acting, deactivate them instead."
        return _user_page(page, user_id, problems={"roles": problem}, status=422)
    try:
        user = users.set_roles(page.app, page.actor, user_id, chosen)
    except errors.ValidationError as exc:
        return _user_page(page, user_id, problems={"roles": _message(exc, "Roles")}, status=422)
    note = f"{user.display_name} now has these roles: {role_names(user.roles)}."
    return page.redirect(f"/users/{user.id}", flash=("success", note))


@router.post("/users/{user_id}/deactivate")
async def deactivate_user(user_id: str, page: SignedInPage) -> Response:
    await page.form()
    user = users.set_active(page.app, page.actor, user_id, False)
    note = (
        f"{user.display_name} is deactivated: they can no longer sign in, and their sessions "
        "and API tokens no longer work."
    )
    return page.redirect(f"/users/{user.id}", flash=("success", note))


@router.post("/users/{user_id}/activate")
async def activate_user(user_id: str, page: SignedInPage) -> Response:
    await page.form()
    user = users.set_active(page.app, page.actor, user_id, True)
    note = f"{user.display_name} is active again and can sign in with their password."
    return page.redirect(f"/users/{user.id}", flash=("success", note))


@router.post("/users/{user_id}/reset")
async def send_reset_code(user_id: str, page: SignedInPage) -> Response:
    """E-mail the person a one-time code; the admin learns only that it was sent."""
    await page.form()
    try:
        started = passwords.start_reset(page.app, page.actor, user_id)
    except errors.ValidationError as exc:
        problem = _message(exc, "This person")
        return _user_page(page, user_id, problems={"_reset": problem}, status=422)
    until = localtime(started.expires_at, resolve_zone(page.tz))
    note = (
        f"A reset code is on its way to {started.user.email}. It works once, until {until}; "
        "they choose their new password with it at the sign-in page."
    )
    return page.redirect(f"/users/{started.user.id}", flash=("success", note))


@router.post("/users/{user_id}/sessions/end")
async def end_sessions(user_id: str, page: SignedInPage) -> Response:
    await page.form()
    ended = sessions.revoke_user_sessions(page.app, page.actor, user_id)
    plural = "s" if ended != 1 else ""
    note = (
        f"{ended} session{plural} ended. They need to sign in again."
        if ended
        else "There was no session to end: they were not signed in."
    )
    return page.redirect(f"/users/{user_id}", flash=("success", note))


@router.post("/users/{user_id}/tokens/{token_id}/revoke")
async def revoke_user_token(user_id: str, token_id: str, page: SignedInPage) -> Response:
    await page.form()
    row = tokens.revoke_token(page.app, page.actor, token_id)
    note = f"The API token “{row.name}” is revoked: scripts using it stop working now."
    return page.redirect(f"/users/{row.user_id or user_id}", flash=("success", note))


# -- webhooks -------------------------------------------------------------------------------


#: Events in the order a request lives through them (any others follow, alphabetically).
_EVENT_ORDER: Final = tuple(
    f"request.{name}"
    for name in (
        "submit",
        "review_approve",
        "review_reject",
        "cancel",
        "approve",
        "deny",
        "expire",
        "first_use",
        "revoke",
        "end_access",
        "close",
        "case_closed",
    )
)


def event_choices() -> list[tuple[str, str]]:
    """Every event an endpoint can subscribe to, in lifecycle order, with its plain words."""

    def position(event: str) -> tuple[int, str]:
        known = event in _EVENT_ORDER
        return (_EVENT_ORDER.index(event) if known else len(_EVENT_ORDER), event)

    ordered = sorted(webhooks.EVENT_TYPES, key=position)
    return [(event, operation_words(event)) for event in ordered]


#: The formats a webhook can have: value, label, and what it means for the person choosing.
WEBHOOK_FORMATS: Final = (
    (
        "standard",
        "Signed JSON events",
        "for your own systems (tickets, security monitoring); each call is signed with a "
        "secret you get once",
    ),
    (
        "slack",
        "Slack message",
        "paste the incoming-webhook address of a Slack channel "
        "(https://hooks.slack.com/services/…); not signed",
    ),
    (
        "teams",
        "Microsoft Teams message",
        "paste the address of a Teams Workflows webhook or incoming webhook of a channel; "
        "not signed",
    ),
)
FORMAT_LABELS: Final = {value: label for value, label, _hint in WEBHOOK_FORMATS}


def _webhooks_page(
    page: Page,
    *,
    values: Mapping[str, Any] | None = None,
    problems: Mapping[str, str] | None = None,
    created: webhooks.RegisteredWebhook | None = None,
    confirm: str | None = None,
    status: int = 200,
) -> Response:
    tenant_id = _tenant_id(page)
    with only_admins("manage its webhooks"):
        listed = webhooks.list_webhooks(page.app, page.actor, tenant=tenant_id)
    hooks = sorted(listed, key=lambda h: as_utc(h.created_at))
    creators = people.resolve(page.app, [h.created_by for h in hooks])
    return page.render(
        "tenant/webhooks.html",
        title="Webhooks",
        section="webhooks",
        status=status,
        hooks=hooks,
        creators=creators,
        confirm_hook=next((h for h in hooks if h.id == confirm), None),
        created=created,
        values=values or {"url": "", "format": "standard", "mode": "all", "events": []},
        errors=dict(problems or {}),
        event_choices=event_choices(),
        format_choices=WEBHOOK_FORMATS,
        format_labels=FORMAT_LABELS,
        event_words=operation_words,
        shown_url=webhooks.display_url,
    )


@router.get("/webhooks")
def webhooks_list(page: SignedInPage, confirm: str | None = None) -> Response:
    return _webhooks_page(page, confirm=confirm)


@router.post("/webhooks")
async def add_webhook(page: SignedInPage) -> Response:
    """Register an endpoint; the answer shows its signing secret, this once."""
    form = await page.form()
    values: dict[str, Any] = {
        "url": _text(form, "url"),
        "format": _text(form, "format") or "standard",
        "mode": _text(form, "mode") or "all",
        "events": _texts(form, "events"),
    }
    problems: dict[str, str] = {}
    if not values["url"]:
        problems["url"] = (
            "Enter the address of your endpoint, e.g. https://hooks.example.com/lockbox"
        )
    if values["format"] not in FORMAT_LABELS:
        problems["format"] = "Choose what Lockbox sends: signed JSON, a Slack or a Teams message"
    if values["mode"] == "chosen" and not values["events"]:
        problems["events"] = "Choose at least one event, or choose “All events”"
    if not problems:
        events = None if values["mode"] != "chosen" else values["events"]
        try:
            created = webhooks.register(
                page.app,
                page.actor,
                url=values["url"],
                events=events,
                tenant=_tenant_id(page),
                format=values["format"],
            )
        except errors.ValidationError as exc:
            field = next((f for f in ("events", "format") if exc.field.startswith(f)), "url")
            label = {"events": "Events", "format": "Format"}.get(field, "Endpoint address")
            problems[field] = _message(exc, label)
        else:
            shown = webhooks.display_url(created.row.url)
            page.flash_now("success", f"The webhook for {shown} is added.")
            return _webhooks_page(page, created=created, status=201)
    return _webhooks_page(page, values=values, problems=problems, status=422)


@router.post("/webhooks/{webhook_id}/delete")
async def delete_webhook(webhook_id: str, page: SignedInPage) -> Response:
    await page.form()
    hook = webhooks.delete_webhook(page.app, page.actor, webhook_id)
    shown = webhooks.display_url(hook.url)
    note = f"The webhook for {shown} is deleted: nothing more is sent to it."
    return page.redirect("/webhooks", flash=("success", note))
