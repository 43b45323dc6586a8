"""Sign-in for people: server-side sessions of the admin center, and throttling.

A session is a row; the browser holds only a random secret whose SHA-256 digest
finds the row, so sessions are revocable one by one (sign-out, a password
change, an administrator) and a copy of the database opens none. Every sign-in
creates a new session (the id is never carried over from before), which
expires after :attr:`SessionPolicy.idle` without use and after
:attr:`SessionPolicy.lifetime` in any case. Each session has its own CSRF
secret for the synchronizer tokens of its forms.

Failed sign-ins are counted per account (the address as typed, whether or not
it exists, so a lock-out tells nobody which addresses exist) and per client
address; past the limit the key is locked for a while. Sign-in, sign-out,
failures and lock-outs of a customer's people are in that tenant's audit chain,
so the customer sees who acted in its admin center.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lockbox.config import Settings, get_settings
from lockbox.domain import authn
from lockbox.domain.errors import (
    AuthenticationFailed,
    NotFound,
    RateLimited,
    SignInRefused,
    ValidationError,
)
from lockbox.domain.ids import new_id, validate_ref
from lockbox.domain.instants import format_instant
from lockbox.domain.permissions import Intent, authorize
from lockbox.domain.roles import Principal
from lockbox.domain.user import User
from lockbox.service import passwords
from lockbox.service.app import Lockbox, Tx
from lockbox.store import repositories as repo
from lockbox.store import sign_in as auth_store
from lockbox.store import web_sessions as store
from lockbox.store.web_sessions import SessionRow, ThrottleRow

#: ``last_seen_at`` is written at most this often, so reading pages is not writing.
TOUCH_INTERVAL = timedelta(minutes=1)
USER_AGENT_MAX = 200
_WRONG = "wrong e-mail or password"


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    lifetime: timedelta = timedelta(hours=12)
    account_limit: int = 5
    ip_limit: int = 20
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SessionPolicy:
        s = settings or get_settings()
        return cls(
            idle=timedelta(minutes=s.session_idle_minutes),
            lifetime=timedelta(hours=s.session_max_hours),
            account_limit=s.signin_account_limit,
            ip_limit=s.signin_ip_limit,
            window=timedelta(minutes=s.signin_window_minutes),
            lockout=timedelta(minutes=s.signin_lockout_minutes),
        )


@dataclass(frozen=True)
class WebSession:
    """A live session and the person behind it (acting with credential ``session:<id>``)."""

    row: SessionRow
    user: User
    principal: Principal

    @property
    def id(self) -> str:
        return self.row.id

    def csrf_ok(self, token: object) -> bool:
        """Whether a form's synchronizer token is this session's (constant time)."""
        return isinstance(token, str) and hmac.compare_digest(
            token.encode(), self.row.csrf_secret.encode()
        )


@dataclass(frozen=True)
class SignedIn:
    session: WebSession
    secret: str  # for the cookie; never stored


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _keys(email: str, client_ip: str | None) -> tuple[str, str | None]:
    account = "account:" + email.strip().lower()[:320]
    return account, (f"ip:{client_ip[:64]}" if client_ip else None)


def _retry_after(rows: dict[str, ThrottleRow], now: datetime) -> int | None:
    locked = [r.locked_until for r in rows.values() if r.locked_until and r.locked_until > now]
    if not locked:
        return None
    return math.ceil((max(locked) - now).total_seconds())


def sign_in(
    app: Lockbox,
    email: str,
    password: str,
    *,
    client_ip: str | None,
    user_agent: str | None = None,
    policy: SessionPolicy | None = None,
) -> SignedIn:
    """Check the password and open a new session; throttled per account and per address."""
    rules = policy or SessionPolicy.from_settings()
    email = email if isinstance(email, str) else ""
    if email:
        validate_ref(email, "email")  # before it becomes a throttle key in the database
    account_key, ip_key = _keys(email, client_ip)
    keys = [k for k in (account_key, ip_key) if k]
    with app.read() as tx:
        wait = _retry_after(store.throttle_rows(tx.conn, keys), tx.now)
    if wait is not None:
        raise RateLimited(_locked_message(wait), retry_after=wait)
    try:
        principal = passwords.verify_password(app, email, password)
    except AuthenticationFailed:
        _failed(app, email, account_key, ip_key, client_ip, rules)
        raise AuthenticationFailed(_WRONG) from None
    with app.tx() as tx:
        user = repo.get_user(tx.conn, principal.id)
        if user is None or not user.active:
            raise AuthenticationFailed(_WRONG)
        store.clear_throttle(tx.conn, account_key)
        rule = auth_store.get_settings(tx.conn, scope_of(user)) or auth_store.SignInSettings(
            scope=scope_of(user), tenant_id=user.tenant_id
        )
        refused = rule.sso_ready and rule.require_sso
        if not refused:
            stage: str | None = None
            if auth_store.factors_of(tx.conn, user.id):
                stage = "second_factor"  # a code or a passkey comes next
            elif authn.must_be_strong(user.roles, rule.require_second_factor):
                stage = "enrol"  # may only enrol a second factor until then
            return open_session(
                tx,
                user,
                method=authn.PASSWORD,
                provider=None,
                client_ip=client_ip,
                user_agent=user_agent,
                lifetime=PARTIAL_LIFETIME if stage == "second_factor" else rules.lifetime,
                stage=stage,
            )
    record_refusal(app, user.tenant_id, "sso_required", {"user_id": user.id}, client_ip)
    raise SignInRefused(SSO_REQUIRED, reason="sso_required")


#: A sign-in waiting for its second factor lives this long.
PARTIAL_LIFETIME = timedelta(minutes=10)
SSO_REQUIRED = (
    "your organisation signs in with single sign-on: use “Sign in with your organisation” "
    "below instead of your password"
)


def scope_of(user: User) -> str:
    """Whose sign-in rules apply to ``user``: its tenant's, or the provider's for staff."""
    return user.tenant_id or auth_store.PROVIDER_SCOPE


def open_session(
    tx: Tx,
    user: User,
    *,
    method: str,
    provider: str | None,
    client_ip: str | None,
    user_agent: str | None,
    lifetime: timedelta,
    stage: str | None = None,
) -> SignedIn:
    """A brand-new session (never an id from before) for ``user``, audited."""
    secret = secrets.token_urlsafe(32)
    row = SessionRow(
        id=new_id("session"),
        token_hash=digest(secret),
        user_id=user.id,
        csrf_secret=secrets.token_urlsafe(32),
        created_at=tx.now,
        last_seen_at=tx.now,
        expires_at=tx.now + lifetime,
        authenticated_at=tx.now,
        auth_method=method,
        revoked_at=None,
        client_ip=client_ip[:64] if client_ip else None,
        user_agent=(user_agent or "")[:USER_AGENT_MAX] or None,
        flash=None,
        auth_provider=provider,
        stage=stage,
    )
    store.insert_session(tx.conn, row)
    session = _web_session(row, user)
    if stage != "second_factor":  # a half sign-in is audited when it completes
        extra: dict[str, object] = {"method": method}
        if provider:
            extra["provider"] = provider
        if stage == "enrol":
            extra["must_enrol"] = True
        _audit(tx, session.principal, user, "session.signed_in", row, **extra)
    return SignedIn(session=session, secret=secret)


def sign_in_with_passkey(
    app: Lockbox,
    user: User,
    *,
    client_ip: str | None,
    user_agent: str | None,
    policy: SessionPolicy | None = None,
) -> SignedIn:
    """A passkey alone signs in (it is already two factors: the device and its unlock)."""
    rules = policy or SessionPolicy.from_settings()
    with app.tx() as tx:
        rule = auth_store.get_settings(tx.conn, scope_of(user))
        if not (rule and rule.sso_ready and rule.require_sso):
            return open_session(
                tx,
                user,
                method=authn.PASSKEY,
                provider=None,
                client_ip=client_ip,
                user_agent=user_agent,
                lifetime=rules.lifetime,
            )
    record_refusal(app, user.tenant_id, "sso_required", {"user_id": user.id}, client_ip)
    raise SignInRefused(SSO_REQUIRED, reason="sso_required")


def has_password(app: Lockbox, user_id: str) -> bool:
    with app.read() as tx:
        return repo.get_password_hash(tx.conn, user_id) is not None


def complete_second_factor(
    app: Lockbox,
    partial: WebSession,
    method: str,
    *,
    policy: SessionPolicy | None = None,
) -> SignedIn:
    """The second factor checked: the half session ends and a full one starts (new id)."""
    rules = policy or SessionPolicy.from_settings()
    with app.tx() as tx:
        store.revoke(tx.conn, partial.id, tx.now)
        user = repo.get_user(tx.conn, partial.user.id)
        if user is None or not user.active:
            raise AuthenticationFailed(_WRONG)
        return open_session(
            tx,
            user,
            method=method,
            provider=None,
            client_ip=partial.row.client_ip,
            user_agent=partial.row.user_agent,
            lifetime=rules.lifetime,
        )


def second_factor_failed(
    app: Lockbox, partial: WebSession, policy: SessionPolicy | None = None
) -> None:
    """A wrong code counts like a wrong password (the same lock-out)."""
    rules = policy or SessionPolicy.from_settings()
    account_key, ip_key = _keys(partial.user.email, partial.row.client_ip)
    _failed(app, partial.user.email, account_key, ip_key, partial.row.client_ip, rules)


def check_not_locked(app: Lockbox, email: str, client_ip: str | None) -> None:
    account_key, ip_key = _keys(email, client_ip)
    with app.read() as tx:
        wait = _retry_after(
            store.throttle_rows(tx.conn, [k for k in (account_key, ip_key) if k]), tx.now
        )
    if wait is not None:
        raise RateLimited(_locked_message(wait), retry_after=wait)


def reauthenticated(
    app: Lockbox, session: WebSession, method: str, provider: str | None
) -> WebSession:
    """The person proved who they are again (step-up): the session's sign-in time is now."""
    with app.tx() as tx:
        auth_store.set_session_auth(
            tx.conn, session.id, at=tx.now, method=method, provider=provider
        )
        if session.row.stage == "enrol":
            auth_store.set_stage(tx.conn, session.id, None)
        row = replace(
            session.row,
            authenticated_at=tx.now,
            auth_method=method,
            auth_provider=provider,
            last_seen_at=tx.now,
            stage=None,
        )
        fresh = _web_session(row, session.user)
        extra: dict[str, object] = {"method": method}
        if provider:
            extra["provider"] = provider
        _audit(tx, fresh.principal, session.user, "session.reauthenticated", row, **extra)
    return fresh


