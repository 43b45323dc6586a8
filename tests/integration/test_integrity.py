"""Integrity rules found by review and attack, on both databases.

* one person, one approval: nobody obtains a credential of another person (token,
  password, reset), so two required approvals are two people, and each decision
  records the credential it was made with;
* a tenant's admins add people only at the tenant's e-mail domains, and learn nothing
  about addresses of other tenants;
* a resource service sees only the tenants and resources it is registered for, through
  the check, the token audience and event reports.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lockbox.domain.errors import (
    AlreadyDecided,
    AlreadyExists,
    AuthenticationFailed,
    PermissionDenied,
    ValidationError,
)
from lockbox.domain.lifecycle import State
from lockbox.domain.roles import Principal
from lockbox.service import (
    access,
    access_reports,
    audit,
    passwords,
    requests,
    resource_services,
    tenants,
    tokens,
    users,
)
from lockbox.store import tables as t
from tests.access.helpers import ALICE, approved, submit
from tests.conftest import World
from tests.integration.helpers import chains_ok, pending_approval, set_policy

NEW_PASSWORD = "a passphrase only I know"


def ops(world: World, tenant: str = "contoso") -> list[str]:
    auditor = world.contoso_auditor if tenant == "contoso" else world.fabrikam_auditor
    return [r.operation for r in audit.query(world.app, auditor, tenant, limit=1000)[0]]


def reset_code(world: World, email: str) -> str:
    """The code as the user reads it in the e-mail (the newest one queued to them)."""
    with world.app.read() as tx:
        rows = tx.conn.execute(
            select(t.outbox.c.payload)
            .where(t.outbox.c.topic == "password_reset", t.outbox.c.recipient == email)
            .order_by(t.outbox.c.created_at.desc())
        ).all()
    return str(rows[0][0]["secret_code"])


# -- one person, one approval ----------------------------------------------------------------


def test_a_tenant_admin_cannot_obtain_another_persons_credential_by_any_route(
    world: World,
) -> None:
    admin, paula = world.contoso_admin, world.contoso_approver
    with pytest.raises(PermissionDenied, match="created by their owner"):
        tokens.create_token(world.app, admin, user=paula.id, name="as paula")
    with pytest.raises(PermissionDenied):
        passwords.set_password(world.app, admin, paula.id, "a password the admin knows")
    with pytest.raises(PermissionDenied):
        users.create_user(
            world.app,
            admin,
            email="mallory@contoso.test",
            roles=["approver"],
            tenant="contoso",
            password="a password the admin knows",
        )
    # A reset tells the admin who and until when, never the code: it goes to Paula alone.
    started = passwords.start_reset(world.app, admin, paula.id)
    assert not hasattr(started, "code")
    with world.app.read() as tx:
        queued = tx.conn.execute(
            select(t.outbox.c.recipient, t.outbox.c.channel).where(
                t.outbox.c.topic == "password_reset"
            )
        ).all()
    assert [(r.recipient, r.channel) for r in queued] == [("paula@contoso.test", "email")]
    # Provider staff fare no better with a customer, nor the provider admin with staff.
    for actor, target in (
        (world.provider_admin, paula.id),
        (world.provider_admin, world.engineer.id),
        (world.manager, world.engineer.id),
    ):
        with pytest.raises(PermissionDenied):
            tokens.create_token(world.app, actor, user=target, name="x")
    # The operator bootstraps a tenant's first credentials; that stays possible.
    tokens.create_token(world.app, Principal.operator(), user=paula.id, name="bootstrap")


def test_two_required_approvals_come_from_two_people_and_name_their_credentials(
    world: World,
) -> None:
    set_policy(world, required_approvals=2)
    req = pending_approval(world)
    admin_token = tokens.create_token(world.app, world.contoso_admin, name="admin's own")
    as_admin = tokens.authenticate(world.app, admin_token.secret)
    second_token = tokens.create_token(world.app, world.contoso_admin, name="admin's second")
    as_admin_again = tokens.authenticate(world.app, second_token.secret)
    first = requests.decide_request(world.app, as_admin, req.id, approve=True)
    assert first.state is State.PENDING_APPROVAL
    with pytest.raises(AlreadyDecided):
        requests.decide_request(world.app, as_admin_again, req.id, approve=True)
    paula_token = tokens.create_token(world.app, world.contoso_approver, name="paula's own")
    as_paula = tokens.authenticate(world.app, paula_token.secret)
    final = requests.decide_request(world.app, as_paula, req.id, approve=True)
    assert final.state is State.APPROVED
    assert {(d.actor_id, d.credential) for d in final.decisions} == {
        (world.contoso_admin.id, f"token:{admin_token.row.id}"),
        (world.contoso_approver.id, f"token:{paula_token.row.id}"),
    }
    records = audit.query(world.app, world.contoso_auditor, "contoso", request_id=req.id)[0]
    approvals = [r for r in records if r.operation == "request.approve"]
    assert [r.details["credential"] for r in approvals] == [
        f"token:{admin_token.row.id}",
        f"token:{paula_token.row.id}",
    ]


def test_a_reset_code_works_once_expires_and_is_audited(world: World) -> None:
    paula = world.contoso_approver
    passwords.start_reset(world.app, world.contoso_admin, paula.id)
    code = reset_code(world, "paula@contoso.test")
    # What people type: lower case, no dashes.
    typed = code.lower().replace("-", "")
    principal = passwords.complete_reset(world.app, "Paula@Contoso.test", typed, NEW_PASSWORD)
    assert principal.id == paula.id
    assert passwords.verify_password(world.app, "paula@contoso.test", NEW_PASSWORD).id == paula.id
    with pytest.raises(AuthenticationFailed):
        passwords.complete_reset(world.app, "paula@contoso.test", code, "another passphrase 2")
    # A fresh code expires after 30 minutes.
    passwords.start_reset(world.app, world.contoso_admin, paula.id)
    late = reset_code(world, "paula@contoso.test")
    world.clock.advance(passwords.RESET_TTL)
    with pytest.raises(AuthenticationFailed):
        passwords.complete_reset(world.app, "paula@contoso.test", late, "another passphrase 2")
    # Five wrong guesses use a code up, even if the right one comes next.
    passwords.start_reset(world.app, world.contoso_admin, paula.id)
    right = reset_code(world, "paula@contoso.test")
    for _ in range(passwords.RESET_MAX_ATTEMPTS):
        with pytest.raises(AuthenticationFailed):
            passwords.complete_reset(world.app, "paula@contoso.test", "0000-0000-0000", "x" * 12)
    with pytest.raises(AuthenticationFailed):
        passwords.complete_reset(world.app, "paula@contoso.test", right, "another passphrase 2")
    # A newer code replaces an older one.
    passwords.start_reset(world.app, world.contoso_admin, paula.id)
    older = reset_code(world, "paula@contoso.test")
    passwords.start_reset(world.app, world.contoso_admin, paula.id)
    with pytest.raises(AuthenticationFailed):
        passwords.complete_reset(world.app, "paula@contoso.test", older, "another passphrase 2")
    # A wrong address reads exactly like a wrong code.
    with pytest.raises(AuthenticationFailed) as unknown:
        passwords.complete_reset(world.app, "nobody@contoso.test", older, "another passphrase 2")
    with pytest.raises(AuthenticationFailed) as wrong:
        passwords.complete_reset(world.app, "paula@contoso.test", "0000-0000-0000", "x" * 12)
    assert str(unknown.value) == str(wrong.value)
    trail = ops(world)
    assert trail.count("user.password_reset_started") == 5
    assert trail.count("user.password_reset_done") == 1
    assert trail.count("user.password_reset_failed") >= passwords.RESET_MAX_ATTEMPTS
    assert chains_ok(world.app)


def test_changing_ones_own_password_needs_the_current_one(world: World) -> None:
    paula = world.contoso_approver
    passwords.set_password(world.app, Principal.operator(), paula.id, "the first passphrase")
    with pytest.raises(ValidationError) as err:
        passwords.change_own_password(world.app, paula, "not the passphrase", NEW_PASSWORD)
    assert err.value.field == "current_password"
    passwords.change_own_password(world.app, paula, "the first passphrase", NEW_PASSWORD)
    assert passwords.verify_password(world.app, "paula@contoso.test", NEW_PASSWORD).id == paula.id
    assert "user.password_changed" in ops(world)


# -- e-mail domains ---------------------------------------------------------------------------


def test_tenant_admins_add_people_only_at_their_domains_and_learn_nothing_else(
    world: World,
) -> None:
    admin = world.contoso_admin
    answers = []
    for address in ("fred@fabrikam.test", "nobody@fabrikam.test", "FRED@fabrikam.test"):
        with pytest.raises(ValidationError) as err:
            users.create_user(world.app, admin, email=address, roles=["approver"], tenant="contoso")
        answers.append((err.value.field, err.value.message))
    assert len(set(answers)) == 1, answers  # existing elsewhere or not: the same answer
    assert "@contoso.test" in answers[0][1]
    created = users.create_user(
        world.app, admin, email="Nina@Contoso.test", roles=["approver"], tenant="contoso"
    )
    assert created.email == "Nina@contoso.test"
    with pytest.raises(AlreadyExists):  # one's own tenant: a plain "already exists"
        users.create_user(
            world.app, admin, email="nina@CONTOSO.test", roles=["auditor"], tenant="contoso"
        )
    # Provider staff, who see every tenant, get the plain answer too.
    with pytest.raises(AlreadyExists):
        users.create_user(
            world.app,
            world.provider_admin,
            email="FRED@fabrikam.test",
            roles=["approver"],
            tenant="contoso",
        )


def test_domains_are_set_by_the_provider_and_belong_to_one_tenant(world: World) -> None:
    with pytest.raises(PermissionDenied):
        tenants.set_domains(world.app, world.contoso_admin, "contoso", ["contoso.test"])
    with pytest.raises(AlreadyExists) as err:
        tenants.set_domains(world.app, world.provider_admin, "contoso", ["fabrikam.test"])
    assert err.value.extra["field"] == "email_domains[0]"
    with pytest.raises(ValidationError):
        tenants.set_domains(world.app, world.provider_admin, "contoso", ["*.contoso.test"])
    updated = tenants.set_domains(
        world.app, world.provider_admin, "contoso", ["contoso.test", "Mail.Contoso.test"]
    )
    assert updated.email_domains == ("contoso.test", "mail.contoso.test")
    users.create_user(
        world.app,
        world.contoso_admin,
        email="ola@mail.contoso.test",
        roles=["auditor"],
        tenant="contoso",
    )
    assert "tenant.domains_changed" in ops(world)


# -- resource services see only what they serve --------------------------------------------------


@pytest.fixture
def narrow(world: World) -> Principal:
    """The World's mail store, registered for Contoso's mailboxes only."""
    resource_services.register(
        world.app,
        world.provider_admin,
        world.service.id,
        tenants=["contoso"],
        prefixes=["exchange/"],
        audience="mailstore",
    )
    return world.service


def check(world: World, service: Principal, tenant: str, resource: str) -> access.CheckResult:
    return access.check(
        world.app,
        service,
        engineer=world.engineer.id,
        tenant=tenant,
        resource=resource,
        action="read",
    )


def test_a_service_is_refused_like_a_missing_tenant_outside_its_registration(
    world: World, narrow: Principal
) -> None:
    contoso = approved(world)
    fabrikam = approved(world, tenant="fabrikam", resources=["exchange/mailbox/x@fabrikam.com"])
    assert check(world, narrow, "contoso", ALICE).allowed
    before = ops(world, "fabrikam")
    unknown = check(world, narrow, "no-such-tenant", ALICE)
    foreign = check(world, narrow, "fabrikam", "exchange/mailbox/x@fabrikam.com")
    other_prefix = check(world, narrow, "contoso", "sharepoint/site/finance")
    for answer in (foreign, other_prefix):
        assert (answer.allowed, answer.reason, answer.request) == (
            unknown.allowed,
            unknown.reason,
            unknown.request,
        )
    assert ops(world, "fabrikam") == before  # nothing about Fabrikam learnt or written
    # Events: a Fabrikam request reads exactly like a missing one.
    result = access_reports.report_events(
        world.app,
        narrow,
        [
            {
                "request_id": fabrikam.id,
                "action": "read",
                "resource": "exchange/mailbox/x@fabrikam.com",
            },
            {"request_id": "req_" + "z" * 26, "action": "read", "resource": ALICE},
            {"request_id": contoso.id, "action": "read", "resource": "sharepoint/site/finance"},
            {"tenant": "fabrikam", "action": "read", "resource": ALICE, "outcome": "denied"},
            {"request_id": contoso.id, "action": "read", "resource": ALICE},
        ],
    )
    assert [r.index for r in result.recorded] == [4]
    rejected = {r.index: r.message for r in result.rejected}
    assert rejected[0] == rejected[1] == "no such access request"
    assert rejected[2] == "is not a resource this service serves"
    assert rejected[3] == "no such tenant"


def test_tokens_name_the_service_that_verifies_them(world: World, narrow: Principal) -> None:
    req = approved(world, resources=[ALICE, "sharepoint/site/finance"])
    issued = access.issue_token(world.app, world.engineer, req.id, audience="mailstore")
    assert issued.claims["aud"] == "mailstore"
    assert issued.claims["resources"] == [ALICE]  # only what the mail store holds
    for audience in ("lockbox-resource", "filestore"):
        with pytest.raises(ValidationError) as err:
            access.issue_token(world.app, world.engineer, req.id, audience=audience)
        assert err.value.field == "audience"
    fabrikam = approved(world, tenant="fabrikam", resources=["exchange/mailbox/x@fabrikam.com"])
    with pytest.raises(ValidationError):
        access.issue_token(world.app, world.engineer, fabrikam.id, audience="mailstore")
    other = submit(world, resources=["sharepoint/site/finance"])
    requests.review_request(world.app, world.manager, other.id, approve=True)
    requests.decide_request(world.app, world.contoso_approver, other.id, approve=True)
    with pytest.raises(ValidationError, match="holds none"):
        access.issue_token(world.app, world.engineer, other.id, audience="mailstore")


def test_an_unregistered_service_serves_nothing(world: World) -> None:
    fresh = world.user("filestore@provider.test", ["resource_service"])
    approved(world)
    assert check(world, fresh, "contoso", ALICE).reason == "no_request"
    registration = resource_services.get_registration(world.app, world.provider_admin, fresh.id)
    assert registration.scope.prefixes == ()
    with pytest.raises(ValidationError):  # only resource services can be registered
        resource_services.register(
            world.app, world.provider_admin, world.engineer.id, tenants="*", prefixes=["*"]
        )
    with pytest.raises(PermissionDenied):
        resource_services.register(world.app, world.manager, fresh.id, tenants="*", prefixes=["*"])
    with pytest.raises(AlreadyExists):  # one audience, one service
        resource_services.register(
            world.app,
            world.provider_admin,
            fresh.id,
            tenants="*",
            prefixes=["*"],
            audience="lockbox-resource",
        )


def test_a_retired_key_denies_an_online_check_at_once(world: World) -> None:
    req = approved(world)
    issued = access.issue_token(world.app, world.engineer, req.id)
    answer = access.check(
        world.app,
        world.service,
        engineer=world.engineer.id,
        tenant="contoso",
        resource=ALICE,
        action="read",
        request_id=req.id,
        kid=issued.kid,
    )
    assert answer.allowed
    access.rotate_keys(world.app, world.provider_admin)
    access.retire_key(world.app, world.provider_admin, issued.kid)
    answer = access.check(
        world.app,
        world.service,
        engineer=world.engineer.id,
        tenant="contoso",
        resource=ALICE,
        action="read",
        request_id=req.id,
        kid=issued.kid,
    )
    assert (answer.allowed, answer.reason) == (False, "key_retired")
    assert "access.check_denied" in ops(world)


# -- reported times --------------------------------------------------------------------------


def test_reported_times_carry_a_zone_and_a_plausible_value(world: World) -> None:
    req = approved(world)
    now = world.clock.now()
    fine = (now - timedelta(days=29)).isoformat()
    result = access_reports.report_events(
        world.app,
        world.service,
        [
            {"request_id": req.id, "action": "read", "resource": ALICE, "occurred_at": fine},
            {
                "request_id": req.id,
                "action": "read",
                "resource": ALICE,
                "occurred_at": "2026-01-05 09:00",
            },
            {
                "request_id": req.id,
                "action": "read",
                "resource": ALICE,
                "occurred_at": "0001-01-01T00:00:00Z",
            },
            {
                "request_id": req.id,
                "action": "read",
                "resource": ALICE,
                "occurred_at": "9999-12-31T23:59:59+00:00",
            },
            {
                "request_id": req.id,
                "action": "read",
                "resource": ALICE,
                "occurred_at": (now + timedelta(hours=1)).isoformat(),
            },
        ],
    )
    assert [r.index for r in result.recorded] == [0]
    assert {r.index for r in result.rejected} == {1, 2, 3, 4}
    assert all(r.field.endswith(".occurred_at") for r in result.rejected)
