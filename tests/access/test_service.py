"""Enforcement use cases on both databases, with a manual clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from lockbox.domain.errors import InvalidTransition, NotFound, PermissionDenied, ValidationError
from lockbox.sdk.verify import TokenError, TokenVerifier
from lockbox.service import access, access_reports, audit, requests, tenants, users
from lockbox.service.access import TokenConfig
from lockbox.store import tables as t
from tests.access.helpers import ALICE, BOB, approved, submit
from tests.conftest import World

AUDIENCE = "lockbox-resource"  # the audience the World registers for its mail store
CFG = TokenConfig(issuer="lockbox", audience=AUDIENCE, ttl=timedelta(minutes=5))


def verifier(world: World, **kw: Any) -> TokenVerifier:
    return TokenVerifier(
        audience=AUDIENCE,
        fetch_jwks=lambda: access.jwks(world.app),
        clock=world.clock.now,
        **kw,
    )


def check(world: World, resource: str = ALICE, action: str = "read", **kw: Any) -> Any:
    args = {"engineer": world.engineer.id, "tenant": "contoso", "resource": resource}
    args.update(kw)
    return access.check(world.app, world.service, action=action, **args)


def ops(world: World, tenant: str = "contoso") -> list[str]:
    auditor = world.contoso_auditor if tenant == "contoso" else world.fabrikam_auditor
    return [r.operation for r in audit.query(world.app, auditor, tenant)[0]]


# -- tokens ----------------------------------------------------------------------------


def test_token_for_approved_request_carries_the_grant(world: World) -> None:
    req = approved(world)
    issued = access.issue_token(world.app, world.engineer, req.id, config=CFG)
    claims = verifier(world).verify(issued.token)
    assert claims.engineer == world.engineer.id
    assert claims.tenant_id == world.contoso and claims.tenant == "contoso"
    assert claims.request_id == req.id
    assert claims.resources == (ALICE,)
    assert claims.access_level == "read"
    assert claims.expires_at == world.clock.now() + timedelta(minutes=5)
    assert claims.denies(ALICE, "read") is None
    assert claims.denies(ALICE, "write") == "level_too_low"
    assert claims.denies(BOB, "read") == "out_of_scope"
    assert "access.token_issued" in ops(world)


def test_token_never_outlives_the_access_deadline(world: World) -> None:
    req = approved(world)
    assert req.access_deadline is not None
    world.clock.set(req.access_deadline - timedelta(minutes=1))
    issued = access.issue_token(world.app, world.engineer, req.id, config=CFG)
    assert issued.expires_at == req.access_deadline
    world.clock.set(req.access_deadline)
    with pytest.raises(InvalidTransition):
        access.issue_token(world.app, world.engineer, req.id, config=CFG)


def test_token_only_for_the_requester_and_only_while_approved(world: World) -> None:
    pending = submit(world)
    with pytest.raises(InvalidTransition):
        access.issue_token(world.app, world.engineer, pending.id, config=CFG)
    req = approved(world)
    with pytest.raises(NotFound):  # another engineer cannot even see it
        access.issue_token(world.app, world.engineer2, req.id, config=CFG)
    with pytest.raises(PermissionDenied):  # the manager sees it but holds no access
        access.issue_token(world.app, world.manager, req.id, config=CFG)
    with pytest.raises(NotFound):
        access.issue_token(world.app, world.fabrikam_admin, req.id, config=CFG)
    with pytest.raises(NotFound):
        access.issue_token(world.app, world.engineer, "req_missing", config=CFG)
    requests.close_request(world.app, world.engineer, req.id)
    with pytest.raises(InvalidTransition):
        access.issue_token(world.app, world.engineer, req.id, config=CFG)


def test_verifier_rejects_expired_wrong_audience_and_tampered(world: World) -> None:
    req = approved(world)
    token = access.issue_token(world.app, world.engineer, req.id, config=CFG).token
    v = verifier(world, leeway=timedelta(seconds=30))
    v.verify(token)
    other = verifier(world)
    other.audience = "filestore"
    with pytest.raises(TokenError) as err:
        other.verify(token)
    assert err.value.reason == "wrong_audience"
    header, payload, sig = token.split(".")
    tampered = f"{header}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{sig}"
    with pytest.raises(TokenError) as err:
        v.verify(tampered)
    assert err.value.reason in ("bad_signature", "malformed")
    world.clock.advance(timedelta(minutes=5) - timedelta(microseconds=1))
    v.verify(token)
    world.clock.advance(timedelta(microseconds=1))  # expiry is strict: no leeway
    with pytest.raises(TokenError) as err:
        v.verify(token)
    assert err.value.reason == "expired"


# -- keys ------------------------------------------------------------------------------


def test_rotation_keeps_old_key_published_for_one_token_lifetime(world: World) -> None:
    req = approved(world)
    before = access.issue_token(world.app, world.engineer, req.id, config=CFG)
    rotated = access.rotate_keys(world.app, world.provider_admin, CFG)
    after = access.issue_token(world.app, world.engineer, req.id, config=CFG)
    assert before.kid != after.kid == rotated["kid"]
    v = verifier(world, min_refresh_interval=0)
    assert v.verify(before.token).kid == before.kid
    assert v.verify(after.token).kid == after.kid
    kids = {k["kid"]: k["status"] for k in access.list_keys(world.app, world.provider_admin)}
    assert kids == {before.kid: "published", after.kid: "active"}
    world.clock.advance(timedelta(minutes=5))  # publish_until = rotation + ttl
    published = {k["kid"] for k in access.jwks(world.app)["keys"]}
    assert published == {after.kid}


def test_retiring_a_key_unpublishes_it_at_once(world: World) -> None:
    req = approved(world)
    old = access.issue_token(world.app, world.engineer, req.id, config=CFG)
    with pytest.raises(InvalidTransition):
        access.retire_key(world.app, world.provider_admin, old.kid)
    access.rotate_keys(world.app, world.provider_admin, CFG)
    new = access.issue_token(world.app, world.engineer, req.id, config=CFG)
    access.retire_key(world.app, world.provider_admin, old.kid)
    v = verifier(world)
    v.verify(new.token)
    with pytest.raises(TokenError) as err:
        v.verify(old.token)
    assert err.value.reason == "unknown_key"


def test_only_provider_admins_manage_keys(world: World) -> None:
    for who in (world.engineer, world.service, world.contoso_admin):
        with pytest.raises(PermissionDenied):
            access.rotate_keys(world.app, who, CFG)
        with pytest.raises(PermissionDenied):
            access.list_keys(world.app, who)


def test_jwks_creates_the_first_key_lazily_and_holds_no_private_parts(world: World) -> None:
    doc = access.jwks(world.app)
    assert len(doc["keys"]) == 1
    (jwk,) = doc["keys"]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk["alg"] == "EdDSA"
    assert "d" not in jwk
    assert access.jwks(world.app) == doc


# -- the check -------------------------------------------------------------------------


def test_check_reasons_follow_the_lifecycle(world: World) -> None:
    assert check(world).reason == "no_request"
    req = submit(world)
    answer = check(world)
    assert (answer.allowed, answer.reason, answer.request.id) == (False, "not_approved", req.id)
    req = requests.review_request(world.app, world.manager, req.id, approve=True)
    assert check(world).reason == "not_approved"
    req = requests.decide_request(world.app, world.contoso_approver, req.id, approve=True)
    answer = check(world)
    assert (answer.allowed, answer.reason) == (True, "approved")
    assert answer.as_dict()["access_deadline"] is not None
    assert check(world, BOB).reason == "out_of_scope"
    assert check(world, action="write").reason == "level_too_low"
    assert check(world, tenant="fabrikam").reason == "no_request"
    assert check(world, engineer=world.engineer2.id).reason == "no_request"
    assert check(world, engineer="erin@provider.test").allowed  # e-mail works too
    assert check(world, tenant=world.contoso).allowed  # and the tenant id
    assert req.access_deadline is not None
    world.clock.set(req.access_deadline - timedelta(microseconds=1))
    assert check(world).allowed
    world.clock.set(req.access_deadline)  # the deadline instant is already past
    assert check(world).reason == "expired"


def test_check_after_close_and_revoke(world: World) -> None:
    req = approved(world)
    requests.close_request(world.app, world.engineer, req.id)
    assert check(world).reason == "closed"
    world.clock.advance(timedelta(minutes=1))  # "newest" must not be a tie of equal instants
    req2 = approved(world)
    assert check(world).allowed
    requests.revoke_request(world.app, world.contoso_approver, req2.id)
    answer = check(world)
    assert (answer.reason, answer.request.id) == ("revoked", req2.id)


def test_check_picks_an_allowing_request_among_several(world: World) -> None:
    approved(world, resources=[BOB])
    approved(world, resources=["exchange/mailbox/*"], level="read_write")
    submit(world)  # newest, pending, names alice
    assert check(world, ALICE, "write").allowed
    assert check(world, BOB, "write").allowed


def test_check_with_lockbox_off(world: World) -> None:
    tenants.change_policy(world.app, world.contoso_admin, "contoso", {"enabled": False})
    req = submit(world)
    requests.review_request(world.app, world.manager, req.id, approve=True)
    answer = check(world)
    assert (answer.allowed, answer.reason) == (True, "lockbox_off")


def test_check_denies_a_deactivated_engineer(world: World) -> None:
    approved(world)
    users.set_active(world.app, world.provider_admin, world.engineer.id, False)
    assert check(world).reason == "user_inactive"


def test_denied_checks_are_audited_in_the_tenant_chain(world: World) -> None:
    approved(world)
    check(world)  # allowed: not audited
    check(world, BOB)
    check(world, tenant="fabrikam")
    contoso = list(audit.query(world.app, world.contoso_auditor, "contoso")[0])
    denied = [r for r in contoso if r.operation == "access.check_denied"]
    assert [(r.details["resource"], r.details["reason"]) for r in denied] == [(BOB, "out_of_scope")]
    assert ops(world, "fabrikam").count("access.check_denied") == 1


def test_only_resource_services_check_and_report(world: World) -> None:
    req = approved(world)
    for who in (world.engineer, world.manager, world.contoso_admin, world.provider_admin):
        with pytest.raises(PermissionDenied):
            access.check(
                world.app,
                who,
                engineer=world.engineer.id,
                tenant="contoso",
                resource=ALICE,
                action="read",
            )
        with pytest.raises(PermissionDenied):
            access_reports.report_events(
                world.app, who, [{"request_id": req.id, "action": "read", "resource": ALICE}]
            )


def test_check_validates_input(world: World) -> None:
    with pytest.raises(ValidationError) as err:
        check(world, action="delete")
    assert err.value.field == "action"
    with pytest.raises(ValidationError) as err:
        check(world, "exchange/mailbox/*")
    assert err.value.field == "resource"


# -- reports ---------------------------------------------------------------------------


def test_reports_become_audit_events_and_first_use_notifies_once(world: World) -> None:
    req = approved(world)
    event = {"request_id": req.id, "action": "read", "resource": ALICE, "detail": "listed inbox"}
    first = access_reports.report_events(world.app, world.service, [event, event]).recorded
    assert [r.first_use for r in first] == [True, False]
    assert all(r.flag is None for r in first)
    records = list(audit.query(world.app, world.contoso_auditor, "contoso")[0])
    reads = [r for r in records if r.operation == "access.read"]
    assert len(reads) == 2
    assert reads[0].request_id == req.id
    assert reads[0].actor_id == world.service.id
    assert reads[0].details["detail"] == "listed inbox"
    assert reads[0].details["engineer"] == world.engineer.id
    with world.app.read() as tx:
        first_use = tx.conn.execute(
            select(t.outbox.c.recipient).where(t.outbox.c.topic == "first_use")
        ).all()
    assert [r.recipient for r in first_use] == ["paula@contoso.test"]
    access_reports.report_events(world.app, world.service, [event])
    with world.app.read() as tx:
        count = tx.conn.execute(select(t.outbox.c.id).where(t.outbox.c.topic == "first_use")).all()
    assert len(count) == 1
    assert all(r.ok for r in audit.verify(world.app, world.provider_admin))
    assert "access.read" not in ops(world, "fabrikam")


def test_reports_for_inactive_requests_are_recorded_and_flagged(world: World) -> None:
    req = approved(world)
    requests.close_request(world.app, world.engineer, req.id)
    recorded = access_reports.report_events(
        world.app,
        world.service,
        [
            {"request_id": req.id, "action": "write", "resource": ALICE},
        ],
    ).recorded
    assert recorded[0].flag == "request_not_active"
    assert not recorded[0].first_use
    req2 = approved(world)
    out = access_reports.report_events(
        world.app,
        world.service,
        [
            {"request_id": req2.id, "action": "read", "resource": BOB},
            {"request_id": req2.id, "action": "write", "resource": ALICE},
            {
                "request_id": req2.id,
                "action": "read",
                "resource": ALICE,
                "engineer": "eddie@provider.test",
            },
        ],
    ).recorded
    assert [r.flag for r in out] == ["out_of_scope", "level_too_low", "not_requester"]
    writes = [
        r
        for r in audit.query(world.app, world.contoso_auditor, "contoso")[0]
        if r.operation == "access.write"
    ]
    assert writes[0].details["flag"] == "request_not_active"
    assert writes[0].details["request_state"] == "closed"


def test_a_bad_event_is_rejected_alone_and_the_rest_recorded(world: World) -> None:
    req = approved(world)
    before = len(ops(world))
    result = access_reports.report_events(
        world.app,
        world.service,
        [
            {"request_id": req.id, "action": "read", "resource": ALICE},
            {"request_id": "req_nope", "action": "read", "resource": ALICE},
            {"request_id": req.id, "action": "read", "resource": BOB, "detail": "kept"},
        ],
    )
    assert [r.index for r in result.recorded] == [0, 2]
    assert [(r.index, r.field, r.message) for r in result.rejected] == [
        (1, "events[1].request_id", "no such access request")
    ]
    assert len(ops(world)) == before + 2
    for bad, field in (
        ({"request_id": req.id, "action": "erase", "resource": ALICE}, "events[0].action"),
        ({"request_id": req.id, "action": "read", "resource": "a/*"}, "events[0].resource"),
        (
            {"request_id": req.id, "action": "read", "resource": ALICE, "outcome": "meh"},
            "events[0].outcome",
        ),
        (
            {
                "request_id": req.id,
                "action": "read",
                "resource": ALICE,
                "occurred_at": "2026-01-05T09:00:00",
            },
            "events[0].occurred_at",
        ),
        (
            {
                "request_id": req.id,
                "action": "read",
                "resource": ALICE,
                "occurred_at": "0001-01-01T00:00:00Z",
            },
            "events[0].occurred_at",
        ),
        (
            {
                "request_id": req.id,
                "action": "read",
                "resource": ALICE,
                "occurred_at": "9999-12-31T23:59:59Z",
            },
            "events[0].occurred_at",
        ),
        ({"action": "read", "resource": ALICE}, "events[0].tenant"),
    ):
        result = access_reports.report_events(world.app, world.service, [bad])
        assert result.recorded == []
        assert [r.field for r in result.rejected] == [field], bad
    assert len(ops(world)) == before + 2
    with pytest.raises(ValidationError):
        access_reports.report_events(world.app, world.service, [])