def record_refusal(
    app: Lockbox,
    tenant_id: str | None,
    reason: str,
    details: dict[str, Any],
    client_ip: str | None,
) -> None:
    """A refused sign-in, in the tenant's audit chain (staff have none: the log has it)."""
    from lockbox.service.app import log

    log.warning("sign-in refused: %s", reason)
    if not tenant_id:
        return
    with app.tx() as tx:
        if repo.get_tenant(tx.conn, tenant_id) is None:
            return
        tx.audit(
            tenant_id=tenant_id,
            actor=Principal.system(),
            operation="session.signin_refused",
            details={"reason": reason, "client_ip": client_ip, **details},
        )


# -- actions waiting for a step-up ------------------------------------------------------------

#: A confirmed action is replayed after re-authentication only within this time.
PENDING_TTL = timedelta(minutes=10)


def keep_pending_action(
    app: Lockbox, session: WebSession, path: str, fields: list[list[str]]
) -> None:
    """Remember the form the person confirmed, to carry it out once they proved who they are."""
    with app.tx() as tx:
        action = {"path": path[:500], "fields": fields[:50], "at": format_instant(tx.now)}
        auth_store.set_pending_action(tx.conn, session.id, action)


def take_pending_action(app: Lockbox, session: WebSession) -> dict[str, Any] | None:
    """The action waiting for this session (forgotten as it is read), if still recent."""
    with app.tx() as tx:
        current = store.by_id(tx.conn, session.id)
        action = current.pending_action if current else None
        if action is None:
            return None
        auth_store.set_pending_action(tx.conn, session.id, None)
    try:
        at = datetime.fromisoformat(str(action.get("at", "")).replace("Z", "+00:00"))
    except ValueError:
        return None
    if app.now() - at > PENDING_TTL:
        return None
    return action


