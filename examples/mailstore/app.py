"""An example resource service: a mail store holding Contoso's and Fabrikam's mailboxes.

Every route that touches mail content is guarded by the Lockbox SDK:

* ``GET  /mailboxes/{tenant}/{address}``                — read  ``exchange/mailbox/{address}``
* ``POST /mailboxes/{tenant}/{address}/messages``        — write ``exchange/mailbox/{address}``
* ``DELETE /mailboxes/{tenant}/{address}/messages/{id}`` — write ``exchange/mailbox/{address}``

It depends on the SDK alone, never on the server: ``pip install './sdk[fastapi]' uvicorn``
is all it needs (a test runs it from such a clean venv). The engineer sends a Lockbox
access token (``lockbox access token REQ``) as ``Authorization: Bearer …``.
Configuration (environment):

=============================  ==========================================================
``LOCKBOX_URL``                Lockbox server (default ``http://127.0.0.1:8000``)
``MAILSTORE_LOCKBOX_TOKEN``    this service's Lockbox API token (role ``resource_service``)
``MAILSTORE_AUDIENCE``         token audience it accepts (default ``lockbox-resource``)
``MAILSTORE_ISSUER``           token issuer (default ``lockbox``)
``MAILSTORE_MODE``             ``feed`` (default: decide from the grant feed), ``online``
                               (ask /v1/access/check every time) or ``token`` (token only)
``MAILSTORE_FEED_STALE``       ``fail_closed`` (default) or ``online``: what to do while
                               the feed is silent
``MAILSTORE_JWKS_REFRESH``     minimum seconds between JWKS refetches (default 10)
``LOCKBOX_TEST_CLOCK_FILE``    tests only: shift this service's clock like the server's
=============================  ==========================================================
"""

# No "from __future__ import annotations": FastAPI must resolve the local Read/Write aliases.
import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException
from lockbox_sdk import (
    AccessGrant,
    AsyncLockboxClient,
    EventReporter,
    GrantFeed,
    LockboxClient,
    LockboxGuard,
    TokenVerifier,
)
from pydantic import BaseModel, ConfigDict, Field

TENANTS = {"contoso": "contoso.com", "fabrikam": "fabrikam.com"}


