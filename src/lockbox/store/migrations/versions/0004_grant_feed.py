"""grant feed: a global, ordered stream of grants starting and ending

Revision ID: 0004
Revises: 0003

Grants already active when this runs are not replayed into the stream: a
resource service that connects without a cursor starts from a snapshot of the
active grants, which covers them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lockbox.store.tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TIME = lockbox.store.tables.UTCDateTime(timezone=True)
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "grant_changes",
        sa.Column("seq", _SEQ, autoincrement=False, nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_slug", sa.String(length=63), nullable=False),
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("engineer_id", sa.String(length=40), nullable=False),
        sa.Column("engineer_email", sa.String(length=320), nullable=False),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("access_level", sa.String(length=16), nullable=False),
        sa.Column("access_deadline", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_grant_changes")),
    )
    op.create_table(
        "feed_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", _SEQ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_head")),
    )
    op.execute("INSERT INTO feed_head (id, seq) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("feed_head")
    op.drop_table("grant_changes")
