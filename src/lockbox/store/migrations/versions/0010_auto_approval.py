"""auto-approval rules, four-eyes policy changes, the justification category of requests

Revision ID: 0010
Revises: 0009

Two new tables, and one column nothing reads differently: every existing request gets
the category ``other`` (the server default), which no auto-approval rule exists for yet;
no tenant has a rule, so every request waits for the customer exactly as before, and no
change is pending.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lockbox.store.tables

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TIME = lockbox.store.tables.UTCDateTime(timezone=True)
_ID = sa.String(length=40)


def upgrade() -> None:
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("category", sa.String(length=32), nullable=False, server_default="other")
        )
    op.create_table(
        "auto_approval_rules",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_by", sa.String(length=40), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_auto_approval_rules_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auto_approval_rules")),
    )
    with op.batch_alter_table("auto_approval_rules", schema=None) as batch_op:
        batch_op.create_index(
            "ix_auto_approval_rules_tenant_state", ["tenant_id", "state"], unique=False
        )
    op.create_table(
        "pending_changes",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("proposed_by", sa.String(length=40), nullable=False),
        sa.Column("proposed_at", _TIME, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=40), nullable=True),
        sa.Column("decided_at", _TIME, nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_pending_changes_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_changes")),
    )
    with op.batch_alter_table("pending_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pending_changes_tenant_state", ["tenant_id", "state", "proposed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pending_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_pending_changes_tenant_state")
    op.drop_table("pending_changes")
    with op.batch_alter_table("auto_approval_rules", schema=None) as batch_op:
        batch_op.drop_index("ix_auto_approval_rules_tenant_state")
    op.drop_table("auto_approval_rules")
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.drop_column("category")