# -- a tenant's sessions, for its admins ----------------------------------------------------


def revoke_session(app: Lockbox, actor: Principal, session_id: str) -> SessionRow:
    """An administrator ends one session of a person of theirs (or one of their own)."""
    from lockbox.service.users import load_user

    with app.tx() as tx:
        row = store.by_id(tx.conn, session_id)
        if row is None:
            raise NotFound("session not found")
        try:
            user = load_user(tx, actor, row.user_id, Intent.USER_VIEW)
        except NotFound:
            raise NotFound("session not found") from None
        if user.id != actor.id:
            authorize(actor, Intent.TOKEN_MANAGE, kind="user", tenant_id=user.tenant_id)
        if store.revoke(tx.conn, row.id, tx.now) and user.tenant_id:
            tx.audit(
                tenant_id=user.tenant_id,
                actor=actor,
                operation="session.revoked",
                details={"user_id": user.id, "session_id": row.id},
            )
        return row


def _failed(
    app: Lockbox,
    email: str,
    account_key: str,
    ip_key: str | None,
    client_ip: str | None,
    rules: SessionPolicy,
) -> None:
    """Count a failure on both keys (locking them past the limit) and audit it."""
    limits = {account_key: rules.account_limit}
    if ip_key:
        limits[ip_key] = rules.ip_limit
    with app.tx() as tx:
        found = store.throttle_rows(tx.conn, sorted(limits), lock=True)
        locked_now: dict[str, datetime] = {}
        counts: dict[str, int] = {}
        for key, limit in limits.items():
            old = found.get(key)
            fresh = old is None or tx.now - old.window_started_at >= rules.window
            failures = 1 if fresh or old is None else old.failures + 1
            until = old.locked_until if old and not fresh else None
            if failures >= limit and (until is None or until <= tx.now):
                until = tx.now + rules.lockout
                locked_now[key] = until
            counts[key] = failures
            store.put_throttle(
                tx.conn,
                ThrottleRow(
                    key=key,
                    failures=failures,
                    window_started_at=tx.now if fresh or old is None else old.window_started_at,
                    locked_until=until,
                ),
                exists=old is not None,
            )
        user = repo.get_user(tx.conn, email) if "@" in email else None
        if user is not None and user.tenant_id:
            details: dict[str, Any] = {
                "user_id": user.id,
                "client_ip": client_ip,
                "failures": counts[account_key],
            }
            tx.audit(
                tenant_id=user.tenant_id,
                actor=Principal.system(),
                operation="session.signin_failed",
                details=details,
            )
            if account_key in locked_now:
                tx.audit(
                    tenant_id=user.tenant_id,
                    actor=Principal.system(),
                    operation="session.locked_out",
                    details={
                        "user_id": user.id,
                        "client_ip": client_ip,
                        "until": format_instant(locked_now[account_key]),
                    },
                )
    if locked_now:
        from lockbox.service.app import log

        log.warning(
            "sign-in locked out: %s",
            ", ".join(k.split(":", 1)[0] for k in sorted(locked_now)),
        )


