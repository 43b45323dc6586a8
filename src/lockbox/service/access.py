"""Enforcement use cases: access tokens, the online check, and engineer-action reports.

* :func:`issue_token` — the requester of an effectively approved request gets a
  short-lived signed token (see :mod:`lockbox.access.tokens`).
* :func:`check` — a resource service asks whether an engineer may perform an
  action on a resource of a tenant *now*; computed from the stored deadlines
  and the current time, never from what the sweeper recorded.
* reports of what engineers did are in :mod:`lockbox.service.access_reports`.

A resource service sees only what it is registered for (tenants, resource
prefixes, token audience; :mod:`lockbox.service.resource_services`): a check
outside that answers exactly like one about a tenant that does not exist.

Auditing choices: issuing a token is audited (``access.token_issued``);
*denied* checks are audited (``access.check_denied``) in the tenant's chain
when the tenant exists, so the customer sees attempts; allowed checks are not
audited, because the resource service reports the action itself
(``access.read`` / ``access.write``), which is what the customer wants to read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from lockbox import metrics
from lockbox.access import tokens as jwt_tokens
from lockbox.access.keys import ACCESS, AUDIT, PURPOSES
from lockbox.access.keys import jwks as jwk_set
from lockbox.config import Settings, get_settings
from lockbox.domain import text
from lockbox.domain.audit import PROVIDER_CHAIN
from lockbox.domain.errors import InvalidTransition, ValidationError
from lockbox.domain.ids import optional_id
from lockbox.domain.instants import format_instant
from lockbox.domain.lifecycle import State
from lockbox.domain.permissions import Intent, allows, authorize
from lockbox.domain.request import AccessRequest, DenyReason, check_access
from lockbox.domain.resource_service import ServiceScope
from lockbox.domain.resources import Action, in_scope, validate_resource
from lockbox.domain.roles import Principal
from lockbox.service import tokens
from lockbox.service.app import Lockbox, Tx
from lockbox.service.denials import Denial
from lockbox.service.denials import write as write_denials
from lockbox.service.requests import load_request
from lockbox.service.resource_services import scope_of
from lockbox.store import keys as keystore
from lockbox.store import repositories as repo
from lockbox.store import resource_services as service_store

#: Reasons a check answers with, allowed or not. Allowed: ``approved`` (the customer
#: approved) or ``lockbox_off`` (approved by a manager while the tenant's lockbox was off).
ALLOW_APPROVED = "approved"
ALLOW_LOCKBOX_OFF = "lockbox_off"
DENY_USER_INACTIVE = "user_inactive"
DENY_KEY_RETIRED = "key_retired"
AUDIENCE_MAX = 200
_RECENT = 20
"""How many of an engineer's latest requests on a tenant a denied check reads to explain
itself (``closed``, ``expired``…): only the explanation depends on it, never the answer."""


@dataclass(frozen=True)
class TokenConfig:
    issuer: str = "lockbox"
    audience: str = "lockbox-resource"
    ttl: timedelta = timedelta(minutes=5)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> TokenConfig:
        s = settings or get_settings()
        ttl = timedelta(seconds=s.access_token_ttl_seconds)
        ttl = max(jwt_tokens.MIN_TTL, min(jwt_tokens.MAX_TTL, ttl))
        return cls(issuer=s.issuer, audience=s.access_token_audience, ttl=ttl)


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    kid: str
    request_id: str
    expires_at: datetime
    claims: dict[str, Any]


@dataclass(frozen=True)
class CheckResult:
    allowed: bool
    reason: str
    request: AccessRequest | None
    checked_at: datetime
    state: State | None = None  # the request's effective state at checked_at

    def as_dict(self) -> dict[str, Any]:
        r = self.request
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "request_id": r.id if r else None,
            "state": self.state.value if self.state else None,
            "access_level": r.access_level.value if r else None,
            "resources": list(r.resources) if r else [],
            "access_deadline": _iso(r.access_deadline) if r and r.access_deadline else None,
            "checked_at": _iso(self.checked_at),
        }


_iso = format_instant


def _action(value: object, field_name: str = "action") -> Action:
    try:
        return Action(str(value))
    except ValueError:
        raise ValidationError(field_name, "must be 'read' or 'write'") from None


# -- signing keys ------------------------------------------------------------------------


def max_token_ttl(config: TokenConfig | None = None) -> timedelta:
    return (config or TokenConfig.from_settings()).ttl


def jwks(app: Lockbox) -> dict[str, Any]:
    """The public JWK Set; creates the first signing key if there is none yet."""
    ensure_signing_key(app)
    with app.read() as tx:
        return jwk_set(keystore.published_keys(tx.conn, tx.now))


def list_keys(app: Lockbox, actor: Principal, purpose: str | None = ACCESS) -> list[dict[str, Any]]:
    """The keys of ``purpose`` (None: access and audit keys alike), newest first."""
    authorize(actor, Intent.KEYS_MANAGE, kind="keys", tenant_id=None)
    if purpose is not None:
        _purpose(purpose)
    with app.read() as tx:
        return [k.summary(tx.now) for k in keystore.all_keys(tx.conn, purpose)]


def _purpose(value: str) -> str:
    if value not in PURPOSES:
        raise ValidationError("purpose", f"must be one of {', '.join(PURPOSES)}")
    return value


def ensure_signing_key(app: Lockbox) -> str:
    """Make sure a signing key exists (server start, first use); returns its kid."""
    with app.read() as tx:
        key = keystore.current_key(tx.conn)
    if key is not None:
        return key.kid
    with app.tx() as tx:
        return keystore.ensure_key(tx.conn, tx.now).kid


def rotate_keys(
    app: Lockbox,
    actor: Principal,
    config: TokenConfig | None = None,
    *,
    purpose: str = ACCESS,
) -> dict[str, Any]:
    """A new key signs from now on. A previous access key stays published for one token
    lifetime; a previous audit key stays published for good (what it signed must stay
    verifiable), valid until this instant. Recorded in the provider's chain."""
    authorize(actor, Intent.KEYS_MANAGE, kind="keys", tenant_id=None)
    _purpose(purpose)
    with app.tx() as tx:
        if purpose == AUDIT:
            # Locked: every transaction signing with the old key has committed, so the
            # instant chosen now is later than anything the old key signed.
            old = keystore.lock_current_audit_key(tx.conn)
            last = keystore.last_signed_at(tx.conn, old.kid) if old else None
            key = keystore.rotate(
                tx.conn, max(tx.now, app.now()), None, purpose=AUDIT, not_before=last
            )
        else:
            old = keystore.current_key(tx.conn, ACCESS)
            key = keystore.rotate(tx.conn, tx.now, max_token_ttl(config))
        tx.audit(
            tenant_id=PROVIDER_CHAIN,
            actor=actor,
            operation="keys.rotated",
            details={"purpose": purpose, "kid": key.kid, "retired": old.kid if old else None},
        )
        return key.summary(tx.now)


