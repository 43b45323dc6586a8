"""approval stages as data: the policy's stage list, the plan frozen on each request, decisions per stage

Revision ID: 0007
Revises: 0006

Existing tenants keep their meaning: no stage list is the one stage of
``required_approvals`` approvers or tenant admins. Existing requests keep theirs: no
frozen plan is that same one stage with the request's own ``required_approvals``, and
a decision without a stage counts for it (``AccessRequest.planned_stages``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approval_stages", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("approver_groups", sa.JSON(), nullable=True))
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stages", sa.JSON(), nullable=True))
    with op.batch_alter_table("request_decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stage", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("request_decisions", schema=None) as batch_op:
        batch_op.drop_column("stage")
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.drop_column("stages")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("approver_groups")
        batch_op.drop_column("approval_stages")
