"""help-desk integrations: inbound signed case events

Revision ID: 0008
Revises: 0007

Three new tables and nothing else changes: integrations (a name and a signing secret
each), the deliveries already processed (by ``webhook-id``, so a repeat does nothing),
and each ticket's link to the case it opened. Existing cases stay as they are: none is
linked to a ticket.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lockbox.store.tables

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TIME = lockbox.store.tables.UTCDateTime(timezone=True)
_ID = sa.String(length=40)


def upgrade() -> None:
    op.create_table(
        "helpdesk_integrations",
        sa.Column("id", _ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("previous_secret", sa.String(length=200), nullable=True),
        sa.Column("previous_until", _TIME, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("rotated_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_helpdesk_integrations")),
        sa.UniqueConstraint("name", name=op.f("uq_helpdesk_integrations_name")),
    )
    op.create_table(
        "helpdesk_deliveries",
        sa.Column("integration_id", _ID, nullable=False),
        sa.Column("webhook_id", sa.String(length=200), nullable=False),
        sa.Column("ticket_id", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("received_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["helpdesk_integrations.id"],
            name=op.f("fk_helpdesk_deliveries_integration_id_helpdesk_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "integration_id", "webhook_id", name=op.f("pk_helpdesk_deliveries")
        ),
    )
    with op.batch_alter_table("helpdesk_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_helpdesk_deliveries_received_at"), ["received_at"], unique=False
        )
    op.create_table(
        "helpdesk_tickets",
        sa.Column("integration_id", _ID, nullable=False),
        sa.Column("ticket_id", sa.String(length=100), nullable=False),
        sa.Column("case_id", _ID, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ticket_updated_at", _TIME, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_helpdesk_tickets_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["helpdesk_integrations.id"],
            name=op.f("fk_helpdesk_tickets_integration_id_helpdesk_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("integration_id", "ticket_id", name=op.f("pk_helpdesk_tickets")),
        sa.UniqueConstraint("case_id", name=op.f("uq_helpdesk_tickets_case_id")),
    )


def downgrade() -> None:
    op.drop_table("helpdesk_tickets")
    with op.batch_alter_table("helpdesk_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_helpdesk_deliveries_received_at"))
    op.drop_table("helpdesk_deliveries")
    op.drop_table("helpdesk_integrations")
