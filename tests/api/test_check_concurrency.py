"""The online check runs in a small pool of its own (``LOCKBOX_CHECK_CONCURRENCY``).

Many checks at once all get their own right answer while at most that many run
together; unset, the pool is 1 thread on SQLite and 4 on PostgreSQL (the sizes
docs/performance.md measured as fastest).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from lockbox.api.app import create_app
from lockbox.config import Settings
from lockbox.service import access
from tests.api.conftest import auth, token_for
from tests.conftest import World
from tests.integration.helpers import approved

MAILBOX = "exchange/mailbox/alice@contoso.com"


def _ask_many(world: World, settings: Settings, bodies: list[dict[str, Any]]) -> tuple[Any, int]:
    """Send every body at once; the answers, and how many checks ran together at most."""
    app = create_app(world.app)
    app.state.settings = settings
    service = auth(token_for(world.app, world.service))
    running, most = 0, 0
    lock = threading.Lock()
    real = access.check_bearer

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                running -= 1

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lockbox") as client:
            return await asyncio.gather(
                *(client.post("/v1/access/check", headers=service, json=b) for b in bodies)
            )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(access, "check_bearer", counted)
        answers = asyncio.run(go())
    return answers, most


@pytest.mark.parametrize("configured", [None, 3])
def test_many_checks_at_once_each_get_their_answer_within_the_pool(
    world: World, configured: int | None
) -> None:
    approved(world)
    ask = {"engineer": world.engineer.id, "tenant": "contoso", "resource": MAILBOX}
    bodies = [{**ask, "action": "read" if i % 2 else "write"} for i in range(24)]
    settings = Settings(check_concurrency=configured)
    answers, most = _ask_many(world, settings, bodies)
    assert [r.status_code for r in answers] == [200] * len(bodies)
    for body, r in zip(bodies, answers, strict=True):
        expected = (True, "approved") if body["action"] == "read" else (False, "level_too_low")
        assert (r.json()["allowed"], r.json()["reason"]) == expected
    limit = configured or (1 if world.app.db.is_sqlite else 4)
    assert 1 <= most <= limit


def test_the_pool_size_is_validated() -> None:
    with pytest.raises(ValueError, match="check_concurrency"):
        Settings(check_concurrency=0)


def test_a_check_still_marks_its_token_used_from_outside_the_pool(world: World) -> None:
    """The pool only reads; the token's "last used" time is written after, elsewhere."""
    from sqlalchemy import select

    from lockbox.store import tables as t

    approved(world)
    ask = {"engineer": world.engineer.id, "tenant": "contoso", "resource": MAILBOX}
    answers, _ = _ask_many(world, Settings(), [{**ask, "action": "read"}])
    assert answers[0].json()["allowed"] is True
    with world.app.db.engine.connect() as conn:
        used = conn.execute(
            select(t.api_tokens.c.last_used_at).where(t.api_tokens.c.user_id == world.service.id)
        ).all()
    assert [row[0] for row in used] == [world.clock.now()]
