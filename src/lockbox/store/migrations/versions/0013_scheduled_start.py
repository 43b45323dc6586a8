"""scheduled start: a request may name when access starts (and the grant feed says so)

Revision ID: 0013
Revises: 0012

Existing requests start at approval; existing feed rows announce grants already started.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lockbox.store.tables

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_TIME = lockbox.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("starts_at", _TIME, nullable=True))
    with op.batch_alter_table("grant_changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("access_starts_at", _TIME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("grant_changes", schema=None) as batch_op:
        batch_op.drop_column("access_starts_at")
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.drop_column("starts_at")
