"""The provider's own chain (issue #12): every provider-side action is recorded, verified,
checkpointed and tamper-evident like a tenant's, and a tenant's auditors see the part that
concerns them (who at the provider could act)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import update

from lockbox.access.keys import AUDIT
from lockbox.domain.audit import PROVIDER_CHAIN
from lockbox.domain.errors import NotFound, PermissionDenied, ValidationError
from lockbox.service import (
    access,
    audit,
    checkpoints,
    passwords,
    provider_audit,
    resource_services,
    tenants,
    tokens,
    users,
    webhooks,
)
from lockbox.store import tables as t
from tests.conftest import World
from tests.integration.trust_helpers import (
    OPERATOR,
    chain_records,
    cut_tail,
    held_checkpoint,
    tamper,
)

ev = t.audit_events


def _last(world: World) -> tuple[str, str, dict[str, object]]:
    record = chain_records(world.app, PROVIDER_CHAIN)[-1]
    return record.operation, record.actor_id, record.details


def _recorded(world: World, action: Callable[[], object]) -> list[tuple[str, str]]:
    before = len(chain_records(world.app, PROVIDER_CHAIN))
    action()
    return [(r.operation, r.actor_id) for r in chain_records(world.app, PROVIDER_CHAIN)[before:]]


def test_every_provider_action_lands_in_the_provider_chain(world: World) -> None:
    app, pat = world.app, world.provider_admin
    # Onboarding the world already wrote some: tenants, staff, a resource service.
    ops = {r.operation for r in chain_records(app, PROVIDER_CHAIN)}
    assert {"tenant.created", "user.created", "service.registered"} <= ops
    staff = users.create_user(app, pat, email="sam@provider.test", roles=["engineer"])
    assert _last(world) == (
        "user.created",
        pat.id,
        {"user_id": staff.id, "email": "sam@provider.test", "roles": ["engineer"]},
    )
    users.set_roles(app, pat, staff.id, ["engineer", "manager"])
    assert _last(world)[0] == "user.roles_changed"
    assert _last(world)[2]["to"] == ["engineer", "manager"]
    sam = users.get_user(app, pat, staff.id).principal(credential="local-cli")
    issued = tokens.create_token(app, sam, name="laptop")
    assert _last(world)[:2] == ("token.created", sam.id)
    assert _last(world)[2]["token_id"] == issued.row.id
    tokens.revoke_token(app, pat, issued.row.id)
    assert _last(world)[:2] == ("token.revoked", pat.id)
    reset = _recorded(world, lambda: passwords.start_reset(app, pat, staff.id))
    assert [op for op, who in reset if who == pat.id] == ["user.password_reset_started"]
    users.set_active(app, pat, staff.id, False)
    assert _last(world)[0] == "user.deactivated"
    created = tenants.create_tenant(app, pat, slug="northwind", name="Northwind")
    assert _last(world) == (
        "tenant.created",
        pat.id,
        {"tenant_id": created.id, "slug": "northwind", "email_domains": []},
    )
    tenants.set_domains(app, pat, "northwind", ["northwind.test"])
    assert _last(world)[0] == "tenant.domains_changed"
    access.ensure_signing_key(app)  # the first access key (created on first use)
    rotated = access.rotate_keys(app, pat)
    assert _last(world) == (
        "keys.rotated",
        pat.id,
        {"purpose": "access", "kid": rotated["kid"], "retired": _last(world)[2]["retired"]},
    )
    retired_kid = _last(world)[2]["retired"]
    assert isinstance(retired_kid, str)
    access.retire_key(app, pat, retired_kid)
    assert _last(world)[:2] == ("keys.retired", pat.id)
    access.rotate_keys(app, pat, purpose=AUDIT)
    assert _last(world)[2]["purpose"] == AUDIT
    hook = webhooks.register(app, pat, url="https://ops.provider.example/l")
    assert _last(world)[0] == "webhook.create" and _last(world)[2]["webhook_id"] == hook.row.id
    webhooks.delete_webhook(app, pat, hook.row.id)
    assert _last(world)[0] == "webhook.delete"
    resource_services.register(app, pat, world.service.id, tenants=["contoso"], prefixes=["x/"])
    assert _last(world)[0] == "service.registered"
    assert _last(world)[2]["tenants"] == [world.contoso]
    # Tenant-level actions stay in the tenant's chain only.
    before = len(chain_records(app, PROVIDER_CHAIN))
    webhooks.register(app, world.contoso_admin, url="https://hooks.contoso.example/l")
    users.create_user(
        app, world.contoso_admin, email="ann@contoso.test", roles=["auditor"], tenant="contoso"
    )
    assert len(chain_records(app, PROVIDER_CHAIN)) == before
    (report,) = audit.verify(app, pat, PROVIDER_CHAIN)
    assert report.ok and report.records == len(chain_records(app, PROVIDER_CHAIN))


def test_provider_chain_tampering_is_detected_like_a_tenants(world: World) -> None:
    app, pat = world.app, world.provider_admin
    users.create_user(app, pat, email="sam@provider.test", roles=["manager"])
    held = held_checkpoint(app, PROVIDER_CHAIN) if _has_checkpoint(world) else None
    if held is None:
        checkpoints.issue(app, pat, PROVIDER_CHAIN)
        held = held_checkpoint(app, PROVIDER_CHAIN)
    records = chain_records(app, PROVIDER_CHAIN)
    target = records[2]
    tamper(
        app,
        lambda c: c.execute(
            update(ev)
            .where((ev.c.tenant_id == PROVIDER_CHAIN) & (ev.c.seq == target.seq))
            .values(details='{"roles":["auditor"]}')
        ),
    )
    (report,) = audit.verify(app, pat, PROVIDER_CHAIN)
    assert not report.ok and report.broken_seq == target.seq
    tamper(
        app,
        lambda c: c.execute(
            update(ev)
            .where((ev.c.tenant_id == PROVIDER_CHAIN) & (ev.c.seq == target.seq))
            .values(details=_canonical(target.details))
        ),
    )
    assert audit.verify(app, pat, PROVIDER_CHAIN)[0].ok
    # The staff member's creation removed from the end, the stored head rewritten: only the
    # held checkpoint tells.
    cut_tail(app, PROVIDER_CHAIN, len(records) - 1)
    assert audit.verify(app, pat, PROVIDER_CHAIN)[0].ok
    report = checkpoints.verify_with_checkpoints(app, pat, PROVIDER_CHAIN, [held])
    assert not report.ok and "removed from the end" in (report.problem or "")


def _has_checkpoint(world: World) -> bool:
    return checkpoints.latest(world.app, OPERATOR, PROVIDER_CHAIN) is not None


def _canonical(details: dict[str, object]) -> str:
    import json

    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_only_provider_admins_read_the_provider_chain(world: World) -> None:
    for who in (world.provider_admin, OPERATOR):
        assert audit.query(world.app, who, PROVIDER_CHAIN)[0]
        assert "".join(audit.export(world.app, who, PROVIDER_CHAIN, "jsonl"))
    for who in (world.contoso_auditor, world.contoso_admin, world.manager, world.engineer):
        with pytest.raises(PermissionDenied):
            audit.query(world.app, who, PROVIDER_CHAIN)
        with pytest.raises(PermissionDenied):
            audit.verify(world.app, who, PROVIDER_CHAIN)
    # Verifying every chain still means every tenant chain (the provider's is named).
    assert {r.tenant_id for r in audit.verify(world.app, world.provider_admin)} == {
        world.contoso,
        world.fabrikam,
    }
    with pytest.raises(ValidationError):
        tenants.create_tenant(world.app, world.provider_admin, slug="provider", name="P")


def test_a_tenants_auditor_sees_who_at_the_provider_could_act(world: World) -> None:
    app, pat = world.app, world.provider_admin
    tenants.create_tenant(app, pat, slug="northwind", name="Northwind")
    promoted = users.create_user(app, pat, email="rob@provider.test", roles=["resource_service"])
    users.set_roles(app, pat, promoted.id, ["engineer"])  # now powerful: his history shows
    view = provider_audit.staff_view(app, world.contoso_auditor, "contoso")
    holders = {h["email"]: h["roles"] for h in view["holders"]}
    assert holders["erin@provider.test"] == ["engineer"]
    assert holders["mark@provider.test"] == ["manager"]
    assert holders["pat@provider.test"] == ["provider_admin"]
    assert holders["rob@provider.test"] == ["engineer"]
    assert "mailstore@provider.test" not in holders
    items = view["items"]
    about = [
        (i["operation"], i["details"].get("tenant_id") or i["details"].get("user_id"))
        for i in items
    ]
    assert ("tenant.created", world.contoso) in about
    assert all(tid != world.fabrikam for op, tid in about if op.startswith("tenant."))
    assert ("user.created", world.engineer.id) in about
    assert ("user.created", promoted.id) in about  # created as a service, later an engineer
    assert ("user.created", world.service.id) not in about
    assert ("service.registered", world.service.id) in about  # it serves every tenant
    assert view["head"]["seq"] == chain_records(app, PROVIDER_CHAIN)[-1].seq
    # Every item is a record of the provider's chain, with its hash.
    stored = {r.seq: r.hash for r in chain_records(app, PROVIDER_CHAIN)}
    assert all(stored[i["seq"]] == i["hash"] for i in items)
    page = provider_audit.staff_view(app, world.contoso_admin, "contoso", limit=2)
    assert len(page["items"]) == 2 and page["next_cursor"] is not None
    rest = provider_audit.staff_view(
        app, world.contoso_admin, "contoso", after_seq=int(page["next_cursor"]), limit=1000
    )
    assert [i["seq"] for i in page["items"] + rest["items"]] == [i["seq"] for i in items]
    with pytest.raises(NotFound):
        provider_audit.staff_view(app, world.fabrikam_auditor, "contoso")
    with pytest.raises(PermissionDenied):
        provider_audit.staff_view(app, world.contoso_approver, "contoso")
    assert provider_audit.staff_view(app, world.provider_admin, "fabrikam")["holders"]


def test_records_survive_the_provider_head_being_rebuilt(world: World) -> None:
    """A database whose provider chain head vanished while the chain was empty gets it back;
    one that has records does not (that is for verification to report)."""
    from sqlalchemy import delete

    with world.app.db.engine.begin() as conn:
        assert chain_records(world.app, PROVIDER_CHAIN)
        conn.execute(
            delete(t.audit_checkpoints).where(t.audit_checkpoints.c.tenant_id == PROVIDER_CHAIN)
        )
        conn.execute(delete(ev).where(ev.c.tenant_id == PROVIDER_CHAIN))
        conn.execute(delete(t.audit_heads).where(t.audit_heads.c.tenant_id == PROVIDER_CHAIN))
    users.create_user(world.app, world.provider_admin, email="new@provider.test", roles=["manager"])
    (record,) = chain_records(world.app, PROVIDER_CHAIN)
    assert record.seq == 1 and record.operation == "user.created"
