"""sign-in as organisations expect: single sign-on settings, second factors, step-up

Revision ID: 0006
Revises: 0005

Existing sessions keep working: they are full sessions (no stage), signed in with a
password, with no provider and no pending action. No tenant gets single sign-on or a
second-factor rule until its admin sets one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lockbox.store.tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TIME = lockbox.store.tables.UTCDateTime(timezone=True)
_ID = sa.String(length=40)


def upgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auth_provider", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("stage", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("pending_action", sa.JSON(), nullable=True))
    op.create_table(
        "sign_in_settings",
        sa.Column("scope", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=True),
        sa.Column("sso_enabled", sa.Boolean(), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=True),
        sa.Column("client_id", sa.String(length=200), nullable=True),
        sa.Column("client_secret", sa.String(length=500), nullable=True),
        sa.Column("email_domains", sa.JSON(), nullable=False),
        sa.Column("groups_claim", sa.String(length=100), nullable=False),
        sa.Column("role_map", sa.JSON(), nullable=False),
        sa.Column("jit", sa.Boolean(), nullable=False),
        sa.Column("require_sso", sa.Boolean(), nullable=False),
        sa.Column("require_second_factor", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("updated_by", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_sign_in_settings_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_sign_in_settings")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_sign_in_settings_tenant_id")),
    )
    op.create_table(
        "second_factors",
        sa.Column("id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=True),
        sa.Column("credential_id", sa.String(length=400), nullable=True),
        sa.Column("public_key", sa.Text(), nullable=True),
        sa.Column("sign_count", sa.Integer(), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("last_used_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_second_factors_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_second_factors")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_second_factors_credential_id")),
    )
    with op.batch_alter_table("second_factors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_second_factors_user_id"), ["user_id"], unique=False)
    op.create_table(
        "recovery_codes",
        sa.Column("id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("used_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_recovery_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_recovery_codes_code_hash")),
    )
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recovery_codes_user_id"), ["user_id"], unique=False)
    op.create_table(
        "auth_flows",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("scope", _ID, nullable=True),
        sa.Column("session_id", _ID, nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_flows")),
    )
    with op.batch_alter_table("auth_flows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_flows_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("auth_flows")
    op.drop_table("recovery_codes")
    op.drop_table("second_factors")
    op.drop_table("sign_in_settings")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_column("pending_action")
        batch_op.drop_column("stage")
        batch_op.drop_column("auth_provider")
