"""integrity: case-insensitive unique e-mail, tenant domains, resource-service scopes,
password-reset codes, the credential behind each decision

Revision ID: 0002
Revises: 0001

Existing data keeps its meaning:

* every user gets ``email_key`` (the lower-cased address); if two users' addresses differ
  only in case the upgrade stops and names them, because one of them must be merged or
  renamed by a person before the database can promise that an address is one user;
* each tenant gets the e-mail domains its customer users already use, unless a domain is
  used by users of several tenants (then nobody gets it and the provider sets it);
* existing resource services keep serving every tenant and every resource (``*``) until
  the provider narrows them; they have no token audience until one is set.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import lockbox.store.tables
from lockbox.store.db import MigrationRefused

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_key", sa.String(length=320), nullable=True))
    conn.execute(sa.text("UPDATE users SET email_key = lower(email)"))
    duplicates = conn.execute(
        sa.text(
            "SELECT email_key, count(*) AS n FROM users GROUP BY email_key HAVING count(*) > 1 "
            "ORDER BY email_key"
        )
    ).all()
    if duplicates:
        listed = ", ".join(f"{row[0]} ({row[1]} users)" for row in duplicates)
        raise MigrationRefused(
            "cannot make e-mail addresses unique regardless of case: these addresses belong "
            f"to more than one user: {listed}. Rename or deactivate-and-rename the extra "
            "accounts (each address must be one person), then run the upgrade again."
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("email_key", existing_type=sa.String(length=320), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_users_email_key"), ["email_key"])

    with op.batch_alter_table("request_decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("credential", sa.String(length=80), nullable=True))

    op.create_table(
        "tenant_domains",
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", lockbox.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tenant_domains_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_tenant_domains")),
    )
    with op.batch_alter_table("tenant_domains", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tenant_domains_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "resource_services",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("audience", sa.String(length=200), nullable=True),
        sa.Column("all_tenants", sa.Boolean(), nullable=False),
        sa.Column("tenant_ids", sa.JSON(), nullable=False),
        sa.Column("prefixes", sa.JSON(), nullable=False),
        sa.Column("updated_at", lockbox.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_resource_services_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_resource_services")),
        sa.UniqueConstraint("audience", name=op.f("uq_resource_services_audience")),
    )

    op.create_table(
        "password_resets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("code_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", lockbox.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", lockbox.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", lockbox.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_password_resets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
    )
    with op.batch_alter_table("password_resets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_password_resets_user_id"), ["user_id"], unique=False)

    _backfill(conn)


def _backfill(conn: sa.Connection) -> None:
    now = datetime.now(UTC)
    rows = conn.execute(
        sa.text("SELECT tenant_id, email_key FROM users WHERE tenant_id IS NOT NULL")
    ).all()
    owners: dict[str, set[str]] = {}
    for tenant_id, key in rows:
        owners.setdefault(str(key).rpartition("@")[2], set()).add(str(tenant_id))
    domains = sa.table(
        "tenant_domains",
        sa.column("domain", sa.String),
        sa.column("tenant_id", sa.String),
        sa.column("created_at", lockbox.store.tables.UTCDateTime(timezone=True)),
    )
    unambiguous = [
        {"domain": domain, "tenant_id": next(iter(tenants)), "created_at": now}
        for domain, tenants in sorted(owners.items())
        if len(tenants) == 1 and domain
    ]
    if unambiguous:
        conn.execute(sa.insert(domains), unambiguous)
    services = conn.execute(
        sa.text("SELECT user_id FROM user_roles WHERE role = 'resource_service'")
    ).all()
    table = sa.table(
        "resource_services",
        sa.column("user_id", sa.String),
        sa.column("audience", sa.String),
        sa.column("all_tenants", sa.Boolean),
        sa.column("tenant_ids", sa.JSON),
        sa.column("prefixes", sa.JSON),
        sa.column("updated_at", lockbox.store.tables.UTCDateTime(timezone=True)),
    )
    if services:
        conn.execute(
            sa.insert(table),
            [
                {
                    "user_id": row[0],
                    "audience": None,
                    "all_tenants": True,
                    "tenant_ids": [],
                    "prefixes": ["*"],
                    "updated_at": now,
                }
                for row in services
            ],
        )


def downgrade() -> None:
    op.drop_table("password_resets")
    op.drop_table("resource_services")
    op.drop_table("tenant_domains")
    with op.batch_alter_table("request_decisions", schema=None) as batch_op:
        batch_op.drop_column("credential")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_email_key"), type_="unique")
        batch_op.drop_column("email_key")
