"""User use cases: staff and customer accounts, roles and passwords."""

from __future__ import annotations

import functools
from dataclasses import replace

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lockbox.domain import text
from lockbox.domain.errors import AlreadyExists, AuthenticationFailed, NotFound, ValidationError
from lockbox.domain.ids import new_id
from lockbox.domain.permissions import Intent, authorize, list_scope
from lockbox.domain.policy import validate_email
from lockbox.domain.roles import Principal
from lockbox.domain.user import User, check_roles, parse_roles, side_of
from lockbox.service.app import Lockbox, Tx
from lockbox.service.tenants import load_tenant
from lockbox.store import repositories as repo

#: Argon2id with the library's current recommended parameters.
_HASHER = PasswordHasher()
PASSWORD_MIN = 12
PASSWORD_MAX = 1024


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
    clean_email = validate_email(email)
    parsed = parse_roles(roles)
    if not parsed:
        raise ValidationError("roles", "give the user at least one role")
    side = side_of(parsed)
    name = text.text(
        display_name, "display_name", max_len=text.NAME_MAX, required=False, multiline=False
    )
    password_hash = hash_password(password) if password is not None else None
    with app.tx() as tx:
        tenant_id = load_tenant(tx, actor, tenant).id if tenant else None
        check_roles(side, tenant_id, parsed)
        authorize(actor, Intent.USER_MANAGE, kind="user_new", tenant_id=tenant_id)
        if password_hash is not None:
            # Setting someone's first password means knowing their credentials.
            authorize(actor, Intent.TOKEN_MANAGE, kind="user_new", tenant_id=tenant_id)
        if repo.email_taken(tx.conn, clean_email):
            raise AlreadyExists(f"a user with e-mail {clean_email} already exists", field="email")
        user = User(
            id=new_id("user"),
            email=clean_email,
            display_name=name or clean_email.split("@")[0],
            side=side,
            tenant_id=tenant_id,
            roles=parsed,
            created_at=tx.now,
        )
        repo.insert_user(tx.conn, user, password_hash)
        if tenant_id:
            tx.audit(
                tenant_id=tenant_id,
                actor=actor,
                operation="user.created",
                details={"user_id": user.id, "email": user.email, "roles": sorted(parsed)},
            )
    return user


def load_user(tx: Tx, actor: Principal, ref: str, intent: Intent = Intent.USER_VIEW) -> User:
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
        if parsed and side_of(parsed) is not user.side:
            raise ValidationError("roles", f"a {user.side.value} user cannot hold these roles")
        check_roles(user.side, user.tenant_id, parsed)
        repo.set_roles(tx.conn, user.id, parsed)
        if user.tenant_id:
            tx.audit(
                tenant_id=user.tenant_id,
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
        if user.tenant_id:
            tx.audit(
                tenant_id=user.tenant_id,
                actor=actor,
                operation="user.activated" if active else "user.deactivated",
                details={"user_id": user.id},
            )
    return replace(user, active=active)


def hash_password(password: str) -> str:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ValidationError(
            "password", f"must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long"
        )
    return _HASHER.hash(password)


def set_password(app: Lockbox, actor: Principal, user_ref: str, password: str) -> None:
    password_hash = hash_password(password)
    with app.tx() as tx:
        user = load_user(tx, actor, user_ref, Intent.TOKEN_MANAGE)
        repo.set_password_hash(tx.conn, user.id, password_hash)
        if user.tenant_id:
            tx.audit(
                tenant_id=user.tenant_id,
                actor=actor,
                operation="user.password_set",
                details={"user_id": user.id},
            )


def verify_password(app: Lockbox, email: str, password: str) -> Principal:
    """Check a sign-in; the same error and (roughly) the same work whether or not the user exists."""
    with app.read() as tx:
        user = repo.get_user(tx.conn, email)
        stored = repo.get_password_hash(tx.conn, user.id) if user else None
    try:
        if stored is None:
            _HASHER.verify(_dummy_hash(), password)
            raise AuthenticationFailed("wrong e-mail or password")
        _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise AuthenticationFailed("wrong e-mail or password") from None
    assert user is not None
    if not user.active:
        raise AuthenticationFailed("wrong e-mail or password")
    return user.principal()


@functools.cache
def _dummy_hash() -> str:
    """Computed on first use, not at import: every CLI call would pay ~0.5 s of Argon2."""
    return _HASHER.hash("lockbox-dummy-password-for-timing")


def principal_for(app: Lockbox, ref: str) -> Principal:
    """The principal of a user by id or e-mail (the local CLI's ``--as``)."""
    with app.read() as tx:
        user = repo.get_user(tx.conn, ref)
    if user is None or not user.active:
        raise NotFound(f"no active user {ref!r}")
    return user.principal()