def retire_key(app: Lockbox, actor: Principal, kid: str) -> dict[str, Any]:
    """Unpublish a (non-signing) access key now: tokens it signed stop verifying at once.
    Audit keys are refused (they stay published). Recorded in the provider's chain."""
    authorize(actor, Intent.KEYS_MANAGE, kind="keys", tenant_id=None)
    kid = text.required_text(kid, "kid", max_len=64, multiline=False)
    with app.tx() as tx:
        retired = keystore.retire(tx.conn, kid, tx.now)
        tx.audit(
            tenant_id=PROVIDER_CHAIN,
            actor=actor,
            operation="keys.retired",
            details={"purpose": retired.purpose, "kid": retired.kid},
        )
        return retired.summary(tx.now)


# -- tokens ------------------------------------------------------------------------------


def issue_token(
    app: Lockbox,
    actor: Principal,
    request_id: str,
    *,
    audience: str | None = None,
    config: TokenConfig | None = None,
) -> IssuedAccessToken:
    """A signed access token for the requester of an effectively approved request."""
    cfg = config or TokenConfig.from_settings()
    aud = cfg.audience if audience is None else audience
    aud = text.required_text(aud, "audience", max_len=AUDIENCE_MAX, multiline=False)
    with app.tx() as tx:
        service = service_store.by_audience(tx.conn, aud)
        request = load_request(tx, actor, request_id)
        authorize(
            actor,
            Intent.ACCESS_TOKEN,
            kind="request",
            tenant_id=request.tenant_id,
            owner_id=request.requester_id,
        )
        state = request.effective_state(tx.now)
        if state is not State.APPROVED or request.access_deadline is None:
            raise InvalidTransition(
                f"the request is {state.value}; access tokens are issued only while "
                "access is granted",
                state=state.value,
            )
        if request.starts_at is not None and request.not_started(tx.now):
            raise InvalidTransition(
                f"access starts at {_iso(request.starts_at)}; access tokens are issued from then",
                state=state.value,
            )
        tenant = tx.tenant(request.tenant_id)
        resources = service.owned(request.resources) if service else ()
        if service is None or tenant is None or not service.serves_tenant(tenant.id):
            raise ValidationError(
                "audience", f"no resource service with audience {aud!r} serves this tenant"
            )
        if not resources:
            raise ValidationError(
                "audience", f"the resource service {aud!r} holds none of this request's resources"
            )
        key = keystore.ensure_key(tx.conn, tx.now)
        minted = jwt_tokens.mint(
            key,
            issuer=cfg.issuer,
            audience=aud,
            engineer_id=request.requester_id,
            tenant_id=tenant.id,
            tenant_slug=tenant.slug,
            request_id=request.id,
            resources=list(resources),
            access_level=request.access_level.value,
            now=tx.now,
            ttl=cfg.ttl,
            access_deadline=request.access_deadline,
        )
        tx.audit(
            tenant_id=request.tenant_id,
            actor=actor,
            operation="access.token_issued",
            request_id=request.id,
            details={
                "jti": minted.claims["jti"],
                "kid": minted.kid,
                "audience": aud,
                "resources": list(resources),
                "expires_at": _iso(minted.expires_at),
            },
        )
    return IssuedAccessToken(
        token=minted.token,
        kid=minted.kid,
        request_id=request.id,
        expires_at=minted.expires_at,
        claims=minted.claims,
    )


