"""One's own second factors, a tenant's sign-in settings, and its sessions and tokens.

* ``/account/security``: add an authenticator app (TOTP) or a passkey, remove them,
  renew recovery codes (shown once). Someone whose organisation requires a second
  factor lands here after their password and cannot act until they add one.
* ``/sign-in``: the tenant admin's single sign-on settings (the client secret is
  write-only: the page says "set" or "not set") and the sign-in rules.
* ``/sessions``: every live session and API token of the tenant's people, each
  revocable by its admins.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response

from lockbox.domain import authn, errors
from lockbox.domain.permissions import Intent, allows
from lockbox.service import factors, sessions, sso, tokens
from lockbox.web.page import Page, PageRoute, SignedInPage
from lockbox.web.pages_signin import callback_url, relying_party
from lockbox.web.rendering import qr_svg

router = APIRouter(route_class=PageRoute)

_YES: Final = ("on", "true", "1", "yes")


def _sentence(text: str) -> str:
    text = text.rstrip(".")
    return text[:1].upper() + text[1:] + "."


def _field_message(exc: errors.ValidationError) -> str:
    return _sentence(exc.message.removeprefix(f"{exc.field}: "))


# -- your own second factors ---------------------------------------------------------------------


def _security_page(page: SignedInPage, *, status: int = 200, **extra: Any) -> Response:
    session = page.session
    if session is None:
        raise errors.AuthenticationFailed("please sign in")
    context: dict[str, Any] = {
        "errors": {},
        "totp_secret": None,
        "totp_uri": None,
        "totp_qr": None,
        "recovery_codes": None,
        "enrol": session.row.stage == "enrol",
    }
    context.update(extra)
    return page.render(
        "account/security.html",
        title="Sign-in and second factors",
        section="account",
        status=status,
        factors=factors.list_factors(page.app, page.actor),
        codes_left=factors.recovery_codes_left(page.app, page.actor),
        method=authn.describe(session.row.auth_method, session.row.auth_provider),
        **context,
    )


@router.get("/account/security")
def security(page: SignedInPage, enrol: str | None = None) -> Response:
    if enrol and page.session is not None and page.session.row.stage == "enrol":
        page.flash_now(
            "warning",
            "Your organisation asks approvers and admins to use a second factor. Add an "
            "authenticator app or a passkey to go on.",
        )
    return _security_page(page)


def _totp_context(page: Page, secret: str) -> dict[str, Any]:
    email = page.session.user.email if page.session else ""
    uri = factors.totp_uri(secret, email, f"Lockbox {page.settings.provider_name}")
    return {"totp_secret": secret, "totp_uri": uri, "totp_qr": qr_svg(uri)}


@router.post("/account/security/totp/start")
async def totp_start(page: SignedInPage) -> Response:
    await page.form()
    return _security_page(page, **_totp_context(page, factors.new_totp_secret()))


@router.post("/account/security/totp")
async def totp_enrol(page: SignedInPage) -> Response:
    form = await page.form()
    secret = str(form.get("secret") or "")
    try:
        enrolled = factors.enrol_totp(
            page.app, page.actor, secret, str(form.get("code") or ""), str(form.get("name") or "")
        )
    except errors.ValidationError as exc:
        problems = {"code" if exc.field != "name" else "name": _field_message(exc)}
        return _security_page(page, status=422, errors=problems, **_totp_context(page, secret))
    _finished_enrolment(page, factors.STRONG_BY_KIND["totp"])
    page.flash_now("success", f"“{enrolled.factor.name}” is added as your second factor.")
    return _security_page(page, recovery_codes=enrolled.recovery_codes or None)


def _finished_enrolment(page: Page, method: str) -> None:
    """Enrolling proved the factor: a session waiting for it becomes a full one."""
    if page.session is not None and page.session.row.stage == "enrol":
        page.session = sessions.reauthenticated(page.app, page.session, method, None)


@router.post("/account/security/recovery-codes")
async def recovery_codes(page: SignedInPage) -> Response:
    await page.form()
    try:
        codes = factors.new_recovery_codes(page.app, page.actor)
    except errors.ValidationError as exc:
        return _security_page(page, status=422, errors={"_codes": _field_message(exc)})
    page.flash_now("success", "New recovery codes: the old ones no longer work.")
    return _security_page(page, recovery_codes=codes)


@router.post("/account/security/factors/{factor_id}/remove")
async def remove_factor(factor_id: str, page: SignedInPage) -> Response:
    await page.form()
    removed = factors.remove_factor(page.app, page.actor, factor_id)
    return page.redirect(
        "/account/security", flash=("success", f"“{removed.name}” is removed: it no longer works.")
    )


@router.post("/account/passkeys/options")
async def passkey_options(page: SignedInPage) -> Response:
    await page.form()
    session = page.session
    if session is None:
        raise errors.AuthenticationFailed("please sign in")
    ceremony = factors.registration_options(page.app, page.actor, session.id, relying_party(page))
    return JSONResponse({"options": ceremony.options, "handle": ceremony.handle})


@router.post("/account/passkeys")
async def passkey_enrol(page: SignedInPage) -> Response:
    form = await page.form()
    session = page.session
    if session is None:
        raise errors.AuthenticationFailed("please sign in")
    try:
        enrolled = factors.enrol_passkey(
            page.app,
            page.actor,
            session.id,
            relying_party(page),
            str(form.get("handle") or ""),
            str(form.get("credential") or ""),
            str(form.get("passkey_name") or ""),
        )
    except (errors.ValidationError, errors.AuthenticationFailed) as exc:
        return JSONResponse({"error": _sentence(exc.message)}, status_code=400)
    _finished_enrolment(page, authn.PASSKEY)
    page.redirect(
        "/account/security",
        flash=("success", f"Your passkey “{enrolled.factor.name}” is added."),
    )
    return JSONResponse({"redirect": "/account/security"})


# -- the tenant's sign-in settings ---------------------------------------------------------------


def _tenant_admin(page: Page) -> str:
    user = page.session.user if page.session else None
    if (
        user is None
        or not user.tenant_id
        or not allows(page.actor, Intent.USER_MANAGE, user.tenant_id)
    ):
        raise errors.PermissionDenied("only your organisation's tenant admins can do this")
    return user.tenant_id


def role_map_text(role_map: dict[str, list[str]]) -> str:
    return "\n".join(f"{group} = {', '.join(roles)}" for group, roles in role_map.items())


def parse_role_map_text(value: str) -> dict[str, list[str]]:
    """``approvers = approver`` per line (several roles separated by commas)."""
    found: dict[str, list[str]] = {}
    for number, line in enumerate(value.splitlines(), start=1):
        if not line.strip():
            continue
        group, sep, roles = line.rpartition("=")
        if not sep or not group.strip():
            raise errors.ValidationError("role_map", f"line {number}: write it as “group = role”")
        found[group.strip()] = [r.strip() for r in roles.split(",") if r.strip()]
    return found


def _settings_values(settings: Any) -> dict[str, Any]:
    return {
        "enabled": settings.sso_enabled,
        "issuer": settings.issuer or "",
        "client_id": settings.client_id or "",
        "email_domains": "\n".join(settings.email_domains),
        "groups_claim": settings.groups_claim,
        "role_map": role_map_text(settings.role_map),
        "jit": settings.jit,
        "require_sso": settings.require_sso,
        "require_second_factor": settings.require_second_factor,
    }


def _sign_in_page(page: SignedInPage, *, status: int = 200, **extra: Any) -> Response:
    tenant_id = _tenant_admin(page)
    settings = sso.get_config(page.app, page.actor, tenant_id)
    context: dict[str, Any] = {"errors": {}, "values": _settings_values(settings)}
    context.update(extra)
    return page.render(
        "tenant/sign_in.html",
        title="Sign-in settings",
        section="sign-in",
        status=status,
        settings=settings,
        secret_set=bool(settings.client_secret),
        callback=callback_url(page),
        **context,
    )


@router.get("/sign-in")
def sign_in_settings(page: SignedInPage) -> Response:
    return _sign_in_page(page)


_LABELS: Final = {
    "issuer": "Issuer",
    "client_id": "Client ID",
    "client_secret": "Client secret",
    "email_domains": "E-mail domains",
    "groups_claim": "Groups claim",
    "role_map": "Groups and roles",
    "enabled": "Single sign-on",
    "jit": "Create accounts at first sign-in",
    "require_sso": "Require single sign-on",
    "require_second_factor": "Require a second factor",
}


@router.post("/sign-in")
async def change_sign_in_settings(page: SignedInPage) -> Response:
    form = await page.form()
    tenant_id = _tenant_admin(page)
    values: dict[str, Any] = {
        "issuer": str(form.get("issuer") or "").strip(),
        "client_id": str(form.get("client_id") or "").strip(),
        "email_domains": str(form.get("email_domains") or ""),
        "groups_claim": str(form.get("groups_claim") or "").strip() or "groups",
        "role_map": str(form.get("role_map") or ""),
        "enabled": str(form.get("enabled") or "") in _YES,
        "jit": str(form.get("jit") or "") in _YES,
        "require_sso": str(form.get("require_sso") or "") in _YES,
        "require_second_factor": str(form.get("require_second_factor") or "") in _YES,
    }
    changes: dict[str, Any] = {
        k: values[k]
        for k in ("issuer", "client_id", "groups_claim", "enabled", "jit", "require_sso")
    }
    changes["require_second_factor"] = values["require_second_factor"]
    changes["email_domains"] = [d.strip() for d in values["email_domains"].split() if d.strip()]
    secret = str(form.get("client_secret") or "")
    if secret.strip():
        changes["client_secret"] = secret.strip()
    version = str(form.get("version") or "")
    try:
        changes["role_map"] = parse_role_map_text(values["role_map"])
        updated = sso.set_config(
            page.app,
            page.actor,
            tenant_id,
            changes,
            expected_version=int(version) if version.isdigit() else None,
        )
    except errors.ValidationError as exc:
        field = exc.field.split("[", 1)[0].split(".", 1)[0]
        label = _LABELS.get(field, "Settings")
        problem = {field if field in _LABELS else "_form": f"{label}: {_field_message(exc)}"}
        return _sign_in_page(page, status=422, errors=problem, values=values)
    except errors.Conflict as exc:
        return _sign_in_page(page, status=409, errors={"_form": _sentence(exc.message)})
    state = "on" if updated.sso_enabled else "off"
    return page.redirect(
        "/sign-in", flash=("success", f"Sign-in settings saved. Single sign-on is {state}.")
    )


# -- the tenant's sessions and tokens ----------------------------------------------------------


@router.get("/sessions")
def tenant_sessions(page: SignedInPage) -> Response:
    tenant_id = _tenant_admin(page)
    listed = sessions.list_tenant_credentials(page.app, page.actor, tenant_id)
    return page.render(
        "tenant/sessions.html",
        title="Sessions and tokens",
        section="sessions",
        live=listed.sessions,
        api_tokens=listed.tokens,
        current=page.session.id if page.session else None,
        describe=authn.describe,
    )


@router.post("/sessions/{session_id}/revoke")
async def revoke_session(session_id: str, page: SignedInPage) -> Response:
    await page.form()
    _tenant_admin(page)
    sessions.revoke_session(page.app, page.actor, session_id)
    return page.redirect(
        "/sessions", flash=("success", "The session is ended: it no longer works.")
    )


@router.post("/sessions/tokens/{token_id}/revoke")
async def revoke_token(token_id: str, page: SignedInPage) -> Response:
    await page.form()
    _tenant_admin(page)
    row = tokens.revoke_token(page.app, page.actor, token_id)
    return page.redirect(
        "/sessions",
        flash=("success", f"The API token “{row.name}” is revoked: it no longer works."),
    )
