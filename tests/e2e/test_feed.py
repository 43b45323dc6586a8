"""The grant feed against a real server: a resource service's table follows every grant and
every ending, resumes after a disconnect without losing anything, and fails closed when silent."""

from __future__ import annotations

import threading
from collections.abc import Callable

from lockbox.domain.roles import Principal
from lockbox.sdk.feed import GrantFeed
from lockbox.service import cases, requests, resource_services, users
from tests.e2e.conftest import Env, MailStore
from tests.e2e.test_mailstore import ALICE_PATH, approve, reason, submit, token_for


def wait_for(condition: Callable[[], bool], feed: GrantFeed, timeout: float = 10.0) -> bool:
    """Block until ``condition`` holds after a feed event (no sleeping for time)."""
    changed = threading.Event()
    feed.on_event(lambda _kind, _data: changed.set())
    while not condition():
        if not changed.wait(timeout):
            return condition()
        changed.clear()
    return True


def follower(env: Env) -> GrantFeed:
    feed = GrantFeed(env.url, env.service_token, stale_after=5.0).start()
    assert feed.wait_ready(20)
    return feed


def test_grants_appear_and_disappear_for_every_ending(env: Env) -> None:
    feed = follower(env)
    try:
        ended: dict[str, str] = {}
        feed.on_event(
            lambda kind, data: (
                ended.update({data["request_id"]: data["reason"]}) if kind == "end" else None
            )
        )

        def granted() -> str:
            req = approve(env, submit(env))
            assert wait_for(lambda: req.id in feed.table._by_request, feed), "grant not seen"
            grant = feed.table._by_request[req.id]
            assert grant.access_deadline == req.access_deadline
            assert grant.tenant == "contoso" and grant.resources == req.resources
            return req.id

        closed = granted()
        requests.close_request(env.lockbox, env.engineer, closed)
        revoked = granted()
        requests.revoke_request(env.lockbox, env.contoso_approver, revoked)
        case_gone = granted()
        case_id = requests.get_request(env.lockbox, env.engineer, case_gone).request.case_id
        cases.close_case(env.lockbox, env.engineer, case_id)
        for rid, why in ((closed, "closed"), (revoked, "revoked"), (case_gone, "closed")):
            assert wait_for(lambda rid=rid: rid in ended, feed), rid
            assert ended[rid] == why
            assert rid not in feed.table._by_request
        # A deactivated engineer's grants end at once, and come back with the person.
        kept = granted()
        admin = Principal.operator()
        users.set_active(env.lockbox, admin, env.engineer.id, False)
        assert wait_for(lambda: kept not in feed.table._by_request, feed)
        assert ended[kept] == "user_inactive"
        users.set_active(env.lockbox, admin, env.engineer.id, True)
        assert wait_for(lambda: kept in feed.table._by_request, feed)
        # The window ending needs no message: the grant's own deadline decides, locally.
        grant = feed.table._by_request[kept]
        assert grant.access_deadline is not None
        late = feed.table.decide(
            engineer=env.engineer.id,
            tenant="contoso",
            resource=grant.resources[0],
            action="read",
            now=grant.access_deadline,
            request_id=kept,
        )
        assert (late.allowed, late.reason) == (False, "expired")
    finally:
        feed.stop()


def test_resume_from_a_cursor_after_a_disconnect_loses_nothing(env: Env) -> None:
    feed = follower(env)
    first = approve(env, submit(env))
    assert wait_for(lambda: first.id in feed.table._by_request, feed)
    feed.stop()
    cursor = feed.cursor
    # While nobody follows: one grant ends, another starts.
    requests.close_request(env.lockbox, env.engineer, first.id)
    second = approve(env, submit(env))
    resumed = GrantFeed(env.url, env.service_token, table=feed.table, stale_after=5.0)
    resumed.cursor = cursor
    resumed.start()
    try:
        assert wait_for(lambda: second.id in resumed.table._by_request, resumed)
        assert first.id not in resumed.table._by_request
        assert resumed.connects == 1 and resumed.table._ended[first.id] == "closed"
    finally:
        resumed.stop()


def test_a_service_sees_only_what_it_serves(env: Env) -> None:
    narrow = users.create_user(
        env.lockbox, Principal.operator(), email="files@provider.test", roles=["resource_service"]
    )
    from lockbox.service import tokens

    secret = tokens.create_token(env.lockbox, Principal.operator(), user=narrow.id, name="f").secret
    resource_services.register(
        env.lockbox, Principal.operator(), narrow.id, tenants=["fabrikam"], prefixes=["exchange/"]
    )
    feed = GrantFeed(env.url, secret, stale_after=5.0).start()
    try:
        assert feed.wait_ready(20)
        contoso = approve(env, submit(env))
        case = cases.open_case(env.lockbox, env.engineer, tenant="fabrikam", title="F")
        fab = requests.submit_request(
            env.lockbox,
            env.engineer,
            tenant="fabrikam",
            case_id=case.id,
            resources=["exchange/mailbox/alice@fabrikam.com", "sharepoint/site/x"],
            access_level="read",
            justification="look",
        )
        requests.review_request(env.lockbox, env.manager, fab.id, approve=True)
        requests.decide_request(env.lockbox, env.fabrikam_approver, fab.id, approve=True)
        assert wait_for(lambda: fab.id in feed.table._by_request, feed)
        assert contoso.id not in feed.table._by_request
        assert feed.table._by_request[fab.id].resources == ("exchange/mailbox/alice@fabrikam.com",)
    finally:
        feed.stop()


def test_a_silent_feed_fails_closed_at_the_mail_store(env: Env, feed_store: MailStore) -> None:
    req = approve(env, submit(env))
    token = token_for(env, req.id)
    feed: GrantFeed = feed_store.app.state.feed
    assert wait_for(lambda: req.id in feed.table._by_request, feed)
    assert feed_store.get(ALICE_PATH, token).status_code == 200
    # Closing reaches the store through the feed: refused at once, no online call.
    requests.close_request(env.lockbox, env.engineer, req.id)
    assert wait_for(lambda: req.id not in feed.table._by_request, feed)
    closed = feed_store.get(ALICE_PATH, token)
    assert (closed.status_code, reason(closed)) == (403, "closed")
    # The feed goes quiet (its last message is older than stale_after): fail closed.
    again = approve(env, submit(env))
    token = token_for(env, again.id)
    assert wait_for(lambda: again.id in feed.table._by_request, feed)
    # (A zero grace: every message is already too old, whatever arrives meanwhile.)
    grace = feed.stale_after
    feed.stale_after = 0.0
    try:
        silent = feed_store.get(ALICE_PATH, token)
        assert (silent.status_code, reason(silent)) == (503, "feed_stale")
        assert silent.headers["retry-after"]
    finally:
        feed.stale_after = grace
    assert feed_store.get(ALICE_PATH, token).status_code == 200
