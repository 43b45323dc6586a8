"""Single sign-on through the organisation's OpenID Connect provider, and its settings.

One configuration for provider staff (scope ``provider``) and one per tenant: issuer,
client id and secret, the e-mail domains it may sign in, the claim carrying groups and
the groups → roles map, just-in-time provisioning (off by default), "require single
sign-on" and "require a second factor (or single sign-on) for approvers and admins".
Only a tenant's own admins set its configuration: a provider admin who could point a
customer's sign-in at an identity provider of their own could approve their own access.

The flow is the authorization code flow with PKCE (S256), ``state`` and ``nonce``:
:func:`start` keeps state, nonce and code verifier server-side (a flow row found by the
SHA-256 of ``state``) bound to the browser by a cookie; :func:`complete` redeems the
code, checks the ID token (signature from the provider's key set found by discovery,
issuer, audience, nonce, expiry and issue time on the Lockbox clock) and then who may
sign in. Authlib provides PKCE and tokens, joserfc (Authlib's JOSE library) the JWS.
Every refusal is a :class:`SignInRefused` with a stable ``reason`` and an audit record
in the tenant's chain (staff: the log).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import httpx
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from lockbox.domain import authn
from lockbox.domain.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    SignInRefused,
    ValidationError,
)
from lockbox.domain.ids import new_id
from lockbox.domain.instants import format_instant
from lockbox.domain.permissions import Intent, authorize
from lockbox.domain.roles import Principal, Role, Side
from lockbox.domain.tenant import validate_domains
from lockbox.domain.user import User
from lockbox.service import grant_feed, sessions
from lockbox.service.app import Lockbox, Tx
from lockbox.service.sessions import SessionPolicy, SignedIn, WebSession
from lockbox.service.tenants import load_tenant
from lockbox.store import repositories as repo
from lockbox.store import sign_in as store
from lockbox.store.sign_in import PROVIDER_SCOPE, Flow, SignInSettings

FLOW_TTL: Final = timedelta(minutes=10)
LEEWAY: Final = 60  # seconds of clock skew tolerated on exp / iat
HTTP_TIMEOUT: Final = 10.0
CACHE_SECONDS: Final = 600
SCOPES: Final = "openid email profile"
ALGORITHMS: Final = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
SETTABLE: Final = frozenset(
    {
        "enabled",
        "issuer",
        "client_id",
        "client_secret",
        "email_domains",
        "groups_claim",
        "role_map",
        "jit",
        "require_sso",
        "require_second_factor",
    }
)

#: What a person is told for each refusal (the audit record keeps the reason code).
MESSAGES: Final = {
    "state": "this sign-in link is not valid here (it expired, was used already, or was "
    "started in another browser); start again",
    "provider_error": "your organisation's sign-in service did not sign you in",
    "provider_unreachable": "your organisation's sign-in service cannot be reached; try "
    "again later",
    "token": "your organisation's sign-in service answered with an ID token Lockbox cannot "
    "trust (its signature does not check out)",
    "issuer": "the ID token comes from another issuer than the one configured",
    "audience": "the ID token was issued for another application",
    "nonce": "the ID token does not belong to this sign-in (wrong nonce)",
    "expired": "the ID token has expired; sign in again",
    "not_yet_valid": "the ID token is dated in the future; check the clocks and sign in again",
    "max_age": "your organisation's sign-in service did not ask you to sign in again",
    "email_unverified": "your organisation's sign-in service does not confirm your e-mail "
    "address is verified",
    "domain": "your e-mail domain may not sign in through this organisation",
    "unknown_user": "there is no Lockbox account for your e-mail address; ask an "
    "administrator of your organisation to add you",
    "deactivated": "your Lockbox account is deactivated",
    "foreign_tenant": "your Lockbox account belongs to another organisation: sign in "
    "through your own organisation",
    "no_role": "your groups give you no role in Lockbox; ask an administrator of your organisation",
    "wrong_person": "you signed in as someone else than the person of this session",
    "no_sso": "single sign-on is not set up for this address; sign in with your password",
}


def _refuse(reason: str) -> SignInRefused:
    return SignInRefused(MESSAGES[reason], reason=reason)


# -- settings ----------------------------------------------------------------------------------


def _scope(
    tx: Tx, actor: Principal, tenant_ref: str | None, *, change: bool
) -> tuple[str, str | None]:
    """(scope, tenant id) after checking who may read or change it."""
    if tenant_ref is None:
        authorize(actor, Intent.USER_MANAGE, kind="user", tenant_id=None)
        if actor.side is not Side.PROVIDER:
            raise PermissionDenied("only provider admins set how staff sign in")
        return PROVIDER_SCOPE, None
    tenant = load_tenant(tx, actor, tenant_ref, domains=True)
    authorize(actor, Intent.USER_MANAGE, kind="tenant", tenant_id=tenant.id)
    if change and actor.side is not Side.CUSTOMER:
        raise PermissionDenied(
            "only the organisation's own tenant admins set how its people sign in"
        )
    return tenant.id, tenant.id


def get_config(app: Lockbox, actor: Principal, tenant_ref: str | None) -> SignInSettings:
    with app.read() as tx:
        scope, tenant_id = _scope(tx, actor, tenant_ref, change=False)
        return store.get_settings(tx.conn, scope) or SignInSettings(
            scope=scope, tenant_id=tenant_id
        )


def view(settings: SignInSettings) -> dict[str, Any]:
    """The settings as shown anywhere: the secret only as "set" / "not set"."""
    return {
        "scope": "provider" if settings.scope == PROVIDER_SCOPE else "tenant",
        "tenant_id": settings.tenant_id,
        "enabled": settings.sso_enabled,
        "issuer": settings.issuer,
        "client_id": settings.client_id,
        "client_secret": "set" if settings.client_secret else "not set",
        "email_domains": list(settings.email_domains),
        "groups_claim": settings.groups_claim,
        "role_map": settings.role_map,
        "jit": settings.jit,
        "require_sso": settings.require_sso,
        "require_second_factor": settings.require_second_factor,
        "version": settings.version,
        "updated_at": format_instant(settings.updated_at) if settings.updated_at else None,
    }


def validate_issuer(value: object) -> str:
    """An ``https://`` URL (``http://`` only on this machine, for development and tests)."""
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise ValidationError(
            "issuer", "must be the provider's issuer URL, e.g. https://login.example.com"
        )
    cleaned = value.strip()
    parts = urlsplit(cleaned)
    host = parts.hostname or ""
    loopback = host == "localhost" or _is_loopback(host)
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ValidationError("issuer", "must start with https://")
    if not host or parts.query or parts.fragment or any(ord(c) < 0x21 for c in cleaned):
        raise ValidationError("issuer", "must be a plain URL without query or fragment")
    return cleaned


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _plain(value: object, field: str, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > max_len:
        raise ValidationError(field, f"must be 1-{max_len} characters")
    if any(ord(c) < 0x20 for c in value):
        raise ValidationError(field, "must not contain control characters")
    return value.strip()


def _flag(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field, "must be true or false")
    return value


def set_config(
    app: Lockbox,
    actor: Principal,
    tenant_ref: str | None,
    changes: dict[str, Any],
    *,
    expected_version: int | None = None,
) -> SignInSettings:
    """Change some settings; the client secret is write-only (audited as "changed" only)."""
    unknown = set(changes) - SETTABLE
    if unknown:
        raise ValidationError(sorted(unknown)[0], "is not a sign-in setting")
    with app.tx() as tx:
        scope, tenant_id = _scope(tx, actor, tenant_ref, change=True)
        current = store.get_settings(tx.conn, scope, lock=True)
        base = current or SignInSettings(scope=scope, tenant_id=tenant_id)
        if expected_version is not None and expected_version != base.version:
            raise Conflict("the sign-in settings changed since you read them; reload them")
        new = _apply(tx, base, changes, tenant_id)
        before, after = view(base), view(new)
        diff = {
            k: {"from": before[k], "to": after[k]}
            for k in after
            if k not in ("version", "updated_at") and before[k] != after[k]
        }
        if "client_secret" in changes and changes["client_secret"] != base.client_secret:
            diff["client_secret"] = {"from": "(hidden)", "to": "changed"}
        if not diff:
            return base
        new = replace(new, updated_at=tx.now, updated_by=actor.id, version=base.version + 1)
        store.put_settings(tx.conn, new, exists=current is not None)
        if tenant_id:
            tx.audit(
                tenant_id=tenant_id,
                actor=actor,
                operation="sign_in.settings_changed",
                details={"changes": diff},
            )
    return new


def _apply(
    tx: Tx, base: SignInSettings, changes: dict[str, Any], tenant_id: str | None
) -> SignInSettings:
    new = base
    if "issuer" in changes:
        new = replace(new, issuer=validate_issuer(changes["issuer"]) if changes["issuer"] else None)
    if "client_id" in changes:
        value = changes["client_id"]
        new = replace(new, client_id=_plain(value, "client_id", 200) if value else None)
    if "client_secret" in changes:
        value = changes["client_secret"]
        new = replace(new, client_secret=_plain(value, "client_secret", 500) if value else None)
    if "email_domains" in changes:
        domains = validate_domains(list(changes["email_domains"] or []))
        if tenant_id:
            tenant = repo.get_tenant(tx.conn, tenant_id, domains=True)
            owned = set(tenant.email_domains) if tenant else set()
            for i, d in enumerate(domains):
                if d not in owned:
                    raise ValidationError(
                        f"email_domains[{i}]", f"{d} is not one of your organisation's domains"
                    )
        new = replace(new, email_domains=domains)
    if "groups_claim" in changes:
        new = replace(new, groups_claim=_plain(changes["groups_claim"], "groups_claim", 100))
    if "role_map" in changes:
        new = replace(
            new, role_map=authn.parse_role_map(changes["role_map"] or {}, customer=bool(tenant_id))
        )
    if "jit" in changes:
        new = replace(new, jit=_flag(changes["jit"], "jit"))
    if "require_sso" in changes:
        new = replace(new, require_sso=_flag(changes["require_sso"], "require_sso"))
    if "require_second_factor" in changes:
        flag = _flag(changes["require_second_factor"], "require_second_factor")
        new = replace(new, require_second_factor=flag)
    if "enabled" in changes:
        new = replace(new, sso_enabled=_flag(changes["enabled"], "enabled"))
    if new.sso_enabled and not (new.issuer and new.client_id and new.client_secret):
        raise ValidationError(
            "enabled", "set the issuer, client id and client secret before turning it on"
        )
    if new.sso_enabled and not tenant_id and not new.email_domains:
        raise ValidationError("email_domains", "say which e-mail domains staff sign in with")
    if new.require_sso and not new.sso_enabled:
        raise ValidationError("require_sso", "turn single sign-on on before requiring it")
    if new.jit and not new.role_map:
        raise ValidationError(
            "jit", "map groups to roles first: new people get the roles of their groups"
        )
    return new


# -- talking to the provider ----------------------------------------------------------------


class _Cache:
    """Discovery documents and key sets, kept a few minutes (a key set reloads on a new kid)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, dict[str, Any]]] = {}

    def get(self, url: str, *, fresh: bool = False) -> dict[str, Any]:
        with self._lock:
            hit = self._items.get(url)
        if hit and not fresh and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        try:
            answer = httpx.get(url, timeout=HTTP_TIMEOUT, follow_redirects=False)
            answer.raise_for_status()
            data = answer.json()
        except (httpx.HTTPError, ValueError):
            raise _refuse("provider_unreachable") from None
        if not isinstance(data, dict):
            raise _refuse("provider_unreachable")
        with self._lock:
            self._items[url] = (time.monotonic(), data)
        return data

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


CACHE = _Cache()


def discover(issuer: str) -> dict[str, Any]:
    metadata = CACHE.get(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if str(metadata.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise _refuse("issuer")
    return metadata


# -- the flow --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    url: str
    browser_secret: str  # for a cookie: ties the round trip to this browser


def _flow_id(state: str) -> str:
    return hashlib.sha256(("oidc:" + state).encode()).hexdigest()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def find_scope(app: Lockbox, email: str) -> SignInSettings:
    """The configuration that signs in ``email``: its domain's tenant, else the provider's."""
    domain = email.strip().rpartition("@")[2].lower() if "@" in email else ""
    if not domain:
        raise ValidationError("email", "enter your e-mail address, e.g. paula@contoso.com")
    with app.read() as tx:
        found = [s for s in store.sso_scopes_for_domain(tx.conn, domain) if s.sso_ready]
        if not found:
            # A tenant's own domains count when its configuration lists none.
            owner = repo.domain_owners(tx.conn, [domain]).get(domain)
            settings = store.get_settings(tx.conn, owner) if owner else None
            if settings and settings.sso_ready and not settings.email_domains:
                found = [settings]
    if not found:
        raise _refuse("no_sso")
    found.sort(key=lambda s: s.scope == PROVIDER_SCOPE)  # a tenant's before the staff's
    return found[0]


def scope_settings(app: Lockbox, scope: str) -> SignInSettings | None:
    with app.read() as tx:
        return store.get_settings(tx.conn, scope)


def start(
    app: Lockbox,
    settings: SignInSettings,
    *,
    redirect_uri: str,
    next_url: str | None,
    purpose: str = "signin",
    session_id: str | None = None,
    login_hint: str | None = None,
    max_age: int | None = None,
) -> Started:
    """Where to send the browser: the provider's authorization endpoint, with PKCE."""
    if not settings.sso_ready or not settings.issuer or not settings.client_id:
        raise _refuse("no_sso")
    metadata = discover(settings.issuer)
    endpoint = str(metadata.get("authorization_endpoint") or "")
    if not endpoint.startswith(("https://", "http://")):
        raise _refuse("provider_unreachable")
    state, nonce, verifier = generate_token(43), generate_token(43), generate_token(64)
    browser = generate_token(43)
    with app.tx() as tx:
        store.insert_flow(
            tx.conn,
            Flow(
                id=_flow_id(state),
                kind="oidc",
                scope=settings.scope,
                session_id=session_id,
                data={
                    "nonce": nonce,
                    "verifier": verifier,
                    "next": next_url,
                    "purpose": purpose,
                    "browser": _digest(browser),
                    "redirect_uri": redirect_uri,
                    "max_age": max_age,
                },
                created_at=tx.now,
                expires_at=tx.now + FLOW_TTL,
            ),
        )
    params = {
        "response_type": "code",
        "client_id": settings.client_id,
        "redirect_uri": redirect_uri,
        "scope": SCOPES,
        "state": state,
        "nonce": nonce,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    if login_hint:
        params["login_hint"] = login_hint
    if max_age is not None:
        params["max_age"] = str(max_age)
        params["prompt"] = "login"
    joiner = "&" if "?" in endpoint else "?"
    return Started(endpoint + joiner + urlencode(params), browser)


@dataclass(frozen=True)
class Completed:
    """A finished round trip: a new session (sign-in) or a refreshed one (step-up)."""

    next_url: str | None
    signed_in: SignedIn | None = None
    session: WebSession | None = None


def complete(
    app: Lockbox,
    *,
    state: str | None,
    code: str | None,
    error: str | None,
    browser_secret: str | None,
    client_ip: str | None,
    user_agent: str | None,
    session: WebSession | None,
    policy: SessionPolicy | None = None,
) -> Completed:
    """The provider sent the browser back: check everything, then sign in (or step up)."""
    flow = None
    now = app.now()
    if state:
        with app.tx() as tx:
            flow = store.take_flow(tx.conn, _flow_id(state), "oidc")
            now = tx.now
    if (
        flow is None
        or flow.expires_at <= now
        or not browser_secret
        or not hmac.compare_digest(str(flow.data.get("browser", "")), _digest(browser_secret))
    ):
        scope_tenant = flow.scope if flow and flow.scope != PROVIDER_SCOPE else None
        sessions.record_refusal(app, scope_tenant, "state", {}, client_ip)
        raise _refuse("state")
    settings = scope_settings(app, flow.scope or "")
    tenant_id = settings.tenant_id if settings else None
    try:
        if settings is None or not settings.sso_ready:
            raise _refuse("no_sso")
        if error or not code:
            raise _refuse("provider_error")
        claims = _redeem(app, settings, flow, code)
        if flow.data.get("purpose") == "reauth":
            return _step_up(app, settings, flow, claims, session)
        return _sign_in(app, settings, flow, claims, client_ip, user_agent, policy)
    except SignInRefused as exc:
        details: dict[str, Any] = {"issuer": settings.issuer if settings else None}
        email = exc.extra.get("email")
        if isinstance(email, str):
            details["email"] = email
        sessions.record_refusal(app, tenant_id, exc.reason, details, client_ip)
        raise


def _redeem(app: Lockbox, settings: SignInSettings, flow: Flow, code: str) -> dict[str, Any]:
    """Exchange the code (with the PKCE verifier) and check the ID token."""
    metadata = discover(settings.issuer or "")
    endpoint = str(metadata.get("token_endpoint") or "")
    methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": str(flow.data.get("redirect_uri", "")),
        "code_verifier": str(flow.data.get("verifier", "")),
    }
    auth: tuple[str, str] | None = None
    if "client_secret_basic" in methods:
        auth = (settings.client_id or "", settings.client_secret or "")
    else:
        body.update(client_id=settings.client_id or "", client_secret=settings.client_secret or "")
    try:
        answer = httpx.post(endpoint, data=body, auth=auth, timeout=HTTP_TIMEOUT)
        tokens = answer.json()
    except (httpx.HTTPError, ValueError):
        raise _refuse("provider_unreachable") from None
    if answer.status_code != 200 or not isinstance(tokens, dict) or "id_token" not in tokens:
        raise _refuse("provider_error")
    return check_id_token(
        str(tokens["id_token"]),
        settings,
        nonce=str(flow.data.get("nonce", "")),
        now=app.now(),
        max_age=flow.data.get("max_age"),
    )


def _key_set(settings: SignInSettings, *, fresh: bool = False) -> KeySet:
    metadata = discover(settings.issuer or "")
    uri = str(metadata.get("jwks_uri") or "")
    try:
        return KeySet.import_key_set(CACHE.get(uri, fresh=fresh))  # type: ignore[arg-type]
    except (JoseError, ValueError, KeyError, TypeError):
        raise _refuse("token") from None


def check_id_token(
    id_token: str,
    settings: SignInSettings,
    *,
    nonce: str,
    now: datetime,
    max_age: object = None,
    keys: KeySet | None = None,
) -> dict[str, Any]:
    """The ID token's claims, once its signature, issuer, audience, nonce and times check out."""
    claims: dict[str, Any] | None = None
    for fresh in (False, True):  # a key set reloads once (the provider rotated its keys)
        key_set = keys or _key_set(settings, fresh=fresh)
        try:
            claims = dict(jwt.decode(id_token, key_set, algorithms=ALGORITHMS).claims)
            break
        except (JoseError, ValueError, KeyError, TypeError):
            if keys is not None or fresh:
                raise _refuse("token") from None
    if claims is None:
        raise _refuse("token")
    if str(claims.get("iss", "")).rstrip("/") != (settings.issuer or "").rstrip("/"):
        raise _refuse("issuer")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if settings.client_id not in audiences:
        raise _refuse("audience")
    if len(audiences) > 1 and claims.get("azp") != settings.client_id:
        raise _refuse("audience")
    if not nonce or not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        raise _refuse("nonce")
    stamp = int(now.timestamp())
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise _refuse("token")
    if exp <= stamp - LEEWAY:
        raise _refuse("expired")
    if iat > stamp + LEEWAY:
        raise _refuse("not_yet_valid")
    if not isinstance(claims.get("sub"), str):
        raise _refuse("token")
    if isinstance(max_age, int):
        # A step-up asked the provider for a fresh sign-in: its own clock says when it was
        # (auth_time) and when the token was issued (iat); compare them, not our clock.
        auth_time = claims.get("auth_time")
        if not isinstance(auth_time, int | float) or iat - auth_time > max_age + LEEWAY:
            raise _refuse("max_age")
    return claims


def _identity(
    settings: SignInSettings, claims: dict[str, Any], tenant_domains: tuple[str, ...]
) -> str:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise _refuse("email_unverified")
    verified = claims.get("email_verified")
    if verified is not True and verified != "true":
        raise SignInRefused(MESSAGES["email_unverified"], reason="email_unverified", email=email)
    allowed = settings.email_domains or tenant_domains
    if email.rpartition("@")[2].lower() not in allowed:
        raise SignInRefused(MESSAGES["domain"], reason="domain", email=email)
    return email


def _sign_in(
    app: Lockbox,
    settings: SignInSettings,
    flow: Flow,
    claims: dict[str, Any],
    client_ip: str | None,
    user_agent: str | None,
    policy: SessionPolicy | None,
) -> Completed:
    rules = policy or SessionPolicy.from_settings()
    no_role = False
    with app.tx() as tx:
        tenant = (
            repo.get_tenant(tx.conn, settings.tenant_id, domains=True)
            if settings.tenant_id
            else None
        )
        email = _identity(settings, claims, tenant.email_domains if tenant else ())
        refused = _who(tx, settings, claims, email)
        if isinstance(refused, str):
            no_role = True
        else:
            user = refused
            signed = sessions.open_session(
                tx,
                user,
                method=authn.SSO,
                provider=settings.issuer,
                client_ip=client_ip,
                user_agent=user_agent,
                lifetime=rules.lifetime,
            )
    if no_role:  # after the commit: the roles the groups took away stay taken away
        raise SignInRefused(MESSAGES["no_role"], reason="no_role", email=email)
    return Completed(next_url=flow.data.get("next"), signed_in=signed)


def _who(tx: Tx, settings: SignInSettings, claims: dict[str, Any], email: str) -> User | str:
    """The Lockbox user behind the claims (created if provisioning is on), roles in sync."""
    customer = settings.tenant_id is not None
    user = repo.get_user(tx.conn, email)
    mapped = authn.roles_from_groups(claims.get(settings.groups_claim), settings.role_map)
    if user is None:
        if not settings.jit:
            raise SignInRefused(MESSAGES["unknown_user"], reason="unknown_user", email=email)
        if not mapped:
            raise SignInRefused(MESSAGES["no_role"], reason="no_role", email=email)
        name = claims.get("name")
        user = User(
            id=new_id("user"),
            email=email,
            display_name=(name if isinstance(name, str) and name.strip() else email.split("@")[0])[
                :200
            ],
            side=Side.CUSTOMER if customer else Side.PROVIDER,
            tenant_id=settings.tenant_id,
            roles=mapped,
            created_at=tx.now,
        )
        repo.insert_user(tx.conn, user, None)
        if settings.tenant_id:
            tx.audit(
                tenant_id=settings.tenant_id,
                actor=Principal.system(),
                operation="user.provisioned",
                details={
                    "user_id": user.id,
                    "email": email,
                    "roles": sorted(mapped),
                    "issuer": settings.issuer,
                },
            )
        return user
    if (customer and user.tenant_id != settings.tenant_id) or (
        not customer and user.side is not Side.PROVIDER
    ):
        raise SignInRefused(MESSAGES["foreign_tenant"], reason="foreign_tenant", email=email)
    if not user.active:
        raise SignInRefused(MESSAGES["deactivated"], reason="deactivated", email=email)
    if settings.role_map and mapped != user.roles:
        allowed_here = {r for r in mapped if (r.side is Side.CUSTOMER) == customer}
        synced = frozenset(allowed_here) | frozenset(
            r for r in user.roles if r is Role.RESOURCE_SERVICE
        )
        repo.set_roles(tx.conn, user.id, synced)
        grant_feed.on_user_change(tx, user, replace(user, roles=synced))
        if settings.tenant_id:
            tx.audit(
                tenant_id=settings.tenant_id,
                actor=Principal.system(),
                operation="user.roles_synced",
                details={
                    "user_id": user.id,
                    "from": sorted(user.roles),
                    "to": sorted(synced),
                    "issuer": settings.issuer,
                },
            )
        user = replace(user, roles=synced)
    if not user.roles:
        return "no_role"
    return user


def _step_up(
    app: Lockbox,
    settings: SignInSettings,
    flow: Flow,
    claims: dict[str, Any],
    session: WebSession | None,
) -> Completed:
    if session is None or session.id != flow.session_id:
        raise _refuse("state")
    email = claims.get("email")
    if not isinstance(email, str) or email.strip().lower() != session.user.email.lower():
        raise SignInRefused(MESSAGES["wrong_person"], reason="wrong_person", email=str(email))
    if claims.get("email_verified") not in (True, "true"):
        raise _refuse("email_unverified")
    fresh = sessions.reauthenticated(app, session, authn.SSO, settings.issuer)
    return Completed(next_url=flow.data.get("next"), session=fresh)


def start_for_user(
    app: Lockbox, session: WebSession, *, redirect_uri: str, next_url: str | None, max_age: int
) -> Started:
    """A step-up round trip for a signed-in person, through their organisation's provider."""
    settings = scope_settings(app, sessions.scope_of(session.user))
    if settings is None or not settings.sso_ready:
        raise NotFound("single sign-on is not set up for your organisation")
    return start(
        app,
        settings,
        redirect_uri=redirect_uri,
        next_url=next_url,
        purpose="reauth",
        session_id=session.id,
        login_hint=session.user.email,
        max_age=max_age,
    )


def sso_available(app: Lockbox, user: User) -> bool:
    settings = scope_settings(app, sessions.scope_of(user))
    return bool(settings and settings.sso_ready)
