"""Signing in and out, choosing a password with a reset code, and one's own account."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from fastapi import APIRouter
from starlette.responses import RedirectResponse, Response

from lockbox.domain import errors
from lockbox.domain.instants import optional_utc_instant
from lockbox.domain.permissions import Intent, allows
from lockbox.service import delegations, passwords, people, sessions, tokens
from lockbox.web import navigation, security
from lockbox.web.page import AnyPage, PageRoute, SignedInPage
from lockbox.web.rendering import resolve_zone

router = APIRouter(route_class=PageRoute)

#: Zones offered on the account page; any other valid IANA name may be typed.
COMMON_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
)


def _safe_next(value: str | None) -> str | None:
    """Only a path on this site (never ``//evil.example`` or a scheme): no open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if any(ord(c) < 0x20 for c in value) or len(value) > 500:
        return None
    return value


@router.get("/")
def home(page: AnyPage) -> Response:
    if page.session is None:
        return RedirectResponse("/signin", status_code=303)
    return RedirectResponse(navigation.home(page.actor), status_code=303)


# -- sign in / out ---------------------------------------------------------------------------


_NOTICES = {
    "signed_out": "You have signed out.",
    "reset": "Your new password is set. Sign in with it.",
    "ended": "Your session has ended. Please sign in again.",
}


@router.get("/signin")
def signin_form(page: AnyPage, next: str | None = None, notice: str | None = None) -> Response:
    if page.session is not None:
        return RedirectResponse(_safe_next(next) or navigation.home(page.actor), status_code=303)
    if notice in _NOTICES:
        page.flash_now("info", _NOTICES[notice])
    return page.render(
        "auth/signin.html",
        title="Sign in",
        email="",
        sso_email="",
        errors={},
        next=_safe_next(next) or "",
    )


@router.post("/signin")
async def signin(page: AnyPage) -> Response:
    form = await page.form()
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    target = _safe_next(str(form.get("next") or ""))
    problems: dict[str, str] = {}
    if not email:
        problems["email"] = "Enter your e-mail address"
    if not password:
        problems["password"] = "Enter your password"
    status = 422
    if not problems:
        try:
            signed_in = sessions.sign_in(
                page.app,
                email,
                password,
                client_ip=page.client_ip,
                user_agent=page.request.headers.get("user-agent"),
                policy=sessions.SessionPolicy.from_settings(page.settings),
            )
        except errors.RateLimited as exc:
            problems["_throttled"] = exc.message[:1].upper() + exc.message[1:] + "."
            status = 429
        except errors.SignInRefused as exc:
            problems["_sso"] = exc.message[:1].upper() + exc.message[1:] + "."
            status = 403
        except errors.AuthenticationFailed:
            problems["_wrong"] = "The e-mail address or the password is wrong."
            status = 401
        else:
            from lockbox.web.pages_signin import _signed_in

            # A brand-new session id, whatever cookie came in (a stale session is replaced);
            # a second factor or an enrolment may come first.
            return _signed_in(page, signed_in, target)
    response = page.render(
        "auth/signin.html",
        title="Sign in",
        status=status,
        email=email,
        sso_email=email if status == 403 else "",
        errors=problems,
        next=target or "",
    )
    if status == 429 and "_throttled" in problems:
        response.headers["Retry-After"] = "60"
    return response


@router.post("/signout")
async def signout(page: AnyPage) -> Response:
    if page.session is not None:
        await page.form()
        sessions.sign_out(page.app, page.session)
    response = RedirectResponse("/signin?notice=signed_out", status_code=303)
    security.clear_session_cookies(response, secure=page.secure)
    return response


# -- reset codes -----------------------------------------------------------------------------


@router.get("/reset")
def reset_form(page: AnyPage) -> Response:
    return page.render("auth/reset.html", title="Use a reset code", email="", code="", errors={})


@router.post("/reset")
async def reset(page: AnyPage) -> Response:
    form = await page.form()
    email = str(form.get("email") or "").strip()
    code = str(form.get("code") or "").strip()
    new = str(form.get("new_password") or "")
    again = str(form.get("new_password_again") or "")
    problems = _password_problems(new, again, "new_password")
    if not email:
        problems["email"] = "Enter your e-mail address"
    if not code:
        problems["code"] = "Enter the code from the e-mail"
    status = 422
    if not problems:
        try:
            passwords.complete_reset(page.app, email, code, new)
        except errors.AuthenticationFailed as exc:
            problems["code"] = exc.message[:1].upper() + exc.message[1:] + "."
            status = 401
        except errors.ValidationError as exc:
            problems["new_password"] = _sentence(exc)
        else:
            return RedirectResponse("/signin?notice=reset", status_code=303)
    return page.render(
        "auth/reset.html",
        title="Use a reset code",
        status=status,
        email=email,
        code=code,
        errors=problems,
    )


def _password_problems(new: str, again: str, field: str) -> dict[str, str]:
    problems: dict[str, str] = {}
    if len(new) < passwords.PASSWORD_MIN:
        problems[field] = f"Choose a password of at least {passwords.PASSWORD_MIN} characters"
    elif len(new) > passwords.PASSWORD_MAX:
        problems[field] = f"Choose a password of at most {passwords.PASSWORD_MAX} characters"
    elif new != again:
        problems[f"{field}_again"] = "The two passwords are not the same"
    return problems


def _sentence(exc: errors.ValidationError) -> str:
    text = exc.message.removeprefix(f"{exc.field}: ")
    return text[:1].upper() + text[1:]


# -- your account ----------------------------------------------------------------------------


def _account(page: SignedInPage, **extra: Any) -> Response:
    status = int(extra.pop("status", 200))
    actor = page.actor
    my_tokens = tokens.list_tokens(page.app, actor)
    my_sessions = sessions.list_sessions(page.app, actor)
    context: dict[str, Any] = {
        "zones": COMMON_ZONES,
        "zone": page.session.user.time_zone if page.session else None,
        "tokens": [t for t in my_tokens if t.revoked_at is None],
        "sessions": [
            s
            for s in my_sessions
            if s.revoked_at is None
            and s.expires_at > page.now
            and s.last_seen_at + timedelta(minutes=page.settings.session_idle_minutes) > page.now
        ],
        "current_session": page.session.id if page.session else None,
        "errors": {},
        "new_token": None,
        "can_delegate": allows(actor, Intent.APPROVAL_DELEGATE, actor.tenant_id),
        "delegation_values": {"to": "", "until": "", "reason": ""},
        "user_id": actor.id,
    }
    if context["can_delegate"]:
        mine = delegations.list_delegations(page.app, actor)
        mine = [d for d in mine if actor.id in (d.from_user, d.to_user)]
        context["delegations"] = mine
        context["delegation_people"] = people.resolve(
            page.app, {d.from_user for d in mine} | {d.to_user for d in mine}
        )
    context.update(extra)
    return page.render(
        "account/index.html", title="Your account", section="account", status=status, **context
    )


@router.post("/account/delegations")
async def account_delegate(page: SignedInPage) -> Response:
    """Hand your approvals to a colleague until a day (end of that day in your zone)."""
    form = await page.form()
    values = {k: str(form.get(k) or "").strip() for k in ("to", "until", "reason")}
    problems: dict[str, str] = {}
    ends: datetime | None = None
    try:
        day = datetime.fromisoformat(values["until"]).date()
        zone = resolve_zone(page.session.user.time_zone if page.session else None)
        ends = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    except ValueError:
        problems["until"] = "Enter the last day, such as 2026-12-31"
    if not values["to"]:
        problems["to"] = "Enter your colleague's e-mail address"
    if not problems:
        try:
            made = delegations.create_delegation(
                page.app, page.actor, to=values["to"], ends_at=ends, reason=values["reason"] or None
            )
        except errors.ValidationError as exc:
            field = {"ends_at": "until", "starts_at": "until"}.get(exc.field, exc.field)
            problems[field if field in ("to", "until", "reason") else "to"] = _sentence(exc)
        else:
            note = (
                f"Your approvals are delegated until {made.ends_at:%Y-%m-%d %H:%M} UTC. "
                "Your colleague is asked along with you, and acts on your behalf."
            )
            return page.redirect("/account#delegation-title", flash=("success", note))
    return _account(page, status=422, errors=problems, delegation_values=values)


@router.post("/account/delegations/{delegation_id}/revoke")
async def account_end_delegation(delegation_id: str, page: SignedInPage) -> Response:
    await page.form()
    delegations.revoke_delegation(page.app, page.actor, delegation_id)
    return page.redirect("/account", flash=("success", "The delegation is ended."))


@router.get("/account")
def account(page: SignedInPage) -> Response:
    return _account(page)


@router.post("/account/time-zone")
async def account_time_zone(page: SignedInPage) -> Response:
    form = await page.form()
    zone = str(form.get("time_zone") or "").strip()
    try:
        sessions.set_time_zone(page.app, page.actor, None if zone in ("", "browser") else zone)
    except errors.ValidationError as exc:
        return _account(page, status=422, errors={"time_zone": _sentence(exc)})
    label = zone if zone not in ("", "browser") else "your browser's zone (UTC without JavaScript)"
    return page.redirect("/account", flash=("success", f"Times are now shown in {label}."))


@router.post("/account/password")
async def account_password(page: SignedInPage) -> Response:
    form = await page.form()
    current = str(form.get("current_password") or "")
    new = str(form.get("new_password") or "")
    problems = _password_problems(new, str(form.get("new_password_again") or ""), "new_password")
    if not current:
        problems["current_password"] = "Enter your current password"
    if not problems:
        try:
            passwords.change_own_password(page.app, page.actor, current, new)
        except errors.ValidationError as exc:
            problems[exc.field] = _sentence(exc)
    if problems:
        return _account(page, status=422, errors=problems)
    ended = sessions.end_other_sessions(
        page.app, page.actor.id, keep=page.session.id if page.session else None
    )
    note = f" {ended} other session{'s' if ended != 1 else ''} ended." if ended else ""
    return page.redirect("/account", flash=("success", f"Your password is changed.{note}"))


@router.post("/account/tokens")
async def account_new_token(page: SignedInPage) -> Response:
    form = await page.form()
    name = str(form.get("name") or "").strip()
    expires_raw = str(form.get("expires_on") or "").strip()
    problems: dict[str, str] = {}
    expires_at: datetime | None = None
    if expires_raw:
        try:
            day = datetime.fromisoformat(expires_raw)
            expires_at = optional_utc_instant(
                day.replace(tzinfo=day.tzinfo or page.now.tzinfo), "expires_on"
            )
        except (ValueError, errors.ValidationError):
            problems["expires_on"] = "Enter a date such as 2026-12-31"
    if not problems:
        try:
            issued = tokens.create_token(
                page.app, page.actor, name=name or "api", expires_at=expires_at
            )
        except errors.ValidationError as exc:
            field = "expires_on" if exc.field == "expires_at" else exc.field
            problems[field] = _sentence(exc)
        else:
            response = _account(page, new_token=issued)
            return response
    return _account(page, status=422, errors=problems)


@router.post("/account/tokens/{token_id}/revoke")
async def account_revoke_token(token_id: str, page: SignedInPage) -> Response:
    await page.form()
    row = tokens.revoke_token(page.app, page.actor, token_id)
    return page.redirect("/account", flash=("success", f"The token “{row.name}” is revoked."))


@router.post("/account/sessions/end-others")
async def account_end_sessions(page: SignedInPage) -> Response:
    await page.form()
    ended = sessions.end_other_sessions(
        page.app, page.actor.id, keep=page.session.id if page.session else None
    )
    return page.redirect(
        "/account",
        flash=("success", f"{ended} other session{'s' if ended != 1 else ''} ended."),
    )
