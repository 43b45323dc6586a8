"""chat webhooks: Slack and Microsoft Teams message formats

Revision ID: 0009
Revises: 0008

Each webhook endpoint gets a ``format``: ``standard`` (the signed JSON every existing
endpoint receives, so existing rows keep their behaviour through the server default),
``slack`` or ``teams`` (a chat message for an incoming webhook, not signed).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("format", sa.String(length=16), nullable=False, server_default="standard")
        )


def downgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("format")
