"""What every page handler gets: the person, their session, rendering, redirects, forms.

Handlers are thin: they read a form, call one service function as the signed-in
person (``page.actor``), and render a template or redirect with a message. Every
refusal of the core (:class:`~lockbox.domain.errors.LockboxError`) that a handler
does not handle itself becomes an error page here (:class:`PageRoute`): a missing
or foreign object is the same "not found" page, an ended session goes back to the
sign-in page, and nothing a person did turns into a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Final
from urllib.parse import quote, urlencode

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from jinja2 import Environment
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from lockbox.config import Settings, get_settings
from lockbox.domain import errors
from lockbox.domain.roles import Principal, Role
from lockbox.service import sessions
from lockbox.service.app import Lockbox
from lockbox.service.sessions import WebSession
from lockbox.web import navigation, security
from lockbox.web.rendering import TZ_COOKIE, NavItem, base_context, make_environment

log = logging.getLogger("lockbox.web")

_ENV: Environment | None = None


def environment() -> Environment:
    global _ENV
    if _ENV is None:
        _ENV = make_environment()
    return _ENV


class CsrfFailed(errors.PermissionDenied):
    code = "csrf_failed"
    title = "This form has expired"


ROLE_LABELS: Mapping[Role, str] = {
    Role.ENGINEER: "Support engineer",
    Role.MANAGER: "Support manager",
    Role.PROVIDER_ADMIN: "Provider admin",
    Role.RESOURCE_SERVICE: "Resource service",
    Role.TENANT_ADMIN: "Tenant admin",
    Role.APPROVER: "Approver",
    Role.AUDITOR: "Auditor",
}
_ROLE_ORDER = list(ROLE_LABELS)


@dataclass(frozen=True)
class Viewer:
    """The signed-in person as the top bar shows them."""

    display_name: str
    email: str
    role_label: str
    tenant_name: str


@dataclass
class Page:
    request: Request
    app: Lockbox
    settings: Settings
    session: WebSession | None
    now: datetime
    _flashes: list[tuple[str, str]] = field(default_factory=list)
    #: A sign-in waiting for its second factor (password checked): not signed in yet.
    partial: WebSession | None = None

    # -- who -----------------------------------------------------------------------------

    @property
    def actor(self) -> Principal:
        """The person acting (their session's principal); refuses when nobody signed in."""
        if self.session is None:
            raise errors.AuthenticationFailed("please sign in")
        return self.session.principal

    def has(self, *roles: Role) -> bool:
        return self.session is not None and any(self.session.principal.has(r) for r in roles)

    @property
    def tz(self) -> str | None:
        if self.session is not None and self.session.user.time_zone:
            return self.session.user.time_zone
        return self.request.cookies.get(TZ_COOKIE)

    @property
    def tz_chosen(self) -> bool:
        return self.session is not None and bool(self.session.user.time_zone)

    # -- forms ---------------------------------------------------------------------------

    async def form(self) -> FormData:
        """The posted form, after checking its synchronizer token (nothing changes otherwise)."""
        data = await self.request.form()
        token = data.get("csrf_token")
        ok = (
            self.session.csrf_ok(token)
            if self.session is not None
            else security.login_csrf_ok(self.request, token)
        )
        if not ok:
            raise CsrfFailed(
                "this form has expired or did not come from this site; reload the page and "
                "try again (nothing was changed)"
            )
        return data

    @property
    def csrf_token(self) -> str:
        if self.session is not None:
            return self.session.row.csrf_secret
        return security.login_csrf(self.request)[0]

    # -- answers -------------------------------------------------------------------------

    def render(
        self,
        template: str,
        *,
        title: str,
        status: int = 200,
        section: str | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """A full page: ``template`` extends ``base.html``; ``section`` marks the nav item."""
        viewer = None
        nav: list[NavItem] = []
        if self.session is not None:
            viewer = _viewer(self)
            nav = navigation.items(self.session.principal, section)
            self._flashes = sessions.take_flash(self.app, self.session) + self._flashes
        token, new_cookie = (self.csrf_token, False)
        if self.session is None:
            token, new_cookie = security.login_csrf(self.request)
        variables = base_context(
            page_title=title,
            provider_name=self.settings.provider_name,
            user=viewer,
            csrf_token=token,
            nav=nav,
            flashes=[(k, t) for k, t in self._flashes if k in _KINDS],  # type: ignore[misc]
            tz=self.tz,
            tz_source="chosen" if self.tz_chosen else "default",
        )
        variables.update(now=self.now, page=self, **context)
        html = environment().get_template(template).render(variables)
        response = HTMLResponse(html, status_code=status)
        if new_cookie:
            security.set_login_csrf_cookie(response, token, secure=self.secure)
        return response

    def redirect(self, url: str, *, flash: tuple[str, str] | None = None) -> RedirectResponse:
        """Post/Redirect/Get; the message shows on the next page."""
        if flash is not None and self.session is not None:
            sessions.add_flash(self.app, self.session, *flash)
        return RedirectResponse(url, status_code=303)

    def flash_now(self, kind: str, text: str) -> None:
        self._flashes.append((kind, text))

    @property
    def secure(self) -> bool:
        return security.secure_cookies(self.request, self.settings)

    @property
    def client_ip(self) -> str | None:
        return self.request.client.host if self.request.client else None


_KINDS = {"success", "info", "warning", "error"}


def _viewer(page: Page) -> Viewer:
    session = page.session
    if session is None:
        raise errors.BrokenInvariant("no session to show")
    user = session.user
    roles = sorted(user.roles, key=_ROLE_ORDER.index)
    tenant_name = page.settings.provider_name
    if user.tenant_id:
        with page.app.read() as tx:
            tenant = tx.tenant(user.tenant_id)
        tenant_name = tenant.name if tenant else ""
    return Viewer(
        display_name=user.display_name,
        email=user.email,
        role_label=", ".join(ROLE_LABELS[r] for r in roles) or "No role",
        tenant_name=tenant_name,
    )


def get_lockbox(request: Request) -> Lockbox:
    app = request.app.state.lockbox
    if not isinstance(app, Lockbox):
        raise errors.BrokenInvariant("the application has no Lockbox context")
    return app


def get_page(request: Request) -> Page:
    """The page context; a cookie naming an ended session simply means "signed out"."""
    app = get_lockbox(request)
    settings: Settings = getattr(request.app.state, "settings", None) or get_settings()
    policy = sessions.SessionPolicy.from_settings(settings)
    session = partial = None
    secret = security.read_session_cookie(request)
    if secret:
        try:
            session = sessions.authenticate(app, secret, policy, stages=_STAGES)
        except errors.AuthenticationFailed:
            request.state.stale_session = True
        if session is not None and session.row.stage == "second_factor":
            session, partial = None, session
    return Page(
        request=request,
        app=app,
        settings=settings,
        session=session,
        now=app.now(),
        partial=partial,
    )


_STAGES: Final = frozenset({"second_factor", "enrol"})
#: What someone who must enrol a second factor may still open (everything else sends them
#: to enrol: their session acts with no role until then, see ``sessions._web_session``).
_ENROL_PATHS: Final = ("/account", "/signout", "/reauth")


class EnrolmentRequired(errors.PermissionDenied):
    code = "enrolment_required"
    title = "Add a second factor first"


def require_session(page: Annotated[Page, Depends(get_page)]) -> Page:
    if page.session is None:
        raise errors.AuthenticationFailed("please sign in")
    if page.session.row.stage == "enrol" and not page.request.url.path.startswith(_ENROL_PATHS):
        raise EnrolmentRequired("your organisation asks you to add a second factor first")
    return page


AnyPage = Annotated[Page, Depends(get_page)]
SignedInPage = Annotated[Page, Depends(require_session)]


# -- errors as pages ----------------------------------------------------------------------


_ERROR_PAGES: dict[type[errors.LockboxError], tuple[int, str]] = {
    CsrfFailed: (403, "This form has expired"),
    errors.NotFound: (404, "Not found"),
    errors.PermissionDenied: (403, "Not permitted"),
    errors.InvalidTransition: (409, "This has changed"),
    errors.Conflict: (409, "This has changed"),
    errors.AlreadyExists: (409, "Already exists"),
    errors.ValidationError: (422, "Please check what you entered"),
    errors.RateLimited: (429, "Too many attempts"),
}


def error_page(request: Request, exc: errors.LockboxError) -> Response:
    if isinstance(exc, EnrolmentRequired):
        return RedirectResponse("/account/security?enrol=1", status_code=303)
    if isinstance(exc, errors.AuthenticationFailed) and not isinstance(exc, errors.SignInRefused):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response: Response = RedirectResponse(
            f"/signin?next={quote(target, safe='')}", status_code=303
        )
        if getattr(request.state, "stale_session", False):
            secure = security.secure_cookies(request, get_settings())
            security.clear_session_cookies(response, secure=secure)
        return response
    status, title = next(
        (v for kind, v in _ERROR_PAGES.items() if isinstance(exc, kind)), (400, "Refused")
    )
    try:
        page = get_page(request)
    except Exception:  # the error page must not fail too
        log.exception("cannot build the error page")
        return HTMLResponse("<!doctype html><title>Error</title><p>Something went wrong.</p>", 500)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, errors.RateLimited) else None
    response = page.render(
        "errors/error.html", title=title, status=status, error=exc, heading=title
    )
    if headers:
        response.headers.update(headers)
    return response


class PageRoute(APIRoute):
    """A route whose refusals become HTML pages (the API's become problem+json)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except errors.StepUpRequired as exc:
                return await step_up(request, exc)
            except errors.LockboxError as exc:
                return error_page(request, exc)

        return route


def not_found_page(request: Request) -> Response:
    return error_page(request, errors.NotFound("there is no such page"))


# -- step-up: keep the confirmed form, ask again, then carry it out ----------------------------


async def step_up(request: Request, exc: errors.StepUpRequired) -> Response:
    """The service asked for a fresh sign-in: keep the form the person confirmed (minus its
    CSRF token) with their session and send them to re-authenticate; :func:`replay` carries
    it out afterwards, so they need not confirm twice."""
    page = get_page(request)
    if page.session is None or request.method != "POST":
        return error_page(request, errors.PermissionDenied(exc.message))
    form = await request.form()
    fields = [
        [str(k), str(v)] for k, v in form.multi_items() if k != "csrf_token" and isinstance(v, str)
    ]
    sessions.keep_pending_action(page.app, page.session, request.url.path, fields)
    return RedirectResponse("/reauth", status_code=303)


async def replay(request: Request, page: Page, session: WebSession) -> Response:
    """Carry out the action kept by :func:`step_up`, now that the sign-in is fresh.

    The kept form goes through the whole application again as a POST of this session
    (its CSRF token added), so exactly the same handler and service checks run: a
    request that changed meanwhile still gets the "this has changed" page.
    """
    import httpx

    action = sessions.take_pending_action(page.app, session)
    if action is None:
        return page.redirect(
            navigation.home(session.principal),
            flash=("success", "Thank you: you can go on with what you were doing."),
        )
    fields = [(str(k), str(v)) for k, v in action.get("fields", [])]
    fields.append(("csrf_token", session.row.csrf_secret))
    cookie = request.headers.get("cookie", "")
    client = (request.client.host, request.client.port) if request.client else ("127.0.0.1", 0)
    transport = httpx.ASGITransport(app=request.app, client=client)
    base = f"{request.url.scheme}://{request.url.netloc}"
    async with httpx.AsyncClient(transport=transport, base_url=base) as inner:
        answer = await inner.post(
            str(action.get("path", "/")),
            content=urlencode(fields).encode(),
            headers={
                "cookie": cookie,
                "user-agent": request.headers.get("user-agent", ""),
                "content-type": "application/x-www-form-urlencoded",
            },
        )
    headers = {
        k: v
        for k, v in answer.headers.items()
        if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")
    }
    return Response(answer.content, status_code=answer.status_code, headers=headers)