# -- the online check --------------------------------------------------------------------


def decide(
    requests: list[AccessRequest], engineer_id: str, resource: str, action: Action, now: datetime
) -> tuple[bool, str, AccessRequest | None]:
    """Pick the best-matching request and its answer (pure; newest first in ``requests``).

    Preference: an allowing request (latest deadline); an active in-scope request
    whose level is too low; the newest request naming the resource (its state
    says why: ``not_approved``, ``expired``, ``revoked``, ``closed``); an active
    request that does not name it (``out_of_scope``); then any request
    (``out_of_scope``); else ``no_request``.
    """
    decisions = [(r, check_access(r, engineer_id, resource, action, now)) for r in requests]
    allowed = [r for r, d in decisions if d.allowed]
    if allowed:
        best = max(allowed, key=lambda r: (r.access_deadline or now, r.created_at))
        return True, (ALLOW_APPROVED if best.customer_step else ALLOW_LOCKBOX_OFF), best
    for r, d in decisions:
        if d.reason == DenyReason.LEVEL_TOO_LOW:
            return False, DenyReason.LEVEL_TOO_LOW.value, r
    for r, d in decisions:
        if in_scope(r.resources, resource):
            return False, str(d.reason), r
    for r, _d in decisions:
        if r.is_active(now):
            return False, DenyReason.OUT_OF_SCOPE.value, r
    if requests:
        return False, DenyReason.OUT_OF_SCOPE.value, requests[0]
    return False, DenyReason.NO_REQUEST.value, None


def check(
    app: Lockbox,
    actor: Principal,
    *,
    engineer: str,
    tenant: str,
    resource: str,
    action: str,
    request_id: str | None = None,
    kid: str | None = None,
) -> CheckResult:
    """May ``engineer`` perform ``action`` on ``resource`` of ``tenant`` right now?

    With ``request_id`` (a service that holds the engineer's access token passes
    the token's request) only that request counts, so closing or revoking it
    ends the access it granted even if another request would allow the same.
    With ``kid`` (the key that signed that token) a retired key denies at once
    (``key_retired``), whatever the service's cached key set still says.
    """
    question = _question(engineer, tenant, resource, action, request_id, kid)
    with app.read() as tx:
        result, denial = _answer(tx, actor, question)
    return _after(app, result, denial)


def check_bearer(
    app: Lockbox,
    secret: str,
    *,
    engineer: str,
    tenant: str,
    resource: str,
    action: str,
    request_id: str | None = None,
    kid: str | None = None,
) -> tuple[CheckResult, tokens.Touch | None]:
    """:func:`check` for the caller holding API token ``secret``, authenticated in the same
    read transaction: the online check is the hottest call there is, so it pays for one
    transaction, not two (the statements are pinned in test_statement_counts).

    It only reads: the token's "last used" time, when due, is returned for the caller to
    write with :func:`~lockbox.service.tokens.touch_token` elsewhere. The server answers
    checks from a small pool of threads, and a write waiting for SQLite's lock there
    would hold up the checks behind it."""
    question = _question(engineer, tenant, resource, action, request_id, kid)
    with app.read() as tx:
        actor, touch = tokens.authenticate_in(tx, secret)
        result, denial = _answer(tx, actor, question)
    return _after(app, result, denial), touch


