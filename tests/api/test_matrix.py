"""Generated authorization matrix over HTTP: every endpoint × role × own/foreign tenant ×
valid/expired/revoked/no token, expected statuses derived from the permission matrix
(see :mod:`tests.api.matrix`). Zero leaks: a foreign tenant's object is a 404 that looks
exactly like a missing one.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from lockbox.domain.roles import Role, Side
from lockbox.service import tokens
from tests.api.conftest import auth, expired_token
from tests.api.matrix import (
    ENDPOINTS,
    RELATIONS,
    ROLE_PRINCIPAL,
    Ctx,
    Endpoint,
    expected_status,
    relation_target,
    replace_ids,
)
from tests.conftest import World

PROBLEM = "application/problem+json"


def _call(client: TestClient, method: str, url: str, body: Any, token: str | None) -> Any:
    headers = auth(token) if token is not None else {}
    if body is None:
        return client.request(method, url, headers=headers)
    return client.request(method, url, headers=headers, json=body)


@pytest.mark.parametrize("ep", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_endpoint_matrix(ep: Endpoint, world: World, client: TestClient) -> None:
    app = world.app
    valid: dict[Role, str] = {}
    expired: dict[Role, str] = {}
    revoked: dict[Role, str] = {}
    delta = None
    for role, name in ROLE_PRINCIPAL.items():
        principal = getattr(world, name)
        valid[role] = tokens.create_token(app, principal, name="valid").secret
        expired[role], delta = expired_token(app, principal)
        issued = tokens.create_token(app, principal, name="revoked")
        tokens.revoke_token(app, principal, issued.row.id)
        revoked[role] = issued.secret
    assert delta is not None
    world.clock.advance(delta)  # the short-lived tokens are now expired

    ctx = Ctx(world)
    failures: list[str] = []
    checked = 0

    def fail(what: str) -> None:
        failures.append(f"{ep.name}: {what}")

    for role, name in ROLE_PRINCIPAL.items():
        principal = getattr(world, name)
        for relation in RELATIONS:
            tenant_id, owner = relation_target(world, role, principal, relation)
            prepared = ep.prepare(ctx, tenant_id, owner)
            want = expected_status(ep, principal, role, prepared)
            label = f"{role.value}/{relation} {prepared.method} {prepared.url}"
            if role.side is Side.CUSTOMER and relation == "foreign" and want != 404:
                fail(f"{label}: the oracle itself would leak ({want})")
            before = ctx.fingerprint() if ep.mutating else None

            # Bad credentials first: they must be refused before anything happens.
            for kind, token in (("expired", expired[role]), ("revoked", revoked[role])):
                r = _call(client, prepared.method, prepared.url, prepared.json, token)
                checked += 1
                if r.status_code != 401:
                    fail(f"{label} with {kind} token: {r.status_code}, want 401")
                elif r.headers.get("www-authenticate") != "Bearer":
                    fail(f"{label} with {kind} token: no WWW-Authenticate: Bearer")

            # (whether the refused credentials wrote anything is checked below with the
            # refused cases' fingerprint, which is taken before them)

            r = _call(client, prepared.method, prepared.url, prepared.json, valid[role])
            checked += 1
            if r.status_code != want:
                fail(f"{label}: {r.status_code}, want {want}: {r.text[:200]}")
                continue
            if r.status_code >= 400:
                if not r.headers["content-type"].startswith(PROBLEM):
                    fail(f"{label}: not problem+json")
                if before is not None and ctx.fingerprint() != before:
                    fail(f"{label}: refused with {r.status_code} but the database changed")
            if r.status_code == 404:
                # Indistinguishable from a missing id: the same problem body, word for word,
                # as the same call naming a missing object of the kind that was invisible.
                got = r.json()
                seen = []
                for real in prepared.fake:
                    url, body = replace_ids(prepared, real)
                    seen.append(_call(client, prepared.method, url, body, valid[role]).json())
                if got not in seen:
                    fail(f"{label}: 404 differs from a missing id's: {got} vs {seen}")
                if tenant_id in r.text or (owner in r.text):
                    fail(f"{label}: the 404 names the object")

    # No token and a malformed token, once per endpoint.
    prepared = ep.prepare(ctx, world.contoso, world.engineer.id)
    for token in (None, "lbx_not-a-real-token", "x" * 300):
        r = _call(client, prepared.method, prepared.url, prepared.json, token)
        checked += 1
        if r.status_code != 401 or not r.headers["content-type"].startswith(PROBLEM):
            fail(f"token {token!r:.20}: {r.status_code}, want 401 problem+json")

    assert checked >= len(ROLE_PRINCIPAL) * len(RELATIONS) * 3
    assert not failures, "\n".join(failures)