def _locked_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return (
        f"too many failed sign-ins; try again in {minutes} min "
        "(or ask your administrator for a password reset)"
    )


def authenticate(
    app: Lockbox,
    secret: str,
    policy: SessionPolicy | None = None,
    *,
    stages: frozenset[str] = frozenset(),
) -> WebSession:
    """The live session behind a cookie; every ended or unknown session is the same error.

    A sign-in that is not finished (``stage``) counts only where ``stages`` allows it.
    """
    rules = policy or SessionPolicy.from_settings()
    failure = AuthenticationFailed("your session has ended; please sign in again")
    if not isinstance(secret, str) or not 20 <= len(secret) <= 100:
        raise failure
    wanted = digest(secret)
    with app.read() as tx:
        row = store.by_hash(tx.conn, wanted)
        if row is None or not hmac.compare_digest(row.token_hash, wanted):
            raise failure
        now = tx.now
        if (
            row.revoked_at is not None
            or (row.stage is not None and row.stage not in stages)
            or now >= row.expires_at
            or now >= row.last_seen_at + rules.idle
        ):
            raise failure
        user = repo.get_user(tx.conn, row.user_id)
    if user is None or not user.active:
        raise failure
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        with app.tx() as tx:
            store.touch(tx.conn, row.id, now)
        row = replace(row, last_seen_at=now)
    return _web_session(row, user)


def _web_session(row: SessionRow, user: User) -> WebSession:
    principal = replace(
        user.principal(credential=f"session:{row.id}"),
        auth_time=row.authenticated_at,
        auth_method=row.auth_method,
        auth_provider=row.auth_provider,
    )
    if row.stage is not None:
        # Not signed in fully yet (a second factor to give or to enrol): no role acts.
        principal = replace(principal, roles=frozenset())
    return WebSession(row=row, user=user, principal=principal)


