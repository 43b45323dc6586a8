"""Second factors: authenticator apps (TOTP), recovery codes and passkeys (WebAuthn).

Only the person enrols or removes their own factors (nobody can hand someone else a
credential, as for passwords and tokens). Removing a factor and renewing recovery codes
need a recent sign-in (:mod:`lockbox.service.step_up`), as granting access does; adding
one does not (it only makes the sign-in stronger). TOTP codes are checked against the
Lockbox clock, one 30-second step either way, and each step is accepted once per
authenticator, so an overheard code cannot be replayed. Recovery codes carry 80
random bits, are shown once and stored as SHA-256 digests, and each works once.
A passkey is a WebAuthn credential; the challenge of each ceremony is kept
server-side (:mod:`lockbox.store.sign_in` flows) and used at most once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import pyotp
import webauthn
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidJSONStructure,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from lockbox.domain import authn, text
from lockbox.domain.errors import AuthenticationFailed, NotFound, ValidationError
from lockbox.domain.ids import new_id
from lockbox.domain.roles import Principal
from lockbox.domain.user import User
from lockbox.service import step_up
from lockbox.service.app import Lockbox, Tx
from lockbox.store import repositories as repo
from lockbox.store import sign_in as store
from lockbox.store.sign_in import Factor, Flow

TOTP_STEP: Final = 30
TOTP_DIGITS: Final = 6
RECOVERY_CODES: Final = 10
CHALLENGE_TTL: Final = timedelta(minutes=5)
NAME_MAX: Final = 100


def _name(value: str, fallback: str) -> str:
    cleaned = text.text(value, "name", max_len=NAME_MAX, required=False, multiline=False)
    return cleaned or fallback


def _user(tx: Tx, actor: Principal) -> User:
    user = repo.get_user(tx.conn, actor.id)
    if user is None or not user.active:
        raise AuthenticationFailed("please sign in")
    return user


def _audit(tx: Tx, actor: Principal, user: User, operation: str, **details: object) -> None:
    if user.tenant_id:
        tx.audit(
            tenant_id=user.tenant_id,
            actor=actor,
            operation=operation,
            details={"user_id": user.id, **details},
        )


@dataclass(frozen=True)
class Enrolled:
    """A factor added; ``recovery_codes`` is set when it is the person's first (shown once)."""

    factor: Factor
    recovery_codes: tuple[str, ...] = ()


def list_factors(app: Lockbox, actor: Principal) -> list[Factor]:
    with app.read() as tx:
        return store.factors_of(tx.conn, actor.id)


def recovery_codes_left(app: Lockbox, actor: Principal) -> int:
    with app.read() as tx:
        return store.unused_recovery_codes(tx.conn, actor.id)


def has_factors(app: Lockbox, user_id: str) -> bool:
    with app.read() as tx:
        return bool(store.factors_of(tx.conn, user_id))


# -- TOTP ------------------------------------------------------------------------------------


def new_totp_secret() -> str:
    """160 random bits in base32, as authenticator apps expect."""
    return pyotp.random_base32(32)


