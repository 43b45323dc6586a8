"""Outbox rows: notifications written in the same transaction as the change they announce."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from lockbox.domain.ids import new_id
from lockbox.store import tables as t


@dataclass(frozen=True)
class OutboxMessage:
    channel: str  # "email" | "webhook"
    topic: str
    recipient: str  # an e-mail address or a webhook id
    payload: dict[str, Any]
    tenant_id: str | None = None
    request_id: str | None = None
    due_at: datetime | None = None
    only_if_state: str | None = None


def enqueue(conn: Connection, message: OutboxMessage, now: datetime) -> str:
    message_id = new_id("outbox")
    conn.execute(
        insert(t.outbox).values(
            id=message_id,
            channel=message.channel,
            topic=message.topic,
            tenant_id=message.tenant_id,
            request_id=message.request_id,
            recipient=message.recipient,
            payload=message.payload,
            created_at=now,
            due_at=message.due_at or now,
            only_if_state=message.only_if_state,
            status="pending",
            attempts=0,
        )
    )
    return message_id


def active_webhooks(conn: Connection, tenant_id: str | None) -> list[dict[str, Any]]:
    """Endpoints of this tenant plus the provider's own (tenant-less) endpoints."""
    w = t.webhooks.c
    query = select(w.id, w.tenant_id, w.events).where(w.active.is_(True))
    query = query.where((w.tenant_id == tenant_id) | w.tenant_id.is_(None))
    return [dict(row) for row in conn.execute(query).mappings()]