def sign_out(app: Lockbox, session: WebSession) -> None:
    with app.tx() as tx:
        if store.revoke(tx.conn, session.id, tx.now):
            _audit(tx, session.principal, session.user, "session.signed_out", session.row)


def revoke_user_sessions(app: Lockbox, actor: Principal, user_ref: str) -> int:
    """An administrator ends every session of a user of theirs (a lost laptop, a leaver)."""
    from lockbox.service.users import load_user

    with app.tx() as tx:
        user = load_user(tx, actor, user_ref, Intent.USER_VIEW)
        if user.id != actor.id:
            authorize(actor, Intent.TOKEN_MANAGE, kind="user", tenant_id=user.tenant_id)
        ended = store.revoke_for_user(tx.conn, user.id, tx.now)
        if ended and user.tenant_id:
            tx.audit(
                tenant_id=user.tenant_id,
                actor=actor,
                operation="session.revoked_all",
                details={"user_id": user.id, "sessions": ended},
            )
        return ended


def end_other_sessions(app: Lockbox, user_id: str, keep: str | None) -> int:
    """After a password change: every other session of the person ends."""
    with app.tx() as tx:
        return store.revoke_for_user(tx.conn, user_id, tx.now, keep=keep)


def purge(app: Lockbox, *, keep: timedelta = timedelta(days=30)) -> int:
    """Forget sessions that ended more than ``keep`` ago and stale sign-in counters.

    The audit chain keeps who signed in when; the rows themselves are only needed
    while a session could still be used (the worker calls this every round).
    """
    with app.tx() as tx:
        ended = store.purge_ended(tx.conn, tx.now - keep)
        store.purge_throttle(tx.conn, tx.now - timedelta(days=1))
        auth_store.purge_flows(tx.conn, tx.now)
    return ended


def list_sessions(app: Lockbox, actor: Principal) -> list[SessionRow]:
    with app.read() as tx:
        return store.for_user(tx.conn, actor.id)


# -- flash messages and preferences ---------------------------------------------------------


def add_flash(app: Lockbox, session: WebSession, kind: str, text: str) -> None:
    """A message for the next page (after a redirect), kept with the session."""
    with app.tx() as tx:
        current = store.by_id(tx.conn, session.id)
        messages = list(current.flash or []) if current else []
        messages.append([kind, text[:500]])
        store.set_flash(tx.conn, session.id, messages[-5:])


def take_flash(app: Lockbox, session: WebSession) -> list[tuple[str, str]]:
    if not session.row.flash:
        return []
    with app.tx() as tx:
        store.set_flash(tx.conn, session.id, None)
    return [(str(kind), str(text)) for kind, text in session.row.flash]


def set_time_zone(app: Lockbox, actor: Principal, zone: str | None) -> None:
    """A person's zone for pages; ``None`` returns to UTC refined by the browser."""
    if zone is not None:
        if not isinstance(zone, str) or len(zone) > 64:
            raise ValidationError("time_zone", "is not a time zone")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError("time_zone", f"{zone!r} is not a known time zone") from None
    with app.tx() as tx:
        repo.set_time_zone(tx.conn, actor.id, zone)


def _audit(
    tx: Tx, actor: Principal, user: User, operation: str, row: SessionRow, **extra: object
) -> None:
    if user.tenant_id:  # staff have no tenant chain
        tx.audit(
            tenant_id=user.tenant_id,
            actor=actor,
            operation=operation,
            details={
                "user_id": user.id,
                "session_id": row.id,
                "client_ip": row.client_ip,
                **extra,
            },
        )


@dataclass(frozen=True)
class TenantCredentials:
    """Every live session and API token of a tenant's people (rows with the person's e-mail)."""

    sessions: list[Any]
    tokens: list[Any]


def list_tenant_credentials(app: Lockbox, actor: Principal, tenant_id: str) -> TenantCredentials:
    """For the tenant's admins: who is signed in where, and which tokens work."""
    authorize(actor, Intent.TOKEN_MANAGE, kind="user", tenant_id=tenant_id)
    with app.read() as tx:
        rules = SessionPolicy.from_settings()
        live = [
            r
            for r in auth_store.sessions_of_tenant(tx.conn, tenant_id, tx.now)
            if r["stage"] != "second_factor" and r["last_seen_at"] + rules.idle > tx.now
        ]
        return TenantCredentials(live, auth_store.tokens_of_tenant(tx.conn, tenant_id))
