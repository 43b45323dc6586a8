"""listing indexes: a tenant's requests by state, and one engineer's on one tenant

Revision ID: 0014
Revises: 0013

The (tenant_id, state, created_at) index gains ``id`` (the listing's tie-break) and, on
PostgreSQL, carries the three deadlines, so a page of a tenant's pending requests is read
from the index alone and only the page's rows are fetched. A new (tenant_id,
requester_id, created_at, id) index answers "this engineer's recent requests on this
tenant" (what a denied online check reads to explain itself) without walking the
tenant's whole history, and (tenant_id, requester_id, state, access_deadline) their live grants (what an
allowed check reads).
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_NAME = "ix_access_requests_tenant_state_created"
_ENGINEER = "ix_access_requests_tenant_requester_created"
_LIVE = "ix_access_requests_tenant_requester_state"
_DEADLINES = ["review_deadline", "approval_deadline", "access_deadline"]


def upgrade() -> None:
    op.drop_index(_NAME, table_name="access_requests")
    op.create_index(
        _NAME,
        "access_requests",
        ["tenant_id", "state", "created_at", "id"],
        postgresql_include=_DEADLINES,
    )
    op.create_index(
        _ENGINEER,
        "access_requests",
        ["tenant_id", "requester_id", "created_at", "id"],
    )
    op.create_index(
        _LIVE, "access_requests", ["tenant_id", "requester_id", "state", "access_deadline"]
    )


def downgrade() -> None:
    op.drop_index(_LIVE, table_name="access_requests")
    op.drop_index(_ENGINEER, table_name="access_requests")
    op.drop_index(_NAME, table_name="access_requests")
    op.create_index(_NAME, "access_requests", ["tenant_id", "state", "created_at"])
