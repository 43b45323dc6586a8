"""Sign-in beyond the password: single sign-on, second factors, passkeys and step-up.

* ``/sso/start`` asks for the e-mail address (home-realm discovery) and sends the
  browser to the organisation's identity provider; ``/sso/callback`` is where it comes
  back (the redirect URL to register at the provider). A refusal is a page saying why.
* ``/signin/second-factor``: after a correct password, the code of an authenticator
  app, a recovery code, or a passkey.
* ``/reauth``: a step-up. The service refused an action because the sign-in is old;
  the person proves who they are again and the kept action is carried out
  (:func:`lockbox.web.page.replay`), without confirming it twice.
* ``/account/security``: one's own second factors (enrol, remove, recovery codes).

Passkeys need JavaScript (``static/passkeys.js``, no inline script); every page says
so, and everything else works without it. The JSON answers of the passkey endpoints are
for that script only.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from lockbox.domain import authn, errors
from lockbox.service import factors, passwords, sessions, sso, step_up
from lockbox.service.factors import RelyingParty
from lockbox.service.sessions import SignedIn, WebSession
from lockbox.web import navigation, security
from lockbox.web.page import AnyPage, Page, PageRoute, SignedInPage, replay
from lockbox.web.pages_auth import _safe_next

router = APIRouter(route_class=PageRoute)

SSO_COOKIE: Final = "lockbox_sso"


def _sentence(text: str) -> str:
    text = text.rstrip(".")
    return text[:1].upper() + text[1:] + "."


def _base(page: Page) -> str:
    """This site's origin: the configured public address, else the request's."""
    configured = page.settings.public_address
    if configured and configured.startswith(("https://", "http://")):
        return configured.rstrip("/")
    return f"{page.request.url.scheme}://{page.request.url.netloc}"


def callback_url(page: Page) -> str:
    return _base(page) + "/sso/callback"


def relying_party(page: Page) -> RelyingParty:
    origin = _base(page)
    return RelyingParty(
        id=urlsplit(origin).hostname or "localhost",
        origin=origin,
        name=f"Lockbox · {page.settings.provider_name}",
    )


def _signed_in(page: Page, signed: SignedIn, target: str | None) -> Response:
    """The answer that starts a new session: its cookie, and on to the person's work."""
    session = signed.session
    if session.row.stage == "second_factor":
        where = "/signin/second-factor" + (f"?next={target}" if target else "")
    elif session.row.stage == "enrol":
        where = "/account/security?enrol=1"
    else:
        where = target or navigation.home(session.principal)
    done = RedirectResponse(where, status_code=303)
    security.set_session_cookie(
        done, signed.secret, secure=page.secure, max_age=int(page.settings.session_max_hours * 3600)
    )
    return done


# -- single sign-on ----------------------------------------------------------------------------


def _refused_page(page: Page, exc: errors.LockboxError, status: int = 403) -> Response:
    return page.render(
        "auth/refused.html",
        title="Sign-in refused",
        status=status,
        message=_sentence(exc.message),
        reason=getattr(exc, "reason", exc.code),
    )


@router.post("/sso/start")
async def sso_start(page: AnyPage) -> Response:
    """Find the organisation by the e-mail address and go to its identity provider."""
    form = await page.form()
    email = str(form.get("sso_email") or "").strip()
    target = _safe_next(str(form.get("next") or ""))
    problems: dict[str, str] = {}
    if "@" not in email:
        problems["sso_email"] = "Enter your work e-mail address, e.g. paula@contoso.com"
    else:
        try:
            settings = sso.find_scope(page.app, email)
            started = sso.start(
                page.app,
                settings,
                redirect_uri=callback_url(page),
                next_url=target,
                login_hint=email,
            )
        except errors.SignInRefused as exc:
            problems["sso_email"] = _sentence(exc.message)
        else:
            return _to_provider(page, started)
    return page.render(
        "auth/signin.html",
        title="Sign in",
        status=422,
        email="",
        sso_email=email,
        errors=problems,
        next=target or "",
    )


def _set_sso_cookie(page: Page, response: Response, value: str) -> None:
    # Lax: the provider sends the browser back with a top-level GET, which carries it.
    response.set_cookie(
        SSO_COOKIE,
        value,
        max_age=int(sso.FLOW_TTL.total_seconds()),
        path="/sso/",
        secure=page.secure,
        httponly=True,
        samesite="lax",
    )


@router.get("/sso/callback")
async def sso_callback(
    request: Request,
    page: AnyPage,
    state: str | None = None,
    code: str | None = None,
    error: str | None = None,
) -> Response:
    """The identity provider sends the browser back here with a code (or an error)."""
    try:
        done = sso.complete(
            page.app,
            state=state,
            code=code,
            error=error,
            browser_secret=request.cookies.get(SSO_COOKIE),
            client_ip=page.client_ip,
            user_agent=request.headers.get("user-agent"),
            session=page.session,
            policy=sessions.SessionPolicy.from_settings(page.settings),
        )
    except errors.SignInRefused as exc:
        response = _refused_page(page, exc)
        response.delete_cookie(SSO_COOKIE, path="/sso/")
        return response
    if done.session is not None:  # a step-up: carry out what the person confirmed
        page.session = done.session
        response = await replay(request, page, done.session)
    elif done.signed_in is not None:
        response = _signed_in(page, done.signed_in, _safe_next(done.next_url))
    else:
        raise errors.BrokenInvariant("single sign-on finished with nothing")
    response.delete_cookie(SSO_COOKIE, path="/sso/")
    return response


