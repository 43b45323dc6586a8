"""delegations: approvers hand their approvals to a colleague for a period

Revision ID: 0012
Revises: 0011

Existing decisions were all made in the decider's own right (no ``on_behalf_of``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lockbox.store.tables

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TIME = lockbox.store.tables.UTCDateTime(timezone=True)
_ID = sa.String(length=40)


def upgrade() -> None:
    with op.batch_alter_table("request_decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("on_behalf_of", sa.String(length=40), nullable=True))
    op.create_table(
        "delegations",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("from_user", _ID, nullable=False),
        sa.Column("to_user", _ID, nullable=False),
        sa.Column("starts_at", _TIME, nullable=False),
        sa.Column("ends_at", _TIME, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("revoked_at", _TIME, nullable=True),
        sa.Column("revoked_by", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(["from_user"], ["users.id"]),
        sa.ForeignKeyConstraint(["to_user"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_delegations_to_user", "delegations", ["to_user", "ends_at"])
    op.create_index("ix_delegations_from_user", "delegations", ["from_user", "ends_at"])
    op.create_index("ix_delegations_tenant", "delegations", ["tenant_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_delegations_tenant", table_name="delegations")
    op.drop_index("ix_delegations_from_user", table_name="delegations")
    op.drop_index("ix_delegations_to_user", table_name="delegations")
    op.drop_table("delegations")
    with op.batch_alter_table("request_decisions", schema=None) as batch_op:
        batch_op.drop_column("on_behalf_of")
