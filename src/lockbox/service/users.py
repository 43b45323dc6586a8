"""User use cases: staff and customer accounts, roles and passwords."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.exc import IntegrityError

from lockbox.domain import text
from lockbox.domain.audit import PROVIDER_CHAIN
from lockbox.domain.errors import AlreadyExists, NotFound, ValidationError
from lockbox.domain.ids import new_id, validate_ref
from lockbox.domain.permissions import Intent, authorize, list_scope
from lockbox.domain.policy import validate_email
from lockbox.domain.roles import Principal, Side
from lockbox.domain.tenant import Tenant
from lockbox.domain.user import User, check_roles, parse_roles, side_of
from lockbox.service import grant_feed, passwords, step_up
from lockbox.service.app import Lockbox, Tx
from lockbox.service.tenants import load_tenant
from lockbox.store import repositories as repo


def create_user(
    app: Lockbox,
    actor: Principal,
    *,
    email: str,
    roles: list[str],
    display_name: str | None = None,
    tenant: str | None = None,
    password: str | None = None,
) -> User:
    """Create a user. A password may be given only by the local operator (bootstrap): anyone
    else who chose it would know another person's credential."""
    clean_email = validate_email(email)
    parsed = parse_roles(roles)
    if not parsed:
        raise ValidationError("roles", "give the user at least one role")
    side = side_of(parsed)
    name = text.text(
        display_name, "display_name", max_len=text.NAME_MAX, required=False, multiline=False
    )
    password_hash = passwords.hash_password(password) if password is not None else None
    with app.tx() as tx:
        tenant_obj = load_tenant(tx, actor, tenant, domains=True) if tenant else None
        tenant_id = tenant_obj.id if tenant_obj else None
        check_roles(side, tenant_id, parsed)
        authorize(actor, Intent.USER_MANAGE, kind="user_new", tenant_id=tenant_id)
        if password_hash is not None:
            authorize(actor, Intent.CREDENTIAL_ISSUE, kind="user_new", tenant_id=tenant_id)
        _check_address(tx, actor, tenant_obj, clean_email)
        user = User(
            id=new_id("user"),
            email=clean_email,
            display_name=name or clean_email.split("@")[0],
            side=side,
            tenant_id=tenant_id,
            roles=parsed,
            created_at=tx.now,
        )
        try:
            with tx.conn.begin_nested():
                repo.insert_user(tx.conn, user, password_hash)
        except IntegrityError:
            # The address was taken (in any spelling) by a creation that committed meanwhile.
            if actor.side is Side.CUSTOMER:
                raise ValidationError("email", _domain_rule(tenant_obj)) from None
            raise AlreadyExists(
                f"a user with e-mail {clean_email} already exists", field="email"
            ) from None
        # Staff go to the provider's own chain (issue #12): who could act is audited too.
        tx.audit(
            tenant_id=tenant_id or PROVIDER_CHAIN,
            actor=actor,
            operation="user.created",
            details={"user_id": user.id, "email": user.email, "roles": sorted(parsed)},
        )
    return user


def _check_address(tx: Tx, actor: Principal, tenant: Tenant | None, email: str) -> None:
    """A tenant's own admins may add people only at the tenant's e-mail domains.

    The domain is checked *before* whether the address exists, and an address used in
    another tenant gets the very same answer as one outside the domains, so a tenant
    admin can never learn which addresses exist elsewhere. Provider staff see every
    tenant anyway and get a plain "already exists".
    """
    owner = repo.email_owner(tx.conn, email)
    foreign = owner is not None and (tenant is None or owner[1] != tenant.id)
    if actor.side is Side.CUSTOMER and (
        tenant is None or not tenant.owns_address(email) or foreign
    ):
        raise ValidationError("email", _domain_rule(tenant))
    if owner is not None:
        raise AlreadyExists(f"a user with e-mail {email} already exists", field="email")


def _domain_rule(tenant: Tenant | None) -> str:
    if tenant is None or not tenant.email_domains:
        return "this organisation has no e-mail domains yet; ask your provider to add them"
    listed = ", ".join(f"@{d}" for d in tenant.email_domains)
    return f"must be an address of this organisation ({listed}) that is not already in use"


def load_user(tx: Tx, actor: Principal, ref: str, intent: Intent = Intent.USER_VIEW) -> User:
    validate_ref(ref, "user")
    user = repo.get_user(tx.conn, ref)
    if user is None:
        raise NotFound("user not found")
    if user.id != actor.id:
        authorize(actor, intent, kind="user", tenant_id=user.tenant_id)
    return user


def get_user(app: Lockbox, actor: Principal, ref: str) -> User:
    with app.read() as tx:
        return load_user(tx, actor, ref)


def list_users(app: Lockbox, actor: Principal, *, tenant: str | None = None) -> list[User]:
    with app.read() as tx:
        requested = load_tenant(tx, actor, tenant).id if tenant is not None else None
        visible, tenant_id = list_scope(actor, Intent.USER_VIEW, requested)
        if not visible:
            return []
        return repo.list_users(tx.conn, tenant_id=tenant_id)


def set_roles(app: Lockbox, actor: Principal, user_ref: str, roles: list[str]) -> User:
    parsed = parse_roles(roles)
    with app.tx() as tx:
        user = load_user(tx, actor, user_ref, Intent.USER_MANAGE)
        # load_user lets anyone read themselves; changing one's own roles needs the right too.
        authorize(actor, Intent.USER_MANAGE, kind="user", tenant_id=user.tenant_id)
        step_up.require_recent(actor, tx.now, "change someone's roles")
        if parsed and side_of(parsed) is not user.side:
            raise ValidationError("roles", f"a {user.side.value} user cannot hold these roles")
        check_roles(user.side, user.tenant_id, parsed)
        repo.set_roles(tx.conn, user.id, parsed)
        grant_feed.on_user_change(tx, user, replace(user, roles=parsed))
        tx.audit(
            tenant_id=user.tenant_id or PROVIDER_CHAIN,
            actor=actor,
            operation="user.roles_changed",
            details={
                "user_id": user.id,
                "from": sorted(user.roles),
                "to": sorted(parsed),
            },
        )
    return replace(user, roles=parsed)


def set_active(app: Lockbox, actor: Principal, user_ref: str, active: bool) -> User:
    with app.tx() as tx:
        user = load_user(tx, actor, user_ref, Intent.USER_MANAGE)
        # As above: (de)activating oneself is user management too.
        authorize(actor, Intent.USER_MANAGE, kind="user", tenant_id=user.tenant_id)
        repo.set_user_active(tx.conn, user.id, active)
        grant_feed.on_user_change(tx, user, replace(user, active=active))
        tx.audit(
            tenant_id=user.tenant_id or PROVIDER_CHAIN,
            actor=actor,
            operation="user.activated" if active else "user.deactivated",
            details={"user_id": user.id},
        )
    return replace(user, active=active)


def principal_for(app: Lockbox, ref: str) -> Principal:
    """The principal of a user by id or e-mail (the local CLI's ``--as``)."""
    validate_ref(ref, "user")
    with app.read() as tx:
        user = repo.get_user(tx.conn, ref)
    if user is None or not user.active:
        raise NotFound(f"no active user {ref!r}")
    return user.principal(credential="local-cli")
