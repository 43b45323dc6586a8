"""Headers, cookies and CSRF tokens of the admin center.

* Every page gets a Content-Security-Policy without inline scripts or styles,
  ``frame-ancestors 'none'`` (no clickjacking), ``Referrer-Policy: no-referrer``
  (request ids in URLs never leak to another site), ``nosniff`` and, because
  pages show customer data, ``Cache-Control: no-store``.
* The session cookie is ``HttpOnly`` and ``SameSite=Lax``; over HTTPS it is also
  ``Secure`` with the ``__Host-`` prefix (no subdomain can set or read it).
* Forms of a signed-in person carry the session's synchronizer token; the
  sign-in and reset forms, which have no session yet, use a double-submit cookie.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lockbox.config import Settings

CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
#: Paths that are not pages: the API and its own documentation keep their headers.
NOT_PAGES: Final = ("/v1/", "/docs", "/openapi.json", "/.well-known/", "/healthz", "/readyz")
SESSION_COOKIE: Final = "lockbox_session"
SECURE_SESSION_COOKIE: Final = "__Host-lockbox_session"
LOGIN_CSRF_COOKIE: Final = "lockbox_form"
SECURE_LOGIN_CSRF_COOKIE: Final = "__Host-lockbox_form"


def is_page(path: str) -> bool:
    return not path.startswith(NOT_PAGES)


class PageHeaders:
    """ASGI middleware: the security headers above on every page response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        page = is_page(path)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = PAGE_HEADERS if page else {"X-Content-Type-Options": "nosniff"}
                for name, value in extra.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                if page and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def secure_cookies(request: Request, settings: Settings) -> bool:
    """Whether cookies get ``Secure`` and ``__Host-``: HTTPS, or configured so."""
    if settings.cookie_secure == "true":
        return True
    if settings.cookie_secure == "false":
        return False
    return request.url.scheme == "https"


def session_cookie_name(secure: bool) -> str:
    return SECURE_SESSION_COOKIE if secure else SESSION_COOKIE


def read_session_cookie(request: Request) -> str | None:
    return request.cookies.get(SECURE_SESSION_COOKIE) or request.cookies.get(SESSION_COOKIE)


def set_session_cookie(response: Response, secret: str, *, secure: bool, max_age: int) -> None:
    response.set_cookie(
        session_cookie_name(secure),
        secret,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookies(response: Response, *, secure: bool) -> None:
    for name in (SESSION_COOKIE, SECURE_SESSION_COOKIE):
        if name == SECURE_SESSION_COOKIE and not secure:
            continue
        response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")


# -- CSRF for forms without a session (sign-in, reset code) -----------------------------------


def login_csrf(request: Request) -> tuple[str, bool]:
    """The double-submit token for an anonymous form: (token, whether a cookie must be set)."""
    existing = request.cookies.get(SECURE_LOGIN_CSRF_COOKIE) or request.cookies.get(
        LOGIN_CSRF_COOKIE
    )
    if existing and 20 <= len(existing) <= 100:
        return existing, False
    return secrets.token_urlsafe(32), True


def set_login_csrf_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(
        SECURE_LOGIN_CSRF_COOKIE if secure else LOGIN_CSRF_COOKIE,
        token,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def login_csrf_ok(request: Request, submitted: object) -> bool:
    cookie = request.cookies.get(SECURE_LOGIN_CSRF_COOKIE) or request.cookies.get(LOGIN_CSRF_COOKIE)
    return (
        isinstance(submitted, str)
        and bool(cookie)
        and hmac.compare_digest(submitted.encode(), (cookie or "").encode())
    )
