"""Auto-approval: a customer's own rules, and the changes that wait for a second admin.

A tenant admin writes rules that approve requests in advance (which resources, up to
which level, for which justification categories, on which days and hours in which time
zone, for at most how long); switches them off or deletes them at once; and, when the
organisation has more than one tenant admin, sees every change that widens access
waiting for a second admin (new and looser rules, policy changes) and approves or
rejects the others' and withdraws their own. Handlers stay thin, as in
:mod:`lockbox.web.pages_tenant`: read a form, call one service function, redirect with
a message saying what happened (Post/Redirect/Get), or re-render the form with the
refusal next to its field (422).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.responses import Response

from lockbox.domain import errors
from lockbox.domain.auto_approval import (
    CATEGORIES,
    DAYS,
    AutoApprovalRule,
    RuleState,
    StoredRule,
    parse_rule,
    validate_zone,
)
from lockbox.domain.changes import ChangeKind, ChangeState, PendingChange
from lockbox.domain.permissions import Intent, allows
from lockbox.domain.policy import parse_duration
from lockbox.domain.resources import AccessLevel
from lockbox.service import auto_approval, changes, people, tenants
from lockbox.service.people import Person
from lockbox.web.page import Page, PageRoute, SignedInPage
from lockbox.web.pages_audit import format_seconds
from lockbox.web.pages_tenant import _message, _tenant_id, _text, _texts, only_admins

router = APIRouter(route_class=PageRoute)

#: The justification categories in people's words (the request form offers the same).
CATEGORY_LABELS: Final[Mapping[str, str]] = {
    "incident": "Incident (something is broken now)",
    "maintenance": "Planned maintenance",
    "investigation": "Investigation of a reported problem",
    "customer_request": "Your organisation asked for it",
    "other": "Other",
}
_SHORT_CATEGORY: Final = {
    "incident": "incidents",
    "maintenance": "planned maintenance",
    "investigation": "investigations",
    "customer_request": "your own requests",
    "other": "other reasons",
}
DAY_LABELS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY_SHORT: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: Rule settings → form field (and its label in messages).
_FIELDS: Final[Mapping[str, tuple[str, str]]] = {
    "name": ("name", "Name"),
    "resources": ("resources", "Resources"),
    "access_level": ("access_level", "Access level"),
    "categories": ("categories", "Justification categories"),
    "days": ("days", "Days"),
    "hours": ("hours", "Hours"),
    "time_zone": ("time_zone", "Time zone"),
    "max_access_window_seconds": ("max_window", "Longest access"),
}
_LEVELS: Final = (
    ("read", "Read only", "look at content; change nothing"),
    ("read_write", "Read and write", "also change or delete content"),
)
_STATE_WORDS: Final = {
    RuleState.ACTIVE: ("Active", "ok", "check"),
    RuleState.DISABLED: ("Switched off", "ended", "minus"),
    RuleState.PENDING: ("Waiting for a second admin", "wait", "hourglass"),
}
_OUTCOME_WORDS: Final = {
    ChangeState.APPLIED: "Approved and applied",
    ChangeState.REJECTED: "Rejected",
    ChangeState.WITHDRAWN: "Withdrawn by its author",
    ChangeState.SUPERSEDED: "Superseded: what it changed moved on first",
}


# -- rules in words -----------------------------------------------------------------------------


def days_words(days: Iterable[int]) -> str:
    """``Mon–Fri``, ``Every day``, ``Mon, Wed and Fri``."""
    ordered = sorted(set(days))
    if len(ordered) == 7:
        return "Every day"
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{_DAY_SHORT[ordered[0]]}–{_DAY_SHORT[ordered[-1]]}"
    names = [_DAY_SHORT[d] for d in ordered]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def duration_words(seconds: int) -> str:
    hours, rest = divmod(seconds // 60, 60)
    parts = [f"{hours} hour{'s' if hours != 1 else ''}"] if hours else []
    if rest or not parts:
        parts.append(f"{rest} minute{'s' if rest != 1 else ''}")
    return " ".join(parts)


@dataclass(frozen=True)
class RuleWords:
    """A rule as sentences: what it approves and when."""

    access: str
    categories: str
    when: str
    window: str


def rule_words(rule: AutoApprovalRule) -> RuleWords:
    level = "Read and write" if rule.access_level is AccessLevel.READ_WRITE else "Read"
    resources = ", ".join(rule.resources)
    hours = "all day" if rule.hours == "00:00-24:00" else rule.hours.replace("-", "–")
    return RuleWords(
        access=f"{level} access to {resources}",
        categories="For " + _and([_SHORT_CATEGORY[c] for c in CATEGORIES if c in rule.categories]),
        when=f"{days_words(rule.days)}, {hours} ({rule.time_zone} time)",
        window=f"Access for at most {duration_words(int(rule.max_access_window.total_seconds()))}",
    )


def _and(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


# -- pending changes in words -------------------------------------------------------------------

_POLICY_LABELS: Final = {
    "enabled": "lockbox",
    "approval_window_seconds": "approval window",
    "access_window_seconds": "access window",
    "review_window_seconds": "review window",
    "required_approvals": "required approvals",
    "notify_emails": "extra notification addresses",
    "reminder_fraction": "reminder",
    "stages": "approval stages",
    "groups": "groups",
    "max_extensions": "extensions allowed",
    "extension_stages": "extension stages",
}


def _setting(key: str, value: object) -> str:
    if key == "enabled":
        return "on" if value else "off"
    if key.endswith("_seconds") and isinstance(value, int):
        return format_seconds(value)
    if key == "reminder_fraction" and isinstance(value, int | float):
        return f"{round(float(value) * 100, 2):g}% left" if value else "no reminder"
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            return ", ".join(str(v.get("name") or v.get("key")) for v in value)
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {len(v)} people" for k, v in value.items()) or "none"
    return str(value)


def policy_change_lines(diff: Mapping[str, Any]) -> list[str]:
    """``lockbox off (was on)`` for every setting a policy change sets."""
    lines = []
    for key, value in diff.items():
        if not isinstance(value, dict):
            continue
        label = _POLICY_LABELS.get(key, key.replace("_", " "))
        lines.append(
            f"{label} {_setting(key, value.get('to'))} (was {_setting(key, value.get('from'))})"
        )
    return lines


@dataclass(frozen=True)
class ChangeView:
    """A change for a second admin, as the page shows it."""

    change: PendingChange
    title: str
    lines: list[str]
    proposer: Person
    decider: Person | None
    mine: bool

    @property
    def outcome(self) -> str:
        return _OUTCOME_WORDS.get(self.change.state, self.change.state.value)


def _rule_from(payload: Mapping[str, Any], change: PendingChange) -> AutoApprovalRule | None:
    try:
        return parse_rule(
            dict(payload.get("rule") or {}),
            rule_id=change.target_id or "",
            tenant_id=change.tenant_id,
            field="",
        )
    except errors.ValidationError:
        return None


def _change_view(
    change: PendingChange, rules: Mapping[str, StoredRule], who: Mapping[str, Person], me: str
) -> ChangeView:
    lines: list[str]
    if change.kind is ChangeKind.POLICY:
        title = "Change the lockbox policy"
        lines = policy_change_lines(change.payload.get("changes") or {})
    else:
        proposed = _rule_from(change.payload, change)
        current = rules.get(change.target_id or "")
        name = proposed.name if proposed else (current.rule.name if current else "a rule")
        if change.kind is ChangeKind.RULE_CREATE:
            title = f"New rule “{name}”"
            words = rule_words(proposed) if proposed else None
            lines = [words.access, words.categories, words.when, words.window] if words else []
        else:
            title = f"Change the rule “{name}”"
            lines = _rule_diff(current.rule if current else None, proposed)
    return ChangeView(
        change=change,
        title=title,
        lines=lines,
        proposer=who[change.proposed_by],
        decider=who.get(_person(change) or ""),
        mine=change.proposed_by == me,
    )


def _person(change: PendingChange) -> str | None:
    """Who decided a change (None: nobody yet, or it was superseded by another change)."""
    decided_by = change.decided_by
    return None if decided_by is None or decided_by.startswith("pch_") else decided_by


def _rule_diff(before: AutoApprovalRule | None, after: AutoApprovalRule | None) -> list[str]:
    if after is None:
        return []
    if before is None:
        words = rule_words(after)
        return [words.access, words.categories, words.when, words.window]
    old, new = rule_words(before), rule_words(after)
    lines = [
        f"{b} (was: {a[:1].lower() + a[1:]})"
        for a, b in (
            (old.access, new.access),
            (old.categories, new.categories),
            (old.when, new.when),
            (old.window, new.window),
        )
        if a != b
    ]
    if after.enabled and not before.enabled:
        lines.append("Switches the rule on")
    if after.name != before.name:
        lines.append(f"Renames it “{after.name}”")
    return lines


# -- the page -----------------------------------------------------------------------------------

_EMPTY_FORM: Final = {
    "name": "",
    "resources": "",
    "access_level": "read",
    "categories": [],
    "days": list(DAYS[:5]),
    "hours": "09:00-17:00",
    "time_zone": "",
    "max_window": "1h",
}


def _page(
    page: Page,
    *,
    values: Mapping[str, Any] | None = None,
    problems: Mapping[str, str] | None = None,
    confirm: str | None = None,
    status: int = 200,
) -> Response:
    tenant_id = _tenant_id(page)
    with only_admins("see the auto-approval rules"):
        # Ended rules too: a change may name one (read once, not one look-up per change).
        every = auto_approval.list_rules(page.app, page.actor, tenant_id, include_ended=True)
        found = changes.list_changes(page.app, page.actor, tenant_id)
        four_eyes = changes.second_admin_needed(page.app, page.actor, tenant_id)
    tenant = tenants.get_tenant(page.app, page.actor, tenant_id)
    rules = [r for r in every if not r.state.final]
    by_id = {r.id: r for r in every}
    who = people.resolve(page.app, [c.proposed_by for c in found] + [_person(c) for c in found])
    views = [_change_view(c, by_id, who, page.actor.id) for c in found]
    form = dict(values or {**_EMPTY_FORM, "time_zone": _default_zone(page)})
    return page.render(
        "tenant/auto_approval.html",
        title="Auto-approval",
        section="auto-approval",
        status=status,
        tenant=tenant,
        rules=[r for r in rules if r.state is not RuleState.PENDING],
        pending_rules={
            c.target_id for c in found if c.state is ChangeState.PENDING and c.target_id
        },
        waiting=[v for v in views if v.change.state is ChangeState.PENDING],
        decided=[v for v in views if v.change.state is not ChangeState.PENDING][:10],
        words=rule_words,
        state_words=_STATE_WORDS,
        four_eyes=four_eyes,
        can_manage=allows(page.actor, Intent.AUTO_RULE_MANAGE, tenant_id),
        can_decide=allows(page.actor, Intent.CHANGE_DECIDE, tenant_id),
        confirm_rule=next((r for r in rules if r.id == confirm), None),
        values=form,
        errors=dict(problems or {}),
        category_choices=[(c, CATEGORY_LABELS[c]) for c in CATEGORIES],
        day_choices=list(zip(DAYS, DAY_LABELS, strict=True)),
        levels=_LEVELS,
        lockbox_on=tenant.policy.enabled,
        policy_window=format_seconds(int(tenant.policy.access_window.total_seconds())),
    )


def _default_zone(page: Page) -> str:
    try:
        return validate_zone(page.tz or "UTC", "time_zone")
    except errors.ValidationError:
        return "UTC"


@router.get("/auto-approval")
def auto_approval_page(page: SignedInPage, confirm: str | None = None) -> Response:
    """The rules, the changes waiting for a second admin, and a form for a new rule."""
    return _page(page, confirm=confirm)


def _form_values(form: FormData) -> dict[str, Any]:
    return {
        "name": _text(form, "name"),
        "resources": str(form.get("resources") or ""),
        "access_level": _text(form, "access_level") or "read",
        "categories": _texts(form, "categories"),
        "days": _texts(form, "days"),
        "hours": _text(form, "hours"),
        "time_zone": _text(form, "time_zone"),
        "max_window": _text(form, "max_window"),
    }


def _settings(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The form as rule settings, and what cannot even be read (field → message)."""
    problems: dict[str, str] = {}
    settings: dict[str, Any] = {
        "name": values["name"],
        "resources": [line.strip() for line in values["resources"].splitlines() if line.strip()],
        "access_level": values["access_level"],
        "categories": values["categories"],
        "days": values["days"],
        "hours": values["hours"],
        "time_zone": values["time_zone"],
    }
    if not values["name"]:
        problems["name"] = "Give the rule a name, e.g. “Calendars during office hours”"
    if not settings["categories"]:
        problems["categories"] = "Choose at least one justification category"
    if not settings["days"]:
        problems["days"] = "Choose at least one day"
    try:
        window = parse_duration(values["max_window"], "max_window")
        settings["max_access_window_seconds"] = int(window.total_seconds())
    except errors.ValidationError as exc:
        problems["max_window"] = _message(exc, "Longest access")
    return settings, problems


