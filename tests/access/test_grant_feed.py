"""The grant stream on both databases: written with the change, in commit order, scoped."""

from __future__ import annotations

from datetime import timedelta

from lockbox.domain.roles import Principal
from lockbox.service import grant_feed, requests, resource_services, sweeper, users
from lockbox.service.resource_services import scope_of
from tests.access.helpers import ALICE, approved, submit
from tests.conftest import World


def events(world: World, after: int = 0) -> list[tuple[str, str, str]]:
    with world.app.read() as tx:
        scope = scope_of(tx, world.service)
    return [
        (e.kind, e.reason, e.request_id) for e in grant_feed.changes(world.app, scope, after).events
    ]


def test_every_start_and_end_is_in_the_stream_in_order(world: World) -> None:
    a = approved(world)
    b = approved(world)
    c = approved(world)
    requests.close_request(world.app, world.engineer, a.id)
    requests.revoke_request(world.app, world.contoso_approver, b.id)
    assert c.access_deadline is not None
    world.clock.set(c.access_deadline)
    assert sweeper.sweep_deadlines(world.app).expired == 1
    assert events(world) == [
        ("grant", "approved", a.id),
        ("grant", "approved", b.id),
        ("grant", "approved", c.id),
        ("end", "closed", a.id),
        ("end", "revoked", b.id),
        ("end", "expired", c.id),
    ]


def test_losing_the_engineer_role_ends_grants_and_getting_it_back_restores_them(
    world: World,
) -> None:
    req = approved(world)
    head = grant_feed.head(world.app)
    users.set_roles(world.app, world.provider_admin, world.engineer.id, ["manager"])
    users.set_roles(world.app, world.provider_admin, world.engineer.id, ["engineer"])
    users.set_roles(world.app, world.provider_admin, world.engineer.id, ["engineer"])  # no change
    assert events(world, head) == [
        ("end", "user_inactive", req.id),
        ("grant", "user_active", req.id),
    ]


def test_the_snapshot_holds_what_is_active_now_for_this_service(world: World) -> None:
    live = approved(world)
    ended = approved(world)
    requests.close_request(world.app, world.engineer, ended.id)
    submit(world)  # pending: not a grant
    fabrikam = approved(world, tenant="fabrikam", resources=["exchange/mailbox/x@fabrikam.com"])
    resource_services.register(
        world.app,
        world.provider_admin,
        world.service.id,
        tenants=["contoso"],
        prefixes=["exchange/"],
    )
    with world.app.read() as tx:
        scope = scope_of(tx, world.service)
    snap = grant_feed.snapshot(world.app, scope)
    assert [e.request_id for e in snap.events] == [live.id]
    assert snap.cursor == grant_feed.head(world.app)
    assert fabrikam.id not in [e.request_id for e in grant_feed.changes(world.app, scope, 0).events]
    assert snap.events[0].resources == (ALICE,)
    # Past its deadline a grant is not in a snapshot, whether or not the sweeper ran.
    assert live.access_deadline is not None
    world.clock.set(live.access_deadline + timedelta(seconds=1))
    assert grant_feed.snapshot(world.app, scope).events == []


def test_only_resource_services_follow_the_feed(world: World) -> None:
    import pytest

    from lockbox.domain.errors import PermissionDenied

    for who in (world.engineer, world.contoso_admin, world.provider_admin, Principal.operator()):
        with pytest.raises(PermissionDenied):
            grant_feed.scope_for(world.app, who)
