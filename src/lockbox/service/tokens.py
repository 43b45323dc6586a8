"""API tokens: created for a user, shown once, stored only as a digest, revocable.

Tokens are 256 random bits, so a plain SHA-256 digest is as strong as a slow
password hash would be and lets authentication be one indexed lookup; the
digest comparison after the lookup is constant-time anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from lockbox.domain import text
from lockbox.domain.audit import PROVIDER_CHAIN
from lockbox.domain.errors import (
    AuthenticationFailed,
    NotFound,
    PermissionDenied,
    ValidationError,
    present,
)
from lockbox.domain.ids import new_id, validate_id
from lockbox.domain.instants import format_optional, optional_utc_instant
from lockbox.domain.permissions import Intent, allows, authorize
from lockbox.domain.roles import ActorKind, Principal
from lockbox.service.app import Lockbox, Tx
from lockbox.service.users import load_user
from lockbox.store import repositories as repo
from lockbox.store import tokens as store
from lockbox.store.tokens import TokenRow

TOKEN_PREFIX = "lbx_"
MAX_LIFETIME = timedelta(days=366)
#: ``last_used_at`` is written at most this often, so reads do not turn into writes.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    """A freshly created token; ``secret`` is shown to the user once and never stored."""

    row: TokenRow
    secret: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(
    app: Lockbox,
    actor: Principal,
    *,
    user: str | None = None,
    name: str = "api",
    expires_at: datetime | None = None,
) -> IssuedToken:
    clean_name = text.required_text(name, "name", max_len=text.NAME_MAX, multiline=False)
    expires_at = optional_utc_instant(expires_at, "expires_at")
    with app.tx() as tx:
        owner = load_user(tx, actor, _owner_ref(actor, user), Intent.USER_VIEW)
        if owner.id != actor.id and not allows(actor, Intent.CREDENTIAL_ISSUE, owner.tenant_id):
            # A token for someone else is a credential they could be impersonated with.
            raise PermissionDenied(
                "API tokens are created by their owner; the user signs in and creates their own"
            )
        if expires_at is not None:
            if expires_at <= tx.now:
                raise ValidationError("expires_at", "must be in the future")
            if expires_at - tx.now > MAX_LIFETIME:
                raise ValidationError("expires_at", "must be within a year")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = TokenRow(
            id=new_id("token"),
            user_id=owner.id,
            name=clean_name,
            created_at=tx.now,
            expires_at=expires_at,
            revoked_at=None,
            last_used_at=None,
            token_hash=digest(secret),
        )
        store.insert_token(tx.conn, row)
        # A customer sees every credential issued for its people (never the secret); staff
        # credentials are in the provider's own chain.
        tx.audit(
            tenant_id=owner.tenant_id or PROVIDER_CHAIN,
            actor=actor,
            operation="token.created",
            details={
                "token_id": row.id,
                "user_id": owner.id,
                "name": row.name,
                "expires_at": format_optional(expires_at),
            },
        )
    return IssuedToken(row=row, secret=secret)


def list_tokens(app: Lockbox, actor: Principal, user: str | None = None) -> list[TokenRow]:
    with app.read() as tx:
        owner = load_user(tx, actor, _owner_ref(actor, user), Intent.TOKEN_MANAGE)
        return store.for_user(tx.conn, owner.id)


def _owner_ref(actor: Principal, user: str | None) -> str:
    """Whose tokens: the named user, else the caller (who must then be a real user)."""
    if user is None and actor.kind is not ActorKind.USER:
        raise ValidationError("user", "name the user whose tokens these are (--user)")
    return user or actor.id


def revoke_token(app: Lockbox, actor: Principal, token_id: str) -> TokenRow:
    validate_id(token_id, "token", "token_id")
    with app.tx() as tx:
        row = store.by_id(tx.conn, token_id)
        if row is None:
            raise NotFound("token not found")
        if row.user_id != actor.id:
            owner = repo.get_user(tx.conn, row.user_id)
            if owner is None:
                raise NotFound("token not found")
            try:
                authorize(actor, Intent.TOKEN_MANAGE, kind="user", tenant_id=owner.tenant_id)
            except NotFound:
                raise NotFound("token not found") from None  # as if it did not exist
        # Audit only the call that revoked it: on PostgreSQL concurrent revocations all read
        # ``revoked_at`` as unset, but only one UPDATE matches ``revoked_at IS NULL``.
        revoked_now = store.revoke(tx.conn, row.id, tx.now)
        refreshed = present(store.by_id(tx.conn, row.id), "the revoked token")
        holder = repo.get_user(tx.conn, row.user_id)
        if holder is not None and revoked_now:
            tx.audit(
                tenant_id=holder.tenant_id or PROVIDER_CHAIN,
                actor=actor,
                operation="token.revoked",
                details={"token_id": row.id, "user_id": holder.id},
            )
        return refreshed


def authenticate(app: Lockbox, secret: str) -> Principal:
    """The principal behind a bearer token; every failure is the same error."""
    with app.read() as tx:
        principal, touch = authenticate_in(tx, secret)
    touch_token(app, touch)
    return principal


@dataclass(frozen=True)
class Touch:
    """A token's ``last_used_at`` is due to be written (at most once a minute per token)."""

    token_id: str
    at: datetime


def authenticate_in(tx: Tx, secret: str) -> tuple[Principal, Touch | None]:
    """Authenticate inside a read transaction the caller goes on using (one query), so a
    hot endpoint pays for one transaction, not two; the caller then passes the returned
    :class:`Touch` to :func:`touch_token` after it ends."""
    failure = AuthenticationFailed("invalid, expired or revoked token")
    if not isinstance(secret, str) or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise failure
    wanted = digest(secret)
    found = repo.token_with_user(tx.conn, wanted)  # the one query of an API call's auth
    if found is None:
        raise failure
    row, user = found
    if not hmac.compare_digest(row["token_hash"], wanted):
        raise failure
    now = tx.now
    expires, revoked, last_used = row["expires_at"], row["revoked_at"], row["last_used_at"]
    if revoked is not None or (expires is not None and expires <= now) or not user.active:
        raise failure
    touch = None
    if last_used is None or now - last_used >= TOUCH_INTERVAL:
        touch = Touch(row["token_id"], now)
    return user.principal(credential=f"token:{row['token_id']}"), touch


def touch_token(app: Lockbox, touch: Touch | None) -> None:
    if touch is not None:
        with app.db.write() as conn:
            store.touch(conn, touch.token_id, touch.at)
