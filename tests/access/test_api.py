"""The enforcement endpoints over HTTP (in-process ASGI), on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from lockbox.api.app import create_app
from lockbox.domain.roles import Principal
from lockbox.sdk.verify import TokenVerifier
from lockbox.service import tokens
from tests.access.helpers import ALICE, approved, submit
from tests.conftest import World


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.app)) as c:
        yield c


def bearer(world: World, who: Principal) -> dict[str, str]:
    secret = tokens.create_token(world.app, Principal.operator(), user=who.id).secret
    return {"Authorization": f"Bearer {secret}"}


def test_token_check_events_and_jwks(world: World, client: TestClient) -> None:
    req = approved(world)
    eng, svc = bearer(world, world.engineer), bearer(world, world.service)
    issued = client.post("/v1/access/token", json={"request_id": req.id}, headers=eng)
    assert issued.status_code == 201, issued.text
    assert issued.headers["cache-control"] == "no-store"
    body = issued.json()
    assert body["request_id"] == req.id and body["expires_in"] == 300
    jwks = client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200 and len(jwks.json()["keys"]) == 1
    verifier = TokenVerifier(
        audience="lockbox-resource", fetch_jwks=lambda: jwks.json(), clock=world.clock.now
    )
    assert verifier.verify(body["token"]).request_id == req.id

    check = client.post(
        "/v1/access/check",
        json={
            "engineer": world.engineer.id,
            "tenant": "contoso",
            "resource": ALICE,
            "action": "read",
        },
        headers=svc,
    )
    assert check.status_code == 200
    assert check.json()["allowed"] is True and check.json()["request_id"] == req.id

    events = client.post(
        "/v1/access/events",
        json={"events": [{"request_id": req.id, "action": "read", "resource": ALICE}]},
        headers=svc,
    )
    assert events.status_code == 201, events.text
    assert events.json()["recorded"][0]["first_use"] is True


def test_errors_are_problems(world: World, client: TestClient) -> None:
    pending = submit(world)
    eng, svc = bearer(world, world.engineer), bearer(world, world.service)
    conflict = client.post("/v1/access/token", json={"request_id": pending.id}, headers=eng)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert client.post("/v1/access/token", json={"request_id": pending.id}).status_code == 401
    forbidden = client.post(
        "/v1/access/check",
        json={
            "engineer": world.engineer.id,
            "tenant": "contoso",
            "resource": ALICE,
            "action": "read",
        },
        headers=eng,
    )
    assert forbidden.status_code == 403
    extra = client.post(
        "/v1/access/check",
        json={"engineer": "x", "tenant": "contoso", "resource": ALICE, "action": "read", "x": 1},
        headers=svc,
    )
    assert extra.status_code == 422
    assert extra.json()["errors"][0] == {"field": "x", "message": "unknown field"}
    bad_action = client.post(
        "/v1/access/check",
        json={"engineer": "x", "tenant": "contoso", "resource": ALICE, "action": "delete"},
        headers=svc,
    )
    assert bad_action.status_code == 422
    assert bad_action.json()["errors"][0]["field"] == "action"
    bad_event = client.post(
        "/v1/access/events",
        json={"events": [{"request_id": "req_nope", "action": "read", "resource": ALICE}]},
        headers=svc,
    )
    assert bad_event.status_code == 422
    assert bad_event.json()["errors"][0]["field"] == "events[0].request_id"
    empty = client.post("/v1/access/events", json={"events": []}, headers=svc)
    assert empty.status_code == 422
