"""The request pages without a browser: what each role sees, what each form changes.

Fast checks through ``TestClient`` against the real app (fresh SQLite, demo
people, a manual clock). The browser tests (``tests/browser/test_requests_pages.py``)
check the same flows as a person clicks through them; these pin the rules:
status codes, Post/Redirect/Get, nothing changed on an error, escaping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lockbox.api.app import create_app
from lockbox.clock import ManualClock
from lockbox.config import Settings
from lockbox.domain.lifecycle import State
from lockbox.domain.roles import Principal
from lockbox.service import access, cases, requests, users
from lockbox.service.app import Lockbox
from lockbox.service.seed import DEMO_USERS, DemoUser, seed_demo
from lockbox.store.db import Database, upgrade
from lockbox.web import pages_requests

MAILBOX = "exchange/mailbox/alice@contoso.com"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_VERSION = re.compile(r'name="version" value="(\d+)"')


@dataclass
class World:
    app: Lockbox
    clock: ManualClock
    api: FastAPI

    def principal(self, key: str) -> Principal:
        return users.principal_for(self.app, _user(key).email)

    def submit(self, *, tenant: str = "contoso", justification: str = "Inspect sync") -> str:
        engineer = self.principal("ENGINEER")
        case = cases.open_case(self.app, engineer, tenant=tenant, title="Alice's mailbox")
        return requests.submit_request(
            self.app,
            engineer,
            tenant=tenant,
            case_id=case.id,
            resources=[MAILBOX],
            access_level="read",
            justification=justification,
        ).id

    def pending_approval(self, **kw: str) -> str:
        rid = self.submit(**kw)
        requests.review_request(self.app, self.principal("MANAGER"), rid, approve=True)
        return rid

    def approved(self) -> str:
        rid = self.pending_approval()
        requests.decide_request(self.app, self.principal("CONTOSO_APPROVER"), rid, approve=True)
        return rid

    def state(self, rid: str) -> State:
        return requests.get_request(self.app, self.principal("MANAGER"), rid).state

    def client(self, key: str) -> TestClient:
        client = TestClient(self.api, base_url="http://testserver")
        form = client.get("/signin")
        person = _user(key)
        answer = client.post(
            "/signin",
            data={
                "email": person.email,
                "password": person.password,
                "csrf_token": _token(form.text),
            },
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        return client


def _user(key: str) -> DemoUser:
    return next(u for u in DEMO_USERS if u.key == key)


def _token(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def _form(client: TestClient, path: str) -> dict[str, str]:
    """The hidden fields of the form on ``path`` (the CSRF token and the request's version)."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    fields = {"csrf_token": _token(page.text)}
    version = _VERSION.search(page.text)
    if version:
        fields["version"] = version.group(1)
    return fields


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    db = Database(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade(db)
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    app = Lockbox(db, clock)
    seed_demo(app)
    api = create_app(app)
    api.state.settings = Settings(provider_name="Acme Cloud", cookie_secure="false")
    yield World(app, clock, api)
    db.dispose()


# --------------------------------------------------------------------------- helpers


def test_words_for_sentences() -> None:
    assert pages_requests.shorten("a  b\nc", 10) == "a b c"
    assert pages_requests.shorten("word " * 40, 20) == "word word word word…"
    assert pages_requests.resource_words(["a"]) == "a"
    assert pages_requests.resource_words(["a", "b"]) == "a and b"
    assert pages_requests.resource_words(["a", "b", "c", "d", "e"]) == "a, b, c and 2 more"
    assert pages_requests.duration_words(timedelta(hours=4)) == "4 hours"
    assert pages_requests.duration_words(timedelta(days=1, hours=1)) == "1 day 1 hour"
    assert pages_requests.duration_words(timedelta(minutes=30)) == "30 minutes"


# --------------------------------------------------------------------------- the queue


def test_the_queue_shows_what_the_approver_decides_on(world: World) -> None:
    paula = world.client("CONTOSO_APPROVER")
    empty = paula.get("/approvals")
    assert "Nothing is waiting for your approval." in empty.text
    assert "When Acme Cloud&#39;s support asks for access" in empty.text
    rid = world.pending_approval()
    page = paula.get("/approvals")
    assert page.status_code == 200
    for text in (
        "Erin (support engineer)",
        "erin<wbr>@provider.example",
        "Alice&#39;s mailbox",
        MAILBOX,
        "in 12 h",
    ):
        assert text in page.text
    assert "0 of 1" in page.text
    assert f'href="/requests/{rid}/approve"' in page.text


def test_the_queue_sends_people_who_do_not_decide_to_the_list(world: World) -> None:
    mark = world.client("MANAGER")
    answer = mark.get("/approvals", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/requests?state=pending_approval"


# --------------------------------------------------------------------------- approve


def test_approve_confirms_then_grants_with_a_message(world: World) -> None:
    rid = world.pending_approval()
    paula = world.client("CONTOSO_APPROVER")
    confirm = paula.get(f"/requests/{rid}/approve")
    assert "If you approve" in confirm.text and "4 hours after your approval" in confirm.text
    assert "5 Jan 2026, 13:00 UTC" in confirm.text
    assert world.state(rid) is State.PENDING_APPROVAL  # looking changes nothing
    fields = _form(paula, f"/requests/{rid}/approve")
    done = paula.post(
        f"/requests/{rid}/approve", data={**fields, "comment": "today only"}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == f"/requests/{rid}"
    assert world.state(rid) is State.APPROVED
    page = paula.get(f"/requests/{rid}")
    assert "Access approved: Erin (support engineer) can read" in page.text
    assert "Paula approved: “today only”" in page.text


def test_a_request_changed_meanwhile_is_not_approved(world: World) -> None:
    rid = world.pending_approval()
    paula = world.client("CONTOSO_APPROVER")
    fields = _form(paula, f"/requests/{rid}/approve")
    requests.decide_request(world.app, world.principal("CONTOSO_TENANT_ADMIN"), rid, approve=False)
    answer = paula.post(f"/requests/{rid}/approve", data=fields)
    assert answer.status_code == 409
    assert "This has changed" in answer.text and "Nothing was changed" in answer.text
    assert world.state(rid) is State.DENIED


def test_a_form_without_its_csrf_token_changes_nothing(world: World) -> None:
    rid = world.pending_approval()
    paula = world.client("CONTOSO_APPROVER")
    fields = _form(paula, f"/requests/{rid}/approve")
    answer = paula.post(f"/requests/{rid}/approve", data={"version": fields["version"]})
    assert answer.status_code == 403
    assert world.state(rid) is State.PENDING_APPROVAL


# --------------------------------------------------------------------------- deny


def test_deny_needs_a_reason(world: World) -> None:
    rid = world.pending_approval()
    paula = world.client("CONTOSO_APPROVER")
    fields = _form(paula, f"/requests/{rid}/deny")
    blank = paula.post(f"/requests/{rid}/deny", data={**fields, "comment": "  "})
    assert blank.status_code == 422
    assert "Say why you deny it; the engineer reads this" in blank.text
    assert 'aria-invalid="true"' in blank.text
    assert world.state(rid) is State.PENDING_APPROVAL
    done = paula.post(
        f"/requests/{rid}/deny", data={**fields, "comment": "not today"}, follow_redirects=False
    )
    assert done.status_code == 303
    assert world.state(rid) is State.DENIED


# --------------------------------------------------------------------------- who sees what


def test_a_foreign_request_is_exactly_a_missing_one(world: World) -> None:
    rid = world.pending_approval()
    fred = world.client("FABRIKAM_APPROVER")
    foreign = fred.get(f"/requests/{rid}")
    made_up = fred.get("/requests/req_" + "0" * 26)
    assert foreign.status_code == made_up.status_code == 404
    assert _main(foreign.text) == _main(made_up.text)
    assert rid not in fred.get("/requests").text
    assert fred.get(f"/requests/{rid}/approve").status_code == 404


def _main(html: str) -> str:
    return html[html.index("<main") : html.index("</main>")]


def test_other_words_after_requests_are_left_to_other_pages(world: World) -> None:
    """``/requests/new`` is not taken for a request id (another page module serves it)."""
    route_paths = {getattr(r, "path", "") for r in pages_requests.router.routes}
    assert "/requests/{request_id:request_id}" in route_paths
    assert pages_requests._RequestId.regex == "req_[^/]+"
    assert not re.fullmatch(pages_requests._RequestId.regex, "new")


def test_people_see_actions_by_role_and_state(world: World) -> None:
    rid = world.pending_approval()
    assert "/approve" in world.client("CONTOSO_APPROVER").get(f"/requests/{rid}").text
    audrey = world.client("CONTOSO_AUDITOR").get(f"/requests/{rid}").text
    assert "/approve" not in audrey and "What you can do" not in audrey
    erin = world.client("ENGINEER").get(f"/requests/{rid}").text
    assert f"/requests/{rid}/cancel" in erin and "/approve" not in erin
    assert world.client("CONTOSO_AUDITOR").get(f"/requests/{rid}/approve").status_code == 403


def test_an_expired_request_reads_expired_and_offers_no_approval(world: World) -> None:
    rid = world.pending_approval()
    world.clock.advance(timedelta(hours=13))
    paula = world.client("CONTOSO_APPROVER")
    page = paula.get(f"/requests/{rid}")
    assert 'data-state="expired"' in page.text
    assert f"/requests/{rid}/approve" not in page.text
    assert "Nobody decided before the deadline" in page.text
    assert paula.get(f"/requests/{rid}/approve").status_code == 409
    assert rid not in paula.get("/approvals").text


# --------------------------------------------------------------------------- review


def test_the_manager_forwards_or_rejects_with_a_reason(world: World) -> None:
    first, second = world.submit(), world.submit()
    mark = world.client("MANAGER")
    fields = _form(mark, f"/requests/{first}")
    done = mark.post(
        f"/requests/{first}/review",
        data={**fields, "decision": "forward", "comment": "justified"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert world.state(first) is State.PENDING_APPROVAL
    fields = _form(mark, f"/requests/{second}")
    blank = mark.post(f"/requests/{second}/review", data={**fields, "decision": "reject"})
    assert blank.status_code == 422 and "Say why you reject it" in blank.text
    assert world.state(second) is State.PENDING_REVIEW
    mark.post(f"/requests/{second}/review", data={**fields, "decision": "reject", "comment": "no"})
    assert world.state(second) is State.REJECTED


# --------------------------------------------------------------------------- end and token


def test_revoke_ends_access(world: World) -> None:
    rid = world.approved()
    ines = world.client("CONTOSO_TENANT_ADMIN")
    assert "loses access at once" in ines.get(f"/requests/{rid}/revoke").text
    fields = _form(ines, f"/requests/{rid}/revoke")
    ines.post(f"/requests/{rid}/revoke", data=fields)
    assert world.state(rid) is State.REVOKED
    assert "Nobody at Acme Cloud can reach your content right now." in ines.get("/access").text


def test_the_token_is_shown_once_and_never_cached(world: World) -> None:
    rid = world.approved()
    erin = world.client("ENGINEER")
    fields = _form(erin, f"/requests/{rid}")
    answer = erin.post(f"/requests/{rid}/token", data={"csrf_token": fields["csrf_token"]})
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert re.search(
        r"<pre data-testid=\"access-token\">ey[\w-]+\.[\w-]+\.[\w-]+</pre>", answer.text
    )
    again = erin.get(f"/requests/{rid}/token", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == f"/requests/{rid}"


def test_hostile_text_is_escaped(world: World) -> None:
    rid = world.pending_approval(
        justification="<script>alert(1)</script> <img src=x onerror=alert(1)>"
    )
    for path in (f"/requests/{rid}", "/approvals", f"/requests/{rid}/approve"):
        html = world.client("CONTOSO_APPROVER").get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --------------------------------------------------------------------------- lists


def test_the_list_pages_on_and_keeps_its_filter(world: World) -> None:
    made = {world.submit() for _ in range(pages_requests.PAGE_SIZE + 2)}
    audrey = world.client("CONTOSO_AUDITOR")
    first = audrey.get("/requests?state=pending_review")
    assert first.status_code == 200
    found = set(re.findall(r'data-request="(req_\w+)"', first.text))
    assert len(found) == pages_requests.PAGE_SIZE
    nxt = re.search(r'href="(/requests\?state=pending_review&amp;cursor=[^"]+)"', first.text)
    assert nxt, "no link to the next page"
    second = audrey.get(nxt.group(1).replace("&amp;", "&"))
    rest = set(re.findall(r'data-request="(req_\w+)"', second.text))
    assert found | rest == made and not found & rest
    assert 'href="/requests?state=pending_review"' in second.text  # back to the first page


def test_an_unknown_filter_is_a_field_error(world: World) -> None:
    answer = world.client("CONTOSO_AUDITOR").get("/requests?state=sideways")
    assert answer.status_code == 422
    assert "Choose one of the states in the list" in answer.text


def test_a_long_history_points_to_the_audit_log(world: World) -> None:
    rid = world.approved()
    erin = world.principal("ENGINEER")
    for _ in range(requests.HISTORY_LIMIT):
        access.issue_token(world.app, erin, rid)
    page = world.client("CONTOSO_AUDITOR").get(f"/requests/{rid}")
    assert page.status_code == 200
    assert page.text.count("got an access token") <= requests.HISTORY_LIMIT
    assert f'href="/audit?request={rid}"' in page.text
    assert (
        "This shows the first records only."
        in world.client("CONTOSO_APPROVER").get(f"/requests/{rid}").text
    )