def _rule_problem(exc: errors.ValidationError) -> dict[str, str]:
    base = exc.field.split("[", 1)[0].split(".", 1)[0]
    field, label = _FIELDS.get(base, ("_form", "Rule"))
    if "[" in exc.field and base == "resources":
        line = int(exc.field.split("[", 1)[1].split("]", 1)[0]) + 1
        label = f"Resources, line {line}"
    return {field: _message(exc, label)}


@router.post("/auto-approval/rules")
async def add_rule(page: SignedInPage) -> Response:
    """Write a rule: active at once, or waiting for a second admin (four eyes)."""
    form = await page.form()
    values = _form_values(form)
    settings, problems = _settings(values)
    if not problems:
        try:
            with only_admins("write auto-approval rules"):
                outcome = auto_approval.create_rule(
                    page.app, page.actor, _tenant_id(page), settings
                )
        except errors.ValidationError as exc:
            problems = _rule_problem(exc)
        else:
            name = outcome.rule.rule.name
            if outcome.pending is not None:
                note = (
                    f"The rule “{name}” is not active yet: your organisation has more than one "
                    "tenant admin, so another tenant admin must approve it. It waits below."
                )
                return page.redirect("/auto-approval#changes-title", flash=("warning", note))
            state = "approves matching requests from now on"
            if outcome.rule.state is RuleState.DISABLED:
                state = "is saved switched off: it approves nothing until you switch it on"
            return page.redirect("/auto-approval", flash=("success", f"The rule “{name}” {state}."))
    return _page(page, values=values, problems=problems, status=422)


