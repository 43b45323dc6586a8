"""Sign-in for people, over HTTP against the real app (both databases): sessions, CSRF,
throttling, headers, and the audit trail a customer reads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lockbox.api.app import create_app
from lockbox.config import Settings
from lockbox.domain.roles import Principal
from lockbox.service import audit, passwords
from lockbox.store import tables as t
from tests.conftest import World

PASSWORD = "paula's long passphrase"
PAGES = ("/signin", "/reset", "/account", "/approvals", "/requests", "/no-such-page")


@pytest.fixture
def web(world: World) -> Iterator[TestClient]:
    passwords.set_password(world.app, Principal.operator(), world.contoso_approver.id, PASSWORD)
    app = create_app(world.app)
    app.state.settings = Settings(provider_name="Acme Cloud", cookie_secure="false")
    with TestClient(app, base_url="http://lockbox.test") as client:
        yield client


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_in(client: TestClient, email: str = "paula@contoso.test", password: str = PASSWORD) -> str:
    token = csrf(client.get("/signin").text)
    r = client.post(
        "/signin",
        data={"email": email, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    return r.headers.get("location", "") if r.status_code == 303 else f"{r.status_code}"


def session_cookie(client: TestClient) -> str | None:
    return client.cookies.get("lockbox_session")


def ops(world: World) -> list[str]:
    return [
        r.operation for r in audit.query(world.app, world.contoso_auditor, "contoso", limit=1000)[0]
    ]


def test_sign_in_sets_a_new_httponly_lax_session_and_is_audited(
    web: TestClient, world: World
) -> None:
    web.cookies.set(
        "lockbox_session",
        "planted-by-an-attacker-0123456789abcdef",
        domain="lockbox.test",
        path="/",
    )
    r = web.get("/signin")
    assert r.status_code == 200
    token = csrf(r.text)
    r = web.post(
        "/signin",
        data={"email": "Paula@Contoso.test", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/approvals"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    first = session_cookie(web)
    assert first and first != "planted-by-an-attacker-0123456789abcdef"
    assert web.get("/account").status_code == 200
    # Signing in again (even with a live session) gives a new session id.
    assert sign_in(web) == "/approvals"
    assert session_cookie(web) not in (None, first)
    assert ops(world).count("session.signed_in") == 2


def test_secure_cookies_get_the_host_prefix(world: World) -> None:
    passwords.set_password(world.app, Principal.operator(), world.contoso_approver.id, PASSWORD)
    app = create_app(world.app)
    app.state.settings = Settings(cookie_secure="true")
    with TestClient(app, base_url="https://lockbox.test") as client:
        token = csrf(client.get("/signin").text)
        r = client.post(
            "/signin",
            data={"email": "paula@contoso.test", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("__Host-lockbox_session=")
        assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
        assert "Domain" not in cookie
        assert client.get("/account").status_code == 200


def test_a_form_without_or_with_a_wrong_csrf_token_changes_nothing(
    web: TestClient, world: World
) -> None:
    assert sign_in(web) == "/approvals"
    before = ops(world)
    for data in (
        {"time_zone": "Europe/Berlin"},
        {"time_zone": "Europe/Berlin", "csrf_token": "x" * 43},
    ):
        r = web.post("/account/time-zone", data=data, follow_redirects=False)
        assert r.status_code == 403
        assert "Nothing was changed" in r.text
    with world.app.read() as tx:
        zone = tx.conn.execute(
            select(t.users.c.time_zone).where(t.users.c.id == world.contoso_approver.id)
        ).scalar()
    assert zone is None
    # Sign-out needs the token too (a cross-site form cannot sign someone out).
    assert web.post("/signout", data={}, follow_redirects=False).status_code == 403
    assert web.get("/account").status_code == 200
    # The sign-in form needs its own cookie-bound token: login CSRF is refused.
    fresh = TestClient(web.app, base_url="http://lockbox.test")
    r = fresh.post(
        "/signin",
        data={
            "email": "paula@contoso.test",
            "password": PASSWORD,
            "csrf_token": "forged-token-123456789",
        },
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert ops(world) == before


def test_signed_out_idle_and_old_sessions_cannot_act(web: TestClient, world: World) -> None:
    assert sign_in(web) == "/approvals"
    old = session_cookie(web)
    token = csrf(web.get("/account").text)
    r = web.post("/signout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/signin?notice=signed_out"
    assert "session.signed_out" in ops(world)
    # The old cookie, replayed, is refused: back to the sign-in page, nothing done.
    web.cookies.set("lockbox_session", old or "", domain="lockbox.test", path="/")
    r = web.post(
        "/account/time-zone", data={"time_zone": "UTC", "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=")
    # Idle for the timeout (30 min): ended.
    web.cookies.clear()
    assert sign_in(web) == "/approvals"
    world.clock.advance(timedelta(minutes=29))
    assert web.get("/account").status_code == 200  # activity resets the idle timer
    world.clock.advance(timedelta(minutes=29))
    assert web.get("/account").status_code == 200
    world.clock.advance(timedelta(minutes=30))
    assert web.get("/account", follow_redirects=False).status_code == 303
    # Busy all day: the absolute lifetime (12 h) still ends it.
    web.cookies.clear()
    assert sign_in(web) == "/approvals"
    for _ in range(25):
        world.clock.advance(timedelta(minutes=29))
        web.get("/account")
    assert web.get("/account", follow_redirects=False).status_code == 303
    # A deactivated person's session ends at once.
    web.cookies.clear()
    assert sign_in(web) == "/approvals"
    from lockbox.service import users

    users.set_active(world.app, world.contoso_admin, world.contoso_approver.id, False)
    assert web.get("/account", follow_redirects=False).status_code == 303


def test_repeated_failures_lock_the_account_and_the_address_and_are_audited(
    web: TestClient, world: World
) -> None:
    for _ in range(5):
        assert sign_in(web, password="wrong password!!") == "401"
    # Locked: even the right password is refused for now, with a clear message.
    token = csrf(web.get("/signin").text)
    r = web.post(
        "/signin",
        data={"email": "paula@contoso.test", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 429 and "too many failed sign-ins" in r.text.lower()
    trail = ops(world)
    assert trail.count("session.signin_failed") == 5
    assert trail.count("session.locked_out") == 1
    # An address that does not exist locks the same way (nothing tells them apart).
    for _ in range(5):
        assert sign_in(web, email="nobody@contoso.test", password="wrong password!!") == "401"
    assert sign_in(web, email="nobody@contoso.test", password="wrong password!!") == "429"
    # The lock-out ends on its own.
    world.clock.advance(timedelta(minutes=16))
    assert sign_in(web) == "/approvals"


def test_one_client_address_is_throttled_across_accounts(world: World) -> None:
    app = create_app(world.app)
    app.state.settings = Settings(cookie_secure="false", signin_ip_limit=3)
    with TestClient(app, base_url="http://lockbox.test") as client:
        for n in range(3):
            assert sign_in(client, email=f"guess{n}@contoso.test", password="x" * 12) == "401"
        assert sign_in(client, email="another@contoso.test", password="x" * 12) == "429"


@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_the_security_headers(web: TestClient, path: str) -> None:
    assert sign_in(web) == "/approvals"
    r = web.get(path, follow_redirects=False)
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert "script-src 'self'" in csp
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"


def test_foreign_and_missing_objects_get_the_same_not_found_page(
    web: TestClient, world: World
) -> None:
    from tests.integration.helpers import submit

    fabrikam = submit(world, tenant="fabrikam", resources=["exchange/mailbox/x@fabrikam.com"])
    assert sign_in(web) == "/approvals"
    foreign = web.get(f"/requests/{fabrikam.id}")
    missing = web.get("/requests/req_" + "z" * 26)
    assert foreign.status_code == missing.status_code == 404
    body = re.compile(r"req_[0-9a-z]{26}")
    assert body.sub("", foreign.text) == body.sub("", missing.text)
