"""The SQL of help-desk integrations: integrations, deliveries processed, ticket links."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from lockbox.domain.helpdesk import TicketLink, TicketStatus
from lockbox.store import tables as t

_I = t.helpdesk_integrations
_D = t.helpdesk_deliveries
_T = t.helpdesk_tickets


@dataclass(frozen=True)
class IntegrationRow:
    id: str
    name: str
    secret: str = field(repr=False)  # never in a log line or traceback
    previous_secret: str | None = field(repr=False)
    previous_until: datetime | None
    created_at: datetime
    created_by: str
    rotated_at: datetime | None

    def secrets(self, now: datetime) -> list[str]:
        """The secrets a delivery may be signed with at ``now``: the current one, and the
        previous one until its overlap after a rotation ends."""
        found = [self.secret]
        if self.previous_secret and self.previous_until is not None and now < self.previous_until:
            found.append(self.previous_secret)
        return found


def _integration(mapping: Any) -> IntegrationRow:
    return IntegrationRow(**{c.name: mapping[c.name] for c in _I.columns})


def insert_integration(conn: Connection, row: IntegrationRow) -> None:
    conn.execute(insert(_I).values({c.name: getattr(row, c.name) for c in _I.columns}))


_BY_ID = select(_I).where(_I.c.id == bindparam("id"))
_BY_ID_LOCKED = _BY_ID.with_for_update()


def get_integration(
    conn: Connection, integration_id: str, *, lock: bool = False
) -> IntegrationRow | None:
    """One integration; ``lock`` row-locks it (PostgreSQL): the events of one integration
    are applied one at a time, and a rotation or deletion waits for the one in progress."""
    row = conn.execute(_BY_ID_LOCKED if lock else _BY_ID, {"id": integration_id}).mappings().first()
    return _integration(row) if row else None


def list_integrations(conn: Connection) -> list[IntegrationRow]:
    rows = conn.execute(select(_I).order_by(_I.c.created_at, _I.c.id)).mappings()
    return [_integration(r) for r in rows]


def name_taken(conn: Connection, name: str) -> bool:
    query = select(_I.c.id).where(func.lower(_I.c.name) == name.lower())
    return conn.execute(query).first() is not None


def rotate_secret(
    conn: Connection,
    integration_id: str,
    *,
    secret: str,
    previous: str | None,
    previous_until: datetime | None,
    now: datetime,
) -> bool:
    result = conn.execute(
        update(_I)
        .where(_I.c.id == integration_id)
        .values(
            secret=secret, previous_secret=previous, previous_until=previous_until, rotated_at=now
        )
    )
    return result.rowcount == 1


def delete_integration(conn: Connection, integration_id: str) -> bool:
    """Remove the integration with its deliveries and ticket links (the cases stay)."""
    conn.execute(delete(_D).where(_D.c.integration_id == integration_id))
    conn.execute(delete(_T).where(_T.c.integration_id == integration_id))
    result = conn.execute(delete(_I).where(_I.c.id == integration_id))
    return result.rowcount == 1


def open_links(conn: Connection, integration_id: str) -> int:
    """How many of the integration's tickets still have an open case."""
    query = select(func.count()).where(
        _T.c.integration_id == integration_id,
        _T.c.status == TicketStatus.OPEN.value,
        _T.c.case_id.is_not(None),
    )
    return int(conn.execute(query).scalar_one())


# -- deliveries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryRow:
    integration_id: str
    webhook_id: str
    ticket_id: str
    event_type: str
    outcome: str
    received_at: datetime


def get_delivery(conn: Connection, integration_id: str, webhook_id: str) -> DeliveryRow | None:
    row = (
        conn.execute(
            select(_D).where(_D.c.integration_id == integration_id, _D.c.webhook_id == webhook_id)
        )
        .mappings()
        .first()
    )
    return DeliveryRow(**{c.name: row[c.name] for c in _D.columns}) if row else None


def insert_delivery(conn: Connection, row: DeliveryRow) -> None:
    conn.execute(insert(_D).values({c.name: getattr(row, c.name) for c in _D.columns}))


# -- tickets ---------------------------------------------------------------------------------


def get_ticket(
    conn: Connection, integration_id: str, ticket_id: str
) -> tuple[TicketLink, datetime] | None:
    """The ticket's link and when Lockbox first saw it (None: never seen)."""
    row = (
        conn.execute(
            select(_T).where(_T.c.integration_id == integration_id, _T.c.ticket_id == ticket_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    link = TicketLink(
        status=TicketStatus(row["status"]),
        ticket_updated_at=row["ticket_updated_at"],
        case_id=row["case_id"],
    )
    return link, row["created_at"]


def insert_ticket(
    conn: Connection, integration_id: str, ticket_id: str, link: TicketLink, now: datetime
) -> None:
    conn.execute(
        insert(_T).values(
            integration_id=integration_id,
            ticket_id=ticket_id,
            case_id=link.case_id,
            status=link.status.value,
            ticket_updated_at=link.ticket_updated_at,
            created_at=now,
            updated_at=now,
        )
    )


def update_ticket(
    conn: Connection, integration_id: str, ticket_id: str, link: TicketLink, now: datetime
) -> None:
    conn.execute(
        update(_T)
        .where(_T.c.integration_id == integration_id, _T.c.ticket_id == ticket_id)
        .values(status=link.status.value, ticket_updated_at=link.ticket_updated_at, updated_at=now)
    )


# -- cases -----------------------------------------------------------------------------------


def update_case(conn: Connection, case_id: str, *, title: str, engineer_id: str) -> bool:
    """A case's title and assignee; only an open case changes (False: it was closed)."""
    result = conn.execute(
        update(t.cases)
        .where(t.cases.c.id == case_id, t.cases.c.status == "open")
        .values(title=title, engineer_id=engineer_id)
    )
    return result.rowcount == 1