async def _switch(page: Page, rule_id: str, enabled: bool) -> Response:
    await page.form()
    with only_admins("change auto-approval rules"):
        outcome = auto_approval.update_rule(
            page.app, page.actor, _tenant_id(page), rule_id, {"enabled": enabled}
        )
    name = outcome.rule.rule.name
    if outcome.pending is not None:
        note = (
            f"The rule “{name}” stays switched off for now: another tenant admin must approve "
            "switching it on. It waits below."
        )
        return page.redirect("/auto-approval#changes-title", flash=("warning", note))
    if enabled:
        note = f"The rule “{name}” is switched on: it approves matching requests from now on."
    else:
        note = f"The rule “{name}” is switched off: it approves nothing from now on."
    return page.redirect("/auto-approval", flash=("success", note))


@router.post("/auto-approval/rules/{rule_id}/disable")
async def disable_rule(rule_id: str, page: SignedInPage) -> Response:
    return await _switch(page, rule_id, False)


@router.post("/auto-approval/rules/{rule_id}/enable")
async def enable_rule(rule_id: str, page: SignedInPage) -> Response:
    return await _switch(page, rule_id, True)


@router.post("/auto-approval/rules/{rule_id}/delete")
async def delete_rule(rule_id: str, page: SignedInPage) -> Response:
    await page.form()
    with only_admins("delete auto-approval rules"):
        deleted = auto_approval.delete_rule(page.app, page.actor, _tenant_id(page), rule_id)
    note = f"The rule “{deleted.rule.name}” is deleted: it approves nothing from now on."
    return page.redirect("/auto-approval", flash=("success", note))


