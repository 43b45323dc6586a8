"""Passwords for people who sign in to the admin center: hashing, checking, changing, resetting.

Nobody may choose a password for another person, or they would hold a credential
that person can be impersonated with (a tenant admin could then approve twice, once
as themself and once as "another" approver). So:

* a user changes their own password by proving the current one;
* a tenant admin (or, for staff, the provider admin) *starts* a reset: the user gets a
  one-time code by e-mail, without a link, and chooses the new password themself;
* only the local operator, who holds the database anyway, sets a password directly
  (bootstrapping a tenant's first admin).

Codes are 60 random bits, stored only as Argon2id hashes, valid for
:data:`RESET_TTL`, good for one use and for at most :data:`RESET_MAX_ATTEMPTS`
wrong guesses; every start, success and failure is in the tenant's audit chain.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lockbox.domain.audit import PROVIDER_CHAIN
from lockbox.domain.errors import AuthenticationFailed, NotFound, ValidationError
from lockbox.domain.ids import new_id, validate_ref
from lockbox.domain.instants import format_instant
from lockbox.domain.permissions import Intent, authorize
from lockbox.domain.roles import Principal
from lockbox.domain.user import User
from lockbox.service import notifications
from lockbox.service.app import Lockbox, Tx
from lockbox.store import password_resets as resets
from lockbox.store import repositories as repo

#: Argon2id with the library's current recommended parameters.
_HASHER = PasswordHasher()
PASSWORD_MIN = 12
PASSWORD_MAX = 1024
RESET_TTL = timedelta(minutes=30)
RESET_MAX_ATTEMPTS = 5
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_CODE_GROUPS = 3
_CODE_GROUP_LEN = 4
_LOOKALIKES = str.maketrans("OIL", "011")
_WRONG_CODE = "the reset code is wrong, used or expired; ask your administrator for a new one"


def hash_password(password: str) -> str:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ValidationError(
            "password", f"must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long"
        )
    return _HASHER.hash(password)


def _matches(stored: str | None, candidate: str) -> bool:
    """Constant work whether or not there is a hash to compare with."""
    try:
        if stored is None:
            _HASHER.verify(_dummy_hash(), candidate)
            return False
        return _HASHER.verify(stored, candidate)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    """Computed on first use, not at import: every CLI call would pay ~0.5 s of Argon2."""
    return _HASHER.hash("lockbox-dummy-password-for-timing")


def verify_password(app: Lockbox, email: str, password: str) -> Principal:
    """Check a sign-in; the same error and (roughly) the same work whether or not the user exists."""
    validate_ref(email, "email")
    with app.read() as tx:
        user = repo.get_user(tx.conn, email) if isinstance(email, str) else None
        stored = repo.get_password_hash(tx.conn, user.id) if user else None
    candidate = password if isinstance(password, str) else ""
    if user is None or not _matches(stored, candidate) or not user.active:
        raise AuthenticationFailed("wrong e-mail or password")
    return user.principal()


def set_password(app: Lockbox, actor: Principal, user_ref: str, password: str) -> None:
    """Set another person's password directly: the local operator's bootstrap only."""
    from lockbox.service.users import load_user

    password_hash = hash_password(password)
    with app.tx() as tx:
        user = load_user(tx, actor, user_ref, Intent.USER_VIEW)
        authorize(actor, Intent.CREDENTIAL_ISSUE, kind="user", tenant_id=user.tenant_id)
        repo.set_password_hash(tx.conn, user.id, password_hash)
        _audit(tx, actor, user, "user.password_set")


def change_own_password(app: Lockbox, actor: Principal, current: str, new: str) -> None:
    """A person replaces their own password, proving the current one first."""
    new_hash = hash_password(new)
    with app.read() as tx:
        stored = repo.get_password_hash(tx.conn, actor.id)
    if not _matches(stored, current if isinstance(current, str) else ""):
        raise ValidationError("current_password", "is not your current password")
    with app.tx() as tx:
        user = repo.get_user(tx.conn, actor.id)
        if user is None or not user.active:
            raise NotFound("user not found")
        repo.set_password_hash(tx.conn, user.id, new_hash)
        resets.cancel_open(tx.conn, user.id, tx.now)
        _audit(tx, actor, user, "user.password_changed")


@dataclass(frozen=True)
class ResetStarted:
    """What the administrator learns: who, and until when. Never the code."""

    user: User
    expires_at: datetime


def start_reset(app: Lockbox, actor: Principal, user_ref: str) -> ResetStarted:
    """E-mail ``user_ref`` a one-time code to choose a new password (earlier codes end)."""
    from lockbox.service.users import load_user

    code = _new_code()
    code_hash = _HASHER.hash(_normalise(code))
    with app.tx() as tx:
        user = load_user(tx, actor, user_ref, Intent.USER_VIEW)
        authorize(actor, Intent.USER_PASSWORD_RESET, kind="user", tenant_id=user.tenant_id)
        if not user.active:
            raise ValidationError("user", "is deactivated; activate the account first")
        resets.cancel_open(tx.conn, user.id, tx.now)
        expires = tx.now + RESET_TTL
        resets.insert_reset(
            tx.conn,
            resets.ResetRow(
                id=new_id("reset"),
                user_id=user.id,
                code_hash=code_hash,
                created_at=tx.now,
                expires_at=expires,
                used_at=None,
                attempts=0,
                created_by=actor.id,
            ),
        )
        notifications.plan_password_reset(tx, user, code=code, expires_at=expires, actor=actor)
        _audit(tx, actor, user, "user.password_reset_started", expires_at=format_instant(expires))
    return ResetStarted(user=user, expires_at=expires)


def complete_reset(app: Lockbox, email: str, code: str, new_password: str) -> Principal:
    """The user proves the e-mailed code and chooses a password. Unauthenticated by design.

    Every wrong guess counts against the code (and is audited), so the code cannot be
    brute-forced; a wrong e-mail, a wrong code and an expired code read the same.
    """
    validate_ref(email, "email")
    new_hash = hash_password(new_password)
    candidate = _normalise(code) if isinstance(code, str) else ""
    with app.tx() as tx:
        user = repo.get_user(tx.conn, email) if isinstance(email, str) and "@" in email else None
        row = resets.latest_open(tx.conn, user.id, tx.now) if user and user.active else None
        matched = _matches(row.code_hash if row else None, candidate)
        if user is not None and row is not None and matched:
            resets.mark_used(tx.conn, row.id, tx.now)
            resets.cancel_open(tx.conn, user.id, tx.now)
            repo.set_password_hash(tx.conn, user.id, new_hash)
            _audit(tx, user.principal(credential="reset-code"), user, "user.password_reset_done")
            return user.principal()
        if user is not None and row is not None:
            resets.count_attempt(tx.conn, row.id, exhaust_at=RESET_MAX_ATTEMPTS, now=tx.now)
            _audit(
                tx,
                Principal.system(),
                user,
                "user.password_reset_failed",
                attempts=row.attempts + 1,
                exhausted=row.attempts + 1 >= RESET_MAX_ATTEMPTS,
            )
    raise AuthenticationFailed(_WRONG_CODE)


def _audit(tx: Tx, actor: Principal, user: User, operation: str, **details: object) -> None:
    tx.audit(
        tenant_id=user.tenant_id or PROVIDER_CHAIN,  # staff: the provider's chain
        actor=actor,
        operation=operation,
        details={"user_id": user.id, **details},
    )


def _new_code() -> str:
    groups = (
        "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_GROUP_LEN))
        for _ in range(_CODE_GROUPS)
    )
    return "-".join(groups)


def _normalise(code: str) -> str:
    """What people type: any case, with or without dashes and spaces; O/I/L read as 0/1/1."""
    cleaned = "".join(c for c in code.upper() if c.isalnum())
    return cleaned.translate(_LOOKALIKES)[:64]
