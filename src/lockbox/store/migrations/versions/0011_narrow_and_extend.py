"""narrower approvals and extensions: the asked scope, the granted window, the pending extension

Revision ID: 0011
Revises: 0010

Existing requests were granted as asked (no asked scope, no window of their own) and
were never extended; existing tenants allow two extensions per request, each approved
like the request itself.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("max_extensions", sa.Integer(), nullable=False, server_default="2")
        )
        batch_op.add_column(sa.Column("extension_stages", sa.JSON(), nullable=True))
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("asked_resources", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("asked_level", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("access_window_s", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("extension", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("extensions", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.drop_column("extensions")
        batch_op.drop_column("extension")
        batch_op.drop_column("access_window_s")
        batch_op.drop_column("asked_level")
        batch_op.drop_column("asked_resources")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("extension_stages")
        batch_op.drop_column("max_extensions")
