"""trust: signed checkpoints, decision receipts, audit signing keys, the provider's chain

Revision ID: 0005
Revises: 0004

Existing data keeps its meaning:

* every existing signing key signed access tokens, so it gets the purpose ``access``;
  audit keys (``audit``) are created on first use;
* every existing chain (one per tenant) keeps its records, head and hashes untouched;
  ``audit_heads`` becomes the registry of chains, so its link to ``tenants`` is dropped,
  the provider's own chain (``provider``) is added empty, and records now refer to
  their chain's head row. If a record belongs to a chain that has no head (which
  ``lockbox audit verify`` already reports as broken), the upgrade stops and names it:
  a person must decide what that chain is before the database promises every record
  belongs to a known chain;
* nothing was ever checkpointed or receipted before: the first checkpoints are issued
  by the next decision or, at the latest, by the worker's hourly pass.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lockbox.store.tables
from lockbox.store.db import MigrationRefused

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TIME = lockbox.store.tables.UTCDateTime(timezone=True)
PROVIDER_CHAIN = "provider"
GENESIS_HASH = "0" * 64


def upgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose", sa.String(length=16), nullable=True))
    conn.execute(sa.text("UPDATE signing_keys SET purpose = 'access'"))
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.alter_column("purpose", existing_type=sa.String(length=16), nullable=False)

    orphans = conn.execute(
        sa.text(
            "SELECT DISTINCT e.tenant_id FROM audit_events e LEFT JOIN audit_heads h "
            "ON h.tenant_id = e.tenant_id WHERE h.tenant_id IS NULL ORDER BY e.tenant_id"
        )
    ).all()
    if orphans:
        listed = ", ".join(str(row[0]) for row in orphans)
        raise MigrationRefused(
            "audit records belong to chains that have no head row: "
            f"{listed}. `lockbox audit verify` reports these chains as broken; restore their "
            "head rows (audit_heads) from a backup, then run the upgrade again."
        )

    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.drop_constraint("fk_audit_heads_tenant_id_tenants", type_="foreignkey")
    conn.execute(
        sa.text("INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (:chain, 0, :genesis)"),
        {"chain": PROVIDER_CHAIN, "genesis": GENESIS_HASH},
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint("fk_audit_events_tenant_id_tenants", type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_audit_events_tenant_id_audit_heads"),
            "audit_heads",
            ["tenant_id"],
            ["tenant_id"],
        )

    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["kid"], ["signing_keys.kid"], name=op.f("fk_audit_checkpoints_kid_signing_keys")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["audit_heads.tenant_id"],
            name=op.f("fk_audit_checkpoints_tenant_id_audit_heads"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
    )
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.create_index("ix_audit_checkpoints_tenant_seq", ["tenant_id", "seq"], unique=False)
        batch_op.create_index("ix_audit_checkpoints_tenant_at", ["tenant_id", "at"], unique=False)

    op.create_table(
        "decision_receipts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("audit_seq", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["kid"], ["signing_keys.kid"], name=op.f("fk_decision_receipts_kid_signing_keys")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["access_requests.id"],
            name=op.f("fk_decision_receipts_request_id_access_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_decision_receipts_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_receipts")),
    )
    with op.batch_alter_table("decision_receipts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_decision_receipts_request_seq", ["request_id", "audit_seq"], unique=False
        )


def downgrade() -> None:
    """Back to 0004: checkpoints, receipts, audit keys and the provider's chain are dropped
    (0004 has nowhere to keep them); tenant chains are untouched."""
    conn = op.get_bind()
    op.drop_table("decision_receipts")
    op.drop_table("audit_checkpoints")
    conn.execute(sa.text("DELETE FROM audit_events WHERE tenant_id = :c"), {"c": PROVIDER_CHAIN})
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint("fk_audit_events_tenant_id_audit_heads", type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_audit_events_tenant_id_tenants"), "tenants", ["tenant_id"], ["id"]
        )
    conn.execute(sa.text("DELETE FROM audit_heads WHERE tenant_id = :c"), {"c": PROVIDER_CHAIN})
    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_audit_heads_tenant_id_tenants"), "tenants", ["tenant_id"], ["id"]
        )
    conn.execute(sa.text("DELETE FROM signing_keys WHERE purpose <> 'access'"))
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_column("purpose")