@dataclass(frozen=True)
class _Question:
    engineer: str
    tenant: str
    resource: str
    action: Action
    request_id: str | None
    kid: str | None


def _question(
    engineer: str,
    tenant: str,
    resource: str,
    action: str,
    request_id: str | None,
    kid: str | None,
) -> _Question:
    resource = validate_resource(resource, "resource", pattern=False)
    wanted = _action(action)
    engineer = text.required_text(engineer, "engineer", max_len=320, multiline=False)
    tenant = text.required_text(tenant, "tenant", max_len=100, multiline=False)
    kid = text.text(kid, "kid", max_len=64, required=False, multiline=False)
    optional_id(request_id, "request", "request_id")
    return _Question(engineer, tenant, resource, wanted, request_id, kid)


def _answer(tx: Tx, actor: Principal, q: _Question) -> tuple[CheckResult, Denial | None]:
    authorize(actor, Intent.ACCESS_CHECK, kind="access", tenant_id=None)
    scope = scope_of(tx, actor)
    result, tenant_id, engineer_id = _check(
        tx, scope, q.engineer, q.tenant, q.resource, q.action, q.request_id
    )
    if result.allowed and q.kid is not None and not keystore.is_published(tx.conn, q.kid, tx.now):
        result = replace(result, allowed=False, reason=DENY_KEY_RETIRED)
    if result.allowed or tenant_id is None:
        return result, None
    denial = Denial(
        tenant_id=tenant_id,
        actor=actor,
        request_id=result.request.id if result.request else None,
        details={
            "engineer": engineer_id or q.engineer,
            "resource": q.resource,
            "action": q.action.value,
            "reason": result.reason,
        },
        at=result.checked_at,
    )
    return result, denial


def _after(app: Lockbox, result: CheckResult, denial: Denial | None) -> CheckResult:
    metrics.record_decision(result.allowed, result.reason)
    if denial is not None:
        if app.denials is not None:
            app.denials.record(denial)  # a server: batched, off the request path
        else:
            write_denials(app, [denial])
    return result


def _check(
    tx: Tx,
    scope: ServiceScope,
    engineer: str,
    tenant: str,
    resource: str,
    action: Action,
    request_id: str | None,
) -> tuple[CheckResult, str | None, str | None]:
    tenant_obj = repo.get_tenant(tx.conn, tenant)
    if tenant_obj is not None and not scope.serves(tenant_obj.id, resource):
        tenant_obj = None  # outside what the service serves: exactly like no such tenant
    user = repo.get_user(tx.conn, engineer)
    if tenant_obj is None:
        return CheckResult(False, DenyReason.NO_REQUEST.value, None, tx.now), None, None
    if user is None:
        return CheckResult(False, DenyReason.NO_REQUEST.value, None, tx.now), tenant_obj.id, None
    if request_id is not None:
        named = repo.get_request_for_check(tx.conn, request_id)
        mine = named and named.tenant_id == tenant_obj.id and named.requester_id == user.id
        verdict = decide([named] if named and mine else [], user.id, resource, action, tx.now)
    else:
        # Every request that can allow is active, so the common (allowed) answer needs
        # only the active ones; recent history is read only to explain a denial.
        active = repo.active_requests_for(
            tx.conn, tenant_id=tenant_obj.id, requester_id=user.id, now=tx.now
        )
        verdict = decide(active, user.id, resource, action, tx.now)
        if not verdict[0]:
            flt = repo.RequestFilter(tenant_id=tenant_obj.id, requester_id=user.id)
            recent, _ = repo.list_requests(
                tx.conn, flt, now=tx.now, limit=_RECENT, cursor=None, decisions_too=False
            )
            seen = {r.id for r in recent}
            candidates = recent + [r for r in active if r.id not in seen]
            verdict = decide(candidates, user.id, resource, action, tx.now)
    allowed, reason, request = verdict
    # Only a user who may still use grants (active, still an engineer) is allowed.
    if (
        allowed
        and request
        and not allows(
            user.principal(), Intent.ACCESS_TOKEN, request.tenant_id, owner_id=request.requester_id
        )
    ):
        allowed, reason = False, DENY_USER_INACTIVE
    state = request.effective_state(tx.now) if request else None
    return CheckResult(allowed, reason, request, tx.now, state), tenant_obj.id, user.id