# -- the second factor after a password ---------------------------------------------------------


def _partial(page: Page) -> WebSession:
    if page.partial is None:
        raise errors.AuthenticationFailed("please sign in")
    return page.partial


def _second_factor_page(page: Page, *, status: int = 200, **extra: Any) -> Response:
    partial = _partial(page)
    kinds = {f.kind for f in factors.list_factors(page.app, partial.principal)}
    context: dict[str, Any] = {"errors": {}, "next": "", "has_totp": "totp" in kinds}
    context.update(extra)
    return page.render(
        "auth/second_factor.html",
        title="Confirm it's you",
        status=status,
        has_passkey="passkey" in kinds,
        **context,
    )


@router.get("/signin/second-factor")
def second_factor_form(page: AnyPage, next: str | None = None) -> Response:
    if page.session is not None:
        return RedirectResponse(_safe_next(next) or navigation.home(page.actor), status_code=303)
    return _second_factor_page(page, next=_safe_next(next) or "")


@router.post("/signin/second-factor")
async def second_factor(page: AnyPage) -> Response:
    form = await page.form()
    partial = _partial(page)
    target = _safe_next(str(form.get("next") or ""))
    code = str(form.get("code") or "").strip()
    recovery = str(form.get("recovery_code") or "").strip()
    problems: dict[str, str] = {}
    status = 422
    if not code and not recovery:
        problems["code"] = "Enter the code your authenticator app shows, or a recovery code"
    else:
        try:
            sessions.check_not_locked(page.app, partial.user.email, partial.row.client_ip)
        except errors.RateLimited as exc:
            problems["_throttled"] = _sentence(exc.message)
            status = 429
        else:
            method = None
            if code and factors.check_totp(page.app, partial.user.id, code):
                method = authn.PASSWORD_TOTP
            elif recovery and factors.use_recovery_code(page.app, partial.user.id, recovery):
                method = authn.PASSWORD_RECOVERY
            if method is not None:
                signed = sessions.complete_second_factor(
                    page.app,
                    partial,
                    method,
                    policy=sessions.SessionPolicy.from_settings(page.settings),
                )
                return _signed_in(page, signed, target)
            sessions.second_factor_failed(
                page.app, partial, sessions.SessionPolicy.from_settings(page.settings)
            )
            field = "code" if code else "recovery_code"
            problems[field] = (
                "This code is wrong, or was used already; wait for the next one"
                if code
                else "This recovery code is wrong, or was used already"
            )
            status = 401
    return _second_factor_page(page, status=status, errors=problems, next=target or "")


# -- passkeys: sign in, second factor, step-up (JSON for static/passkeys.js) ---------------


def _json_error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": _sentence(message)}, status_code=status)


@router.post("/signin/passkey/options")
async def passkey_signin_options(page: AnyPage) -> Response:
    await page.form()
    partial = page.partial
    ceremony = factors.authentication_options(
        page.app,
        relying_party(page),
        purpose="second_factor" if partial else "signin",
        session_id=partial.id if partial else None,
        user_id=partial.user.id if partial else None,
    )
    return JSONResponse({"options": ceremony.options, "handle": ceremony.handle})


@router.post("/signin/passkey")
async def passkey_signin(page: AnyPage) -> Response:
    form = await page.form()
    partial = page.partial
    target = _safe_next(str(form.get("next") or ""))
    try:
        user = factors.check_passkey(
            page.app,
            relying_party(page),
            purpose="second_factor" if partial else "signin",
            session_id=partial.id if partial else None,
            handle=str(form.get("handle") or ""),
            credential=str(form.get("credential") or ""),
        )
        rules = sessions.SessionPolicy.from_settings(page.settings)
        if partial is not None:
            signed = sessions.complete_second_factor(page.app, partial, authn.PASSKEY, policy=rules)
        else:
            signed = sessions.sign_in_with_passkey(
                page.app,
                user,
                client_ip=page.client_ip,
                user_agent=page.request.headers.get("user-agent"),
                policy=rules,
            )
    except errors.SignInRefused as exc:
        return _json_error(exc.message, 403)
    except (errors.AuthenticationFailed, errors.ValidationError) as exc:
        return _json_error(exc.message, 401)
    answer = _signed_in(page, signed, target)
    response = JSONResponse({"redirect": answer.headers["location"]})
    for value in answer.headers.getlist("set-cookie"):
        response.headers.append("set-cookie", value)
    return response


# -- step-up -------------------------------------------------------------------------------------


