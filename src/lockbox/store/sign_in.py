"""Rows of sign-in: single sign-on settings, second factors, recovery codes, flows in flight."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from lockbox.store import tables as t

PROVIDER_SCOPE = "provider"


@dataclass(frozen=True)
class SignInSettings:
    """How the people of one scope ("provider" or a tenant id) sign in."""

    scope: str
    tenant_id: str | None
    sso_enabled: bool = False
    issuer: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)  # write-only
    email_domains: tuple[str, ...] = ()
    groups_claim: str = "groups"
    role_map: dict[str, list[str]] = field(default_factory=dict)
    jit: bool = False
    require_sso: bool = False
    require_second_factor: bool = False
    updated_at: datetime | None = None
    updated_by: str = ""
    version: int = 0  # 0: never saved (the defaults)

    @property
    def sso_ready(self) -> bool:
        return bool(self.sso_enabled and self.issuer and self.client_id)


def _settings(row: Any) -> SignInSettings:
    return SignInSettings(
        scope=row["scope"],
        tenant_id=row["tenant_id"],
        sso_enabled=row["sso_enabled"],
        issuer=row["issuer"],
        client_id=row["client_id"],
        client_secret=row["client_secret"],
        email_domains=tuple(row["email_domains"] or ()),
        groups_claim=row["groups_claim"],
        role_map=dict(row["role_map"] or {}),
        jit=row["jit"],
        require_sso=row["require_sso"],
        require_second_factor=row["require_second_factor"],
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
        version=row["version"],
    )


def get_settings(conn: Connection, scope: str, *, lock: bool = False) -> SignInSettings | None:
    query = select(t.sign_in_settings).where(t.sign_in_settings.c.scope == scope)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return _settings(row) if row else None


def sso_scopes_for_domain(conn: Connection, domain: str) -> list[SignInSettings]:
    """Every scope with single sign-on on whose allowed domains include ``domain``."""
    rows = conn.execute(
        select(t.sign_in_settings).where(t.sign_in_settings.c.sso_enabled.is_(True))
    ).mappings()
    return [s for s in map(_settings, rows) if domain in s.email_domains]


def put_settings(conn: Connection, settings: SignInSettings, *, exists: bool) -> None:
    values = {
        "tenant_id": settings.tenant_id,
        "sso_enabled": settings.sso_enabled,
        "issuer": settings.issuer,
        "client_id": settings.client_id,
        "client_secret": settings.client_secret,
        "email_domains": list(settings.email_domains),
        "groups_claim": settings.groups_claim,
        "role_map": settings.role_map,
        "jit": settings.jit,
        "require_sso": settings.require_sso,
        "require_second_factor": settings.require_second_factor,
        "updated_at": settings.updated_at,
        "updated_by": settings.updated_by,
        "version": settings.version,
    }
    if exists:
        conn.execute(
            update(t.sign_in_settings)
            .where(t.sign_in_settings.c.scope == settings.scope)
            .values(**values)
        )
    else:
        conn.execute(insert(t.sign_in_settings).values(scope=settings.scope, **values))


# -- second factors --------------------------------------------------------------------------


@dataclass(frozen=True)
class Factor:
    id: str
    user_id: str
    kind: str  # totp | passkey
    name: str
    secret: str | None = field(default=None, repr=False)
    credential_id: str | None = None
    public_key: str | None = field(default=None, repr=False)
    sign_count: int = 0
    last_step: int | None = None
    created_at: datetime | None = None
    last_used_at: datetime | None = None


def _factor(row: Any) -> Factor:
    return Factor(**{c.name: row[c.name] for c in t.second_factors.columns})


def factors_of(conn: Connection, user_id: str, kind: str | None = None) -> list[Factor]:
    s = t.second_factors.c
    query = select(t.second_factors).where(s.user_id == user_id)
    if kind is not None:
        query = query.where(s.kind == kind)
    return [_factor(r) for r in conn.execute(query.order_by(s.created_at, s.id)).mappings()]


def factor_by_credential(conn: Connection, credential_id: str) -> Factor | None:
    row = (
        conn.execute(
            select(t.second_factors).where(t.second_factors.c.credential_id == credential_id)
        )
        .mappings()
        .first()
    )
    return _factor(row) if row else None


def insert_factor(conn: Connection, factor: Factor) -> None:
    conn.execute(
        insert(t.second_factors).values(
            {c.name: getattr(factor, c.name) for c in t.second_factors.columns}
        )
    )


def use_totp(conn: Connection, factor_id: str, step: int, at: datetime) -> bool:
    """Record the time step used; False if it (or a later one) was used already."""
    s = t.second_factors.c
    result = conn.execute(
        update(t.second_factors)
        .where(s.id == factor_id, (s.last_step.is_(None)) | (s.last_step < step))
        .values(last_step=step, last_used_at=at)
    )
    return result.rowcount == 1


def use_passkey(conn: Connection, factor_id: str, sign_count: int, at: datetime) -> None:
    conn.execute(
        update(t.second_factors)
        .where(t.second_factors.c.id == factor_id)
        .values(sign_count=sign_count, last_used_at=at)
    )


def delete_factor(conn: Connection, user_id: str, factor_id: str) -> Factor | None:
    s = t.second_factors.c
    row = (
        conn.execute(select(t.second_factors).where(s.id == factor_id, s.user_id == user_id))
        .mappings()
        .first()
    )
    if row is None:
        return None
    conn.execute(delete(t.second_factors).where(s.id == factor_id))
    return _factor(row)


# -- recovery codes --------------------------------------------------------------------------


def replace_recovery_codes(
    conn: Connection, user_id: str, rows: list[tuple[str, str]], at: datetime
) -> None:
    """Forget the person's old codes and keep the digests of new ones: (id, code_hash)."""
    conn.execute(delete(t.recovery_codes).where(t.recovery_codes.c.user_id == user_id))
    if rows:
        conn.execute(
            insert(t.recovery_codes),
            [
                {"id": i, "user_id": user_id, "code_hash": h, "created_at": at, "used_at": None}
                for i, h in rows
            ],
        )