class OffsetFileClock:
    """System time plus an offset in seconds read from a file, re-read on every call.

    Tests only (``LOCKBOX_TEST_CLOCK_FILE``): they move the Lockbox server's clock
    forward with the same file ("the access window ran out"), and the mail store
    must agree on "now" or it would keep honouring tokens and grant deadlines the
    server considers past. A local copy, so the example needs nothing but the SDK.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        try:
            offset = float(self.path.read_text().strip() or 0)
        except (OSError, ValueError):
            offset = 0.0
        return datetime.now(UTC) + timedelta(seconds=offset)


def sample_mailboxes() -> dict[str, dict[str, list[dict[str, str]]]]:
    """tenant slug → address → messages."""
    return {
        "contoso": {
            "alice@contoso.com": [
                {"id": "m1", "from": "bob@contoso.com", "subject": "Quarterly numbers"},
                {"id": "m2", "from": "it@contoso.com", "subject": "Your mailbox is almost full"},
            ],
            "bob@contoso.com": [
                {"id": "m1", "from": "alice@contoso.com", "subject": "Re: Quarterly numbers"},
            ],
        },
        "fabrikam": {
            "alice@fabrikam.com": [
                {"id": "m1", "from": "ceo@fabrikam.com", "subject": "Board meeting"},
            ],
        },
    }


@dataclass
class Config:
    lockbox_url: str = "http://127.0.0.1:8000"
    service_token: str | None = None
    audience: str = "lockbox-resource"
    issuer: str = "lockbox"
    mode: str = "feed"
    feed_stale: str = "fail_closed"
    jwks_refresh: float = 10.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @classmethod
    def from_env(cls) -> "Config":
        env = os.environ
        clock_file = env.get("LOCKBOX_TEST_CLOCK_FILE")
        cfg = cls(
            lockbox_url=env.get("LOCKBOX_URL", cls.lockbox_url),
            service_token=env.get("MAILSTORE_LOCKBOX_TOKEN"),
            audience=env.get("MAILSTORE_AUDIENCE", cls.audience),
            issuer=env.get("MAILSTORE_ISSUER", cls.issuer),
            mode=env.get("MAILSTORE_MODE", cls.mode),
            feed_stale=env.get("MAILSTORE_FEED_STALE", cls.feed_stale),
            jwks_refresh=float(env.get("MAILSTORE_JWKS_REFRESH", cls.jwks_refresh)),
        )
        if clock_file:
            cfg.clock = OffsetFileClock(Path(clock_file)).now
        return cfg


class NewMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sender: str = Field(alias="from", max_length=320)
    subject: str = Field(max_length=500)


def create_app(config: Config | None = None) -> FastAPI:
    cfg = config or Config.from_env()
    if cfg.mode not in ("feed", "online", "token"):
        raise ValueError("MAILSTORE_MODE must be 'feed', 'online' or 'token'")
    if not cfg.service_token:
        raise ValueError("set MAILSTORE_LOCKBOX_TOKEN to this service's Lockbox API token")
    verifier = TokenVerifier(
        audience=cfg.audience,
        issuer=cfg.issuer,
        jwks_url=f"{cfg.lockbox_url.rstrip('/')}/.well-known/jwks.json",
        clock=cfg.clock,
        min_refresh_interval=cfg.jwks_refresh,
    )
    sender = LockboxClient(cfg.lockbox_url, cfg.service_token)
    reporter = EventReporter(sender.report_events)
    wants_online = cfg.mode == "online" or (cfg.mode == "feed" and cfg.feed_stale == "online")
    online = AsyncLockboxClient(cfg.lockbox_url, cfg.service_token) if wants_online else None
    feed = GrantFeed(cfg.lockbox_url, cfg.service_token) if cfg.mode == "feed" else None
    guard = LockboxGuard(
        verifier=verifier,
        online=online,
        reporter=reporter,
        feed=feed,
        when_feed_is_stale=cfg.feed_stale,
        clock=cfg.clock,
    )
    store = sample_mailboxes()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if feed is not None:
            feed.start()  # decisions wait for its snapshot: until then, 503 (fail closed)
        yield
        await guard.aclose()  # flush the action reports before exiting
        sender.close()
        verifier.close()

    app = FastAPI(title="Example mail store (protected by Lockbox)", lifespan=lifespan)
    app.state.guard = guard
    app.state.reporter = reporter
    app.state.verifier = verifier
    app.state.feed = feed
    app.state.store = store

    mailbox = "exchange/mailbox/{address}"
    Read = Annotated[AccessGrant, guard.depends(mailbox, "read", tenant="{tenant}")]  # noqa: N806
    Write = Annotated[AccessGrant, guard.depends(mailbox, "write", tenant="{tenant}")]  # noqa: N806

    def box(tenant: str, address: str) -> list[dict[str, str]]:
        messages = store.get(tenant, {}).get(address.lower())
        if messages is None:
            raise HTTPException(404, "no such mailbox")
        return messages

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "mode": cfg.mode}

    @app.get("/mailboxes/{tenant}/{address}")
    def read_mailbox(tenant: str, address: str, grant: Read) -> dict[str, Any]:
        messages = box(tenant, address)
        grant.detail = f"listed {len(messages)} messages"
        return {"tenant": tenant, "address": address, "messages": messages}

    @app.post("/mailboxes/{tenant}/{address}/messages", status_code=201)
    def add_message(tenant: str, address: str, body: NewMessage, grant: Write) -> dict[str, str]:
        messages = box(tenant, address)
        message = {"id": "m" + secrets.token_hex(4), "from": body.sender, "subject": body.subject}
        messages.append(message)
        grant.detail = f"added message {message['id']}"
        return message

    @app.delete("/mailboxes/{tenant}/{address}/messages/{message_id}", status_code=204)
    def delete_message(tenant: str, address: str, message_id: str, grant: Write) -> None:
        messages = box(tenant, address)
        kept = [m for m in messages if m["id"] != message_id]
        if len(kept) == len(messages):
            raise HTTPException(404, "no such message")
        messages[:] = kept
        grant.detail = f"deleted message {message_id}"

    return app


__all__ = ["Config", "OffsetFileClock", "create_app", "sample_mailboxes"]