def _reauth_page(page: SignedInPage, *, status: int = 200, **extra: Any) -> Response:
    session = page.session
    if session is None:
        raise errors.AuthenticationFailed("please sign in")
    kinds = {f.kind for f in factors.list_factors(page.app, page.actor)}
    context: dict[str, Any] = {"errors": {}}
    context.update(extra)
    return page.render(
        "auth/reauth.html",
        title="Confirm it's you",
        status=status,
        has_totp="totp" in kinds,
        has_passkey="passkey" in kinds,
        has_password=sessions.has_password(page.app, page.actor.id),
        sso=sso.sso_available(page.app, session.user),
        minutes=max(1, page.settings.step_up_seconds // 60),
        **context,
    )


@router.get("/reauth")
def reauth_form(page: SignedInPage) -> Response:
    return _reauth_page(page)


@router.post("/reauth")
async def reauth(request: Request, page: SignedInPage) -> Response:
    """Password (and the second factor, if the person has one) proves it's them again."""
    form = await page.form()
    session = page.session
    if session is None:
        raise errors.AuthenticationFailed("please sign in")
    password = str(form.get("password") or "")
    code = str(form.get("code") or "").strip()
    problems: dict[str, str] = {}
    has_totp = any(f.kind == "totp" for f in factors.list_factors(page.app, page.actor))
    if not password:
        problems["password"] = "Enter your password"
    if has_totp and not code:
        problems["code"] = "Enter the code your authenticator app shows"
    if problems:
        return _reauth_page(page, status=422, errors=problems)
    try:
        sessions.check_not_locked(page.app, session.user.email, page.client_ip)
        passwords.verify_password(page.app, session.user.email, password)
    except errors.RateLimited as exc:
        return _reauth_page(page, status=429, errors={"_throttled": _sentence(exc.message)})
    except errors.AuthenticationFailed:
        sessions.second_factor_failed(page.app, session)
        return _reauth_page(page, status=401, errors={"password": "This password is wrong"})
    method = authn.PASSWORD
    if has_totp:
        if not factors.check_totp(page.app, session.user.id, code):
            sessions.second_factor_failed(page.app, session)
            problems["code"] = "This code is wrong, or was used already; wait for the next one"
            return _reauth_page(page, status=401, errors=problems)
        method = authn.PASSWORD_TOTP
    fresh = sessions.reauthenticated(page.app, session, method, None)
    page.session = fresh
    return await replay(request, page, fresh)


@router.post("/reauth/sso")
async def reauth_sso(page: SignedInPage) -> Response:
    """A round trip to the organisation's identity provider, asking for a fresh sign-in."""
    await page.form()
    session = page.session
    if session is None:
        raise errors.AuthenticationFailed("please sign in")
    try:
        started = sso.start_for_user(
            page.app,
            session,
            redirect_uri=callback_url(page),
            next_url=None,
            max_age=0,
        )
    except errors.SignInRefused as exc:
        return _refused_page(page, exc)
    return _to_provider(page, started)


def _to_provider(page: Page, started: sso.Started) -> Response:
    """A page that moves on to the provider at once (a meta refresh, with a link).

    Not a redirect: the page's CSP says ``form-action 'self'``, which also stops a form's
    redirect to another site, and no inline script may do it instead.
    """
    response = page.render("auth/continue.html", title="Sign in", target=started.url)
    _set_sso_cookie(page, response, started.browser_secret)
    return response


@router.post("/reauth/passkey/options")
async def reauth_passkey_options(page: SignedInPage) -> Response:
    await page.form()
    session = page.session
    if session is None:
        raise errors.AuthenticationFailed("please sign in")
    ceremony = factors.authentication_options(
        page.app,
        relying_party(page),
        purpose="reauth",
        session_id=session.id,
        user_id=session.user.id,
    )
    return JSONResponse({"options": ceremony.options, "handle": ceremony.handle})


@router.post("/reauth/passkey")
async def reauth_passkey(page: SignedInPage) -> Response:
    """Checks the passkey; the script then posts ``/reauth/continue`` to carry out the action."""
    form = await page.form()
    session = page.session
    if session is None:
        raise errors.AuthenticationFailed("please sign in")
    try:
        user = factors.check_passkey(
            page.app,
            relying_party(page),
            purpose="reauth",
            session_id=session.id,
            handle=str(form.get("handle") or ""),
            credential=str(form.get("credential") or ""),
        )
    except (errors.AuthenticationFailed, errors.ValidationError) as exc:
        return _json_error(exc.message, 401)
    if user.id != session.user.id:
        return _json_error("this passkey is someone else's", 401)
    sessions.reauthenticated(page.app, session, authn.PASSKEY, None)
    return JSONResponse({"continue": "/reauth/continue"})


@router.post("/reauth/continue")
async def reauth_continue(request: Request, page: SignedInPage) -> Response:
    """Carry out the kept action, if the sign-in is fresh (else back to ``/reauth``)."""
    await page.form()
    session = page.session
    if session is None:
        raise errors.AuthenticationFailed("please sign in")
    if authn.needs_step_up(session.principal, page.now, step_up.max_age()):
        return RedirectResponse("/reauth", status_code=303)
    return await replay(request, page, session)