_DONE: Final = {
    "approve": "Approved: the change applies from now on.",
    "reject": "Rejected: nothing changed.",
    "withdraw": "Withdrawn: nothing changed.",
}


async def _decide(page: Page, change_id: str, how: str) -> Response:
    form = await page.form()
    comment = _text(form, "comment") or None
    action = changes.DECISIONS[how]
    try:
        with only_admins("decide on changes"):
            action(page.app, page.actor, _tenant_id(page), change_id, comment=comment)
    except errors.Conflict as exc:
        if exc.extra.get("state") == ChangeState.SUPERSEDED.value:
            note = (
                "Nothing was applied: what this change would change was changed since it was "
                "proposed, so it is superseded. Propose it again if it is still wanted."
            )
            return page.redirect("/auto-approval#history-title", flash=("error", note))
        raise
    except errors.InvalidTransition as exc:
        note = f"Nothing was done: the change is {exc.state} already."
        return page.redirect("/auto-approval#history-title", flash=("error", note))
    return page.redirect("/auto-approval", flash=("success", _DONE[how]))


@router.post("/auto-approval/changes/{change_id}/approve")
async def approve_change(change_id: str, page: SignedInPage) -> Response:
    return await _decide(page, change_id, "approve")


@router.post("/auto-approval/changes/{change_id}/reject")
async def reject_change(change_id: str, page: SignedInPage) -> Response:
    return await _decide(page, change_id, "reject")


@router.post("/auto-approval/changes/{change_id}/withdraw")
async def withdraw_change(change_id: str, page: SignedInPage) -> Response:
    return await _decide(page, change_id, "withdraw")
