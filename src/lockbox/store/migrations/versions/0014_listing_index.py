"""listing index: a tenant's requests by state, newest first, answered from the index

Revision ID: 0014
Revises: 0013

The (tenant_id, state, created_at) index gains ``id`` (the listing's tie-break) and, on
PostgreSQL, carries the three deadlines, so a page of a tenant's pending requests is read
from the index alone and only the page's rows are fetched.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_NAME = "ix_access_requests_tenant_state_created"
_DEADLINES = ["review_deadline", "approval_deadline", "access_deadline"]


def upgrade() -> None:
    op.drop_index(_NAME, table_name="access_requests")
    op.create_index(
        _NAME,
        "access_requests",
        ["tenant_id", "state", "created_at", "id"],
        postgresql_include=_DEADLINES,
    )


def downgrade() -> None:
    op.drop_index(_NAME, table_name="access_requests")
    op.create_index(_NAME, "access_requests", ["tenant_id", "state", "created_at"])