def use_recovery_code(conn: Connection, user_id: str, code_hash: str, at: datetime) -> bool:
    """Mark one unused code of the person used; False if no such unused code."""
    s = t.recovery_codes.c
    result = conn.execute(
        update(t.recovery_codes)
        .where(s.user_id == user_id, s.code_hash == code_hash, s.used_at.is_(None))
        .values(used_at=at)
    )
    return result.rowcount == 1


def unused_recovery_codes(conn: Connection, user_id: str) -> int:
    s = t.recovery_codes.c
    count = conn.execute(
        select(func.count()).where(s.user_id == user_id, s.used_at.is_(None))
    ).scalar_one()
    return int(count)


# -- flows in flight -------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    id: str
    kind: str
    scope: str | None
    session_id: str | None
    data: dict[str, Any]
    created_at: datetime
    expires_at: datetime


def insert_flow(conn: Connection, flow: Flow) -> None:
    conn.execute(
        insert(t.auth_flows).values({c.name: getattr(flow, c.name) for c in t.auth_flows.columns})
    )


def take_flow(conn: Connection, flow_id: str, kind: str) -> Flow | None:
    """The flow, deleted as it is read: each one is used at most once."""
    s = t.auth_flows.c
    row = (
        conn.execute(select(t.auth_flows).where(s.id == flow_id, s.kind == kind)).mappings().first()
    )
    if row is None:
        return None
    conn.execute(delete(t.auth_flows).where(s.id == flow_id))
    return Flow(**{c.name: row[c.name] for c in t.auth_flows.columns})


def purge_flows(conn: Connection, before: datetime) -> int:
    return conn.execute(delete(t.auth_flows).where(t.auth_flows.c.expires_at < before)).rowcount


# -- sessions (the columns of issue #13) -----------------------------------------------------


def set_session_auth(
    conn: Connection,
    session_id: str,
    *,
    at: datetime,
    method: str,
    provider: str | None,
) -> None:
    conn.execute(
        update(t.web_sessions)
        .where(t.web_sessions.c.id == session_id)
        .values(authenticated_at=at, auth_method=method, auth_provider=provider, last_seen_at=at)
    )


def set_stage(conn: Connection, session_id: str, stage: str | None) -> None:
    conn.execute(
        update(t.web_sessions).where(t.web_sessions.c.id == session_id).values(stage=stage)
    )


def set_pending_action(conn: Connection, session_id: str, action: dict[str, Any] | None) -> None:
    conn.execute(
        update(t.web_sessions)
        .where(t.web_sessions.c.id == session_id)
        .values(pending_action=action)
    )


def sessions_of_tenant(conn: Connection, tenant_id: str, now: datetime) -> list[Any]:
    """Live sessions of a tenant's people, newest first, with the person's id and e-mail."""
    s, u = t.web_sessions.c, t.users.c
    query = (
        select(t.web_sessions, u.email, u.display_name)
        .join(t.users, u.id == s.user_id)
        .where(u.tenant_id == tenant_id, s.revoked_at.is_(None), s.expires_at > now)
        .order_by(s.created_at.desc())
    )
    return list(conn.execute(query).mappings())


def tokens_of_tenant(conn: Connection, tenant_id: str) -> list[Any]:
    a, u = t.api_tokens.c, t.users.c
    query = (
        select(a.id, a.name, a.user_id, a.created_at, a.expires_at, a.last_used_at, u.email)
        .join(t.users, u.id == a.user_id)
        .where(u.tenant_id == tenant_id, a.revoked_at.is_(None))
        .order_by(a.created_at.desc())
    )
    return list(conn.execute(query).mappings())