def totp_uri(secret: str, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def _clean_code(code: str) -> str:
    return "".join(c for c in str(code) if c.isdigit())


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (previous, current or next) whose code is ``code``, if any."""
    clean = _clean_code(code)
    if len(clean) != TOTP_DIGITS:
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP)
    current = int(now.timestamp()) // TOTP_STEP
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.at(step * TOTP_STEP), clean):
            return step
    return None


def enrol_totp(app: Lockbox, actor: Principal, secret: str, code: str, name: str = "") -> Enrolled:
    """Add an authenticator app once it shows it has the secret (a current code)."""
    if not isinstance(secret, str) or len(secret) < 32:
        raise ValidationError("secret", "the enrolment expired; start again")
    try:
        base64.b32decode(secret, casefold=True)
    except ValueError:
        raise ValidationError("secret", "the enrolment expired; start again") from None
    with app.tx() as tx:
        user = _user(tx, actor)
        step = _matching_step(secret, code, tx.now)
        if step is None:
            raise ValidationError("code", "this code is not the one your app shows now; try again")
        first = not store.factors_of(tx.conn, user.id)
        factor = Factor(
            id=new_id("factor"),
            user_id=user.id,
            kind="totp",
            name=_name(name, "Authenticator app"),
            secret=secret.upper(),
            sign_count=0,
            last_step=step,
            created_at=tx.now,
            last_used_at=tx.now,
        )
        store.insert_factor(tx.conn, factor)
        _audit(tx, actor, user, "factor.added", kind="totp", factor_id=factor.id)
        codes = _new_recovery_codes(tx, user) if first else ()
    return Enrolled(factor, codes)


def check_totp(app: Lockbox, user_id: str, code: str) -> bool:
    """Whether ``code`` is a current code of one of the person's apps, not used before."""
    with app.tx() as tx:
        for factor in store.factors_of(tx.conn, user_id, "totp"):
            step = _matching_step(factor.secret or "", code, tx.now)
            if step is not None:
                return store.use_totp(tx.conn, factor.id, step, tx.now)
    return False


# -- recovery codes ---------------------------------------------------------------------------


def _code_hash(code: str) -> str:
    clean = "".join(c for c in str(code).upper() if c.isalnum())
    return hashlib.sha256(clean.encode()).hexdigest()


def _new_recovery_codes(tx: Tx, user: User) -> tuple[str, ...]:
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = base64.b32encode(secrets.token_bytes(10)).decode()  # 80 bits, 16 characters
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    rows = [(new_id("recovery"), _code_hash(c)) for c in codes]
    store.replace_recovery_codes(tx.conn, user.id, rows, tx.now)
    return tuple(codes)


def new_recovery_codes(app: Lockbox, actor: Principal) -> tuple[str, ...]:
    """A fresh set (the old ones stop working); only for someone with a second factor.

    Needs a recent sign-in (step-up): codes that sign in in place of the second factor
    must not be had from a session someone else finds open.
    """
    with app.tx() as tx:
        user = _user(tx, actor)
        step_up.require_recent(actor, tx.now, "make new recovery codes")
        if not store.factors_of(tx.conn, user.id):
            raise ValidationError("recovery_codes", "add an authenticator app or a passkey first")
        codes = _new_recovery_codes(tx, user)
        _audit(tx, actor, user, "factor.recovery_codes_renewed")
    return codes


def use_recovery_code(app: Lockbox, user_id: str, code: str) -> bool:
    with app.tx() as tx:
        return store.use_recovery_code(tx.conn, user_id, _code_hash(code), tx.now)


# -- removing -----------------------------------------------------------------------------------


def remove_factor(app: Lockbox, actor: Principal, factor_id: str) -> Factor:
    """The person removes one of their factors; without any left, recovery codes go too.

    Needs a recent sign-in (step-up), like everything that weakens how the person proves
    who they are: a session left open must not be enough to strip the second factor.
    """
    with app.tx() as tx:
        user = _user(tx, actor)
        step_up.require_recent(actor, tx.now, "remove a second factor")
        factor = store.delete_factor(tx.conn, user.id, factor_id)
        if factor is None:
            raise NotFound("second factor not found")
        if not store.factors_of(tx.conn, user.id):
            store.replace_recovery_codes(tx.conn, user.id, [], tx.now)
        _audit(tx, actor, user, "factor.removed", kind=factor.kind, factor_id=factor.id)
    return factor


# -- passkeys (WebAuthn) ---------------------------------------------------------------------


@dataclass(frozen=True)
class RelyingParty:
    """Who the passkeys are for: the site's host name and its origin (scheme, host, port)."""

    id: str
    origin: str
    name: str


@dataclass(frozen=True)
class Ceremony:
    """Options for the browser (JSON) and the handle that finds the challenge again."""

    options: str
    handle: str


def _flow_id(handle: str) -> str:
    return hashlib.sha256(("webauthn:" + handle).encode()).hexdigest()


def _keep_challenge(
    tx: Tx, challenge: bytes, purpose: str, session_id: str | None, user_id: str | None
) -> str:
    handle = secrets.token_urlsafe(32)
    store.insert_flow(
        tx.conn,
        Flow(
            id=_flow_id(handle),
            kind="webauthn",
            scope=None,
            session_id=session_id,
            data={
                "challenge": bytes_to_base64url(challenge),
                "purpose": purpose,
                "user_id": user_id,
            },
            created_at=tx.now,
            expires_at=tx.now + CHALLENGE_TTL,
        ),
    )
    return handle


def _take_challenge(tx: Tx, handle: str, purpose: str, session_id: str | None) -> dict[str, Any]:
    flow = store.take_flow(tx.conn, _flow_id(str(handle)), "webauthn")
    if (
        flow is None
        or flow.expires_at <= tx.now
        or flow.data.get("purpose") != purpose
        or flow.session_id != session_id
    ):
        raise AuthenticationFailed("the passkey request expired; try again")
    return flow.data


def registration_options(
    app: Lockbox, actor: Principal, session_id: str, rp: RelyingParty
) -> Ceremony:
    with app.tx() as tx:
        user = _user(tx, actor)
        existing = store.factors_of(tx.conn, user.id, "passkey")
        options = webauthn.generate_registration_options(
            rp_id=rp.id,
            rp_name=rp.name,
            user_name=user.email,
            user_id=user.id.encode(),
            user_display_name=user.display_name,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[
                PublicKeyCredentialDescriptor(id=base64url_to_bytes(f.credential_id or ""))
                for f in existing
            ],
        )
        handle = _keep_challenge(tx, options.challenge, "register", session_id, user.id)
    return Ceremony(webauthn.options_to_json(options), handle)


def enrol_passkey(
    app: Lockbox,
    actor: Principal,
    session_id: str,
    rp: RelyingParty,
    handle: str,
    credential: str,
    name: str = "",
) -> Enrolled:
    with app.tx() as tx:
        user = _user(tx, actor)
        data = _take_challenge(tx, handle, "register", session_id)
        try:
            verified = webauthn.verify_registration_response(
                credential=_credential_json(credential),
                expected_challenge=base64url_to_bytes(str(data["challenge"])),
                expected_rp_id=rp.id,
                expected_origin=rp.origin,
            )
        except (InvalidRegistrationResponse, InvalidJSONStructure, ValueError) as exc:
            raise ValidationError("passkey", f"the passkey was not accepted ({exc})") from None
        factor = Factor(
            id=new_id("factor"),
            user_id=user.id,
            kind="passkey",
            name=_name(name, "Passkey"),
            credential_id=bytes_to_base64url(verified.credential_id),
            public_key=bytes_to_base64url(verified.credential_public_key),
            sign_count=verified.sign_count,
            created_at=tx.now,
        )
        store.insert_factor(tx.conn, factor)
        _audit(tx, actor, user, "factor.added", kind="passkey", factor_id=factor.id)
    return Enrolled(factor)


def authentication_options(
    app: Lockbox, rp: RelyingParty, *, purpose: str, session_id: str | None, user_id: str | None
) -> Ceremony:
    """Options to sign in with any passkey of this site (``user_id`` None) or of one person."""
    with app.tx() as tx:
        allowed = (
            [
                PublicKeyCredentialDescriptor(id=base64url_to_bytes(f.credential_id or ""))
                for f in store.factors_of(tx.conn, user_id, "passkey")
            ]
            if user_id
            else []
        )
        options = webauthn.generate_authentication_options(
            rp_id=rp.id,
            allow_credentials=allowed,
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        handle = _keep_challenge(tx, options.challenge, purpose, session_id, user_id)
    return Ceremony(webauthn.options_to_json(options), handle)


def check_passkey(
    app: Lockbox,
    rp: RelyingParty,
    *,
    purpose: str,
    session_id: str | None,
    handle: str,
    credential: str,
) -> User:
    """The person whose (still registered) passkey signed this challenge."""
    refused = AuthenticationFailed("this passkey is not registered with Lockbox (any more)")
    with app.tx() as tx:
        data = _take_challenge(tx, handle, purpose, session_id)
        parsed = _credential_json(credential)
        raw_id = parsed.get("rawId") or parsed.get("id")
        factor = store.factor_by_credential(tx.conn, str(raw_id)) if raw_id else None
        if factor is None or factor.kind != "passkey":
            raise refused
        if data.get("user_id") and data["user_id"] != factor.user_id:
            raise refused
        try:
            verified = webauthn.verify_authentication_response(
                credential=parsed,
                expected_challenge=base64url_to_bytes(str(data["challenge"])),
                expected_rp_id=rp.id,
                expected_origin=rp.origin,
                credential_public_key=base64url_to_bytes(factor.public_key or ""),
                credential_current_sign_count=factor.sign_count,
            )
        except (InvalidAuthenticationResponse, InvalidJSONStructure, ValueError):
            raise refused from None
        store.use_passkey(tx.conn, factor.id, verified.new_sign_count, tx.now)
        user = repo.get_user(tx.conn, factor.user_id)
    if user is None or not user.active:
        raise refused
    return user


def _credential_json(value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        raise ValidationError("credential", "the browser sent no passkey") from None
    if not isinstance(parsed, dict):
        raise ValidationError("credential", "the browser sent no passkey")
    return parsed


STRONG_BY_KIND: Final = {"totp": authn.PASSWORD_TOTP, "passkey": authn.PASSKEY}
