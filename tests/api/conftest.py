"""API test helpers: a TestClient over the app, and bearer tokens for every principal."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lockbox.api.app import create_app
from lockbox.domain.roles import Principal
from lockbox.service import tokens
from lockbox.service.app import Lockbox
from tests.conftest import PRINCIPAL_NAMES, World


def token_for(app: Lockbox, principal: Principal, name: str = "test") -> str:
    return tokens.create_token(app, principal, name=name).secret


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Api:
    """A TestClient plus a token per world principal (by attribute name)."""

    client: TestClient
    world: World
    tokens: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        return auth(self.tokens[who])

    def call(self, who: str | None, method: str, url: str, **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}) or {})
        if who is not None:
            headers.update(self.as_(who))
        return self.client.request(method, url, headers=headers, **kw)


PRINCIPALS = PRINCIPAL_NAMES


@pytest.fixture
def client(app: Lockbox) -> Iterator[TestClient]:
    with TestClient(create_app(app), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def api(world: World, client: TestClient) -> Api:
    issued = {name: token_for(world.app, getattr(world, name)) for name in PRINCIPALS}
    return Api(client=client, world=world, tokens=issued)


def expired_token(app: Lockbox, principal: Principal) -> tuple[str, timedelta]:
    """A token that expires a minute from now; advance the clock past it to expire it."""
    issued = tokens.create_token(
        app, principal, name="short", expires_at=app.now() + timedelta(minutes=1)
    )
    return issued.secret, timedelta(minutes=2)
