"""The schema, as SQLAlchemy Core tables.

Core rather than ORM: every write in Lockbox is an explicit statement (with a
version check or a lock), so hiding them behind a unit-of-work flush would
only obscure the concurrency rules. Alembic migrations are written against
this metadata, and a test checks the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from lockbox.domain.instants import format_instant

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python on every database (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"the database returned {type(value).__name__} for a time")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def stored_instant_text(raw: object) -> str:
    """:func:`~lockbox.domain.instants.format_instant` of a :class:`UTCDateTime` column read
    without its type (``type_coerce(column, String)``), for reads of millions of rows.

    SQLite holds the UTC time as ``YYYY-MM-DD HH:MM:SS.ffffff`` (SQLAlchemy always
    writes the microseconds), which is the canonical spelling but for two characters;
    anything else, and PostgreSQL's aware datetimes, go the long way.
    """
    if isinstance(raw, str):
        if len(raw) == 26 and raw[10] == " " and raw[19] == ".":
            return f"{raw[:10]}T{raw[11:]}Z"
        raw = datetime.fromisoformat(raw)
    if not isinstance(raw, datetime):
        raise TypeError(f"the database returned {type(raw).__name__} for a time")
    return format_instant(raw if raw.tzinfo is not None else raw.replace(tzinfo=UTC))


ID = String(40)

tenants = Table(
    "tenants",
    metadata,
    Column("id", ID, primary_key=True),
    Column("slug", String(63), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("lockbox_enabled", Boolean, nullable=False),
    Column("approval_window_s", Integer, nullable=False),
    Column("access_window_s", Integer, nullable=False),
    Column("review_window_s", Integer, nullable=False),
    Column("required_approvals", Integer, nullable=False),
    Column("notify_emails", JSON, nullable=False),
    Column("reminder_fraction", Float, nullable=False),
    # The approval stages and named groups (JSON); null: the one default stage, no groups.
    Column("approval_stages", JSON, nullable=True),
    Column("approver_groups", JSON, nullable=True),
    Column("max_extensions", Integer, nullable=False, server_default="2"),
    Column("extension_stages", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    # The address lower-cased: unique, so two spellings of one address can never be two
    # users (concurrent creations race on this index), and look-ups by e-mail use it.
    Column("email_key", String(320), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("side", String(16), nullable=False),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=True, index=True),
    Column("password_hash", String(200), nullable=True),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # The person's chosen IANA time zone for pages; None: UTC, refined by the browser.
    Column("time_zone", String(64), nullable=True),
)

user_roles = Table(
    "user_roles",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(32), primary_key=True),
    Index("ix_user_roles_role", "role"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
)

tenant_domains = Table(
    "tenant_domains",
    metadata,
    # One domain belongs to at most one tenant: its admins may add users only there.
    Column("domain", String(253), primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
)

resource_services = Table(
    "resource_services",
    metadata,
    # What a resource-service user serves; a service without a row serves nothing.
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("audience", String(200), nullable=True, unique=True),
    Column("all_tenants", Boolean, nullable=False),
    Column("tenant_ids", JSON, nullable=False),
    Column("prefixes", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

password_resets = Table(
    "password_resets",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("code_hash", String(200), nullable=False),  # Argon2id of the one-time code
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("created_by", String(40), nullable=False),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    # Server-side sessions of the admin center: the cookie holds a random secret, the
    # database only its SHA-256 digest, so a stolen database opens no session.
    Column("id", ID, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf_secret", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),  # the absolute lifetime
    Column("authenticated_at", UTCDateTime, nullable=False),
    Column("auth_method", String(32), nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("client_ip", String(64), nullable=True),
    Column("user_agent", String(200), nullable=True),
    Column("flash", JSON, nullable=True),  # messages to show on the next page
    # How the person proved who they are (issue #13): the identity provider's issuer for
    # single sign-on; the stage of a sign-in not finished yet (None: a full session;
    # "second_factor": password checked, code or passkey to come; "enrol": must enrol a
    # second factor before acting); an action confirmed before a step-up, to replay.
    Column("auth_provider", String(500), nullable=True),
    Column("stage", String(16), nullable=True),
    Column("pending_action", JSON, nullable=True),
)

sign_in_settings = Table(
    "sign_in_settings",
    metadata,
    # How the people of one scope sign in: "provider" (staff) or a tenant's id. Single
    # sign-on through the organisation's OpenID Connect provider, and the rules on top.
    Column("scope", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=True, unique=True),
    Column("sso_enabled", Boolean, nullable=False),
    Column("issuer", String(500), nullable=True),
    Column("client_id", String(200), nullable=True),
    # Write-only: needed to redeem codes at the provider, never shown or logged again.
    Column("client_secret", String(500), nullable=True),
    Column("email_domains", JSON, nullable=False),
    Column("groups_claim", String(100), nullable=False),
    Column("role_map", JSON, nullable=False),  # group -> [role, ...]
    Column("jit", Boolean, nullable=False),
    Column("require_sso", Boolean, nullable=False),
    Column("require_second_factor", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(40), nullable=False),
    Column("version", Integer, nullable=False),
)

second_factors = Table(
    "second_factors",
    metadata,
    # A person's authenticator apps (TOTP) and passkeys (WebAuthn credentials).
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # totp | passkey
    Column("name", String(100), nullable=False),
    Column("secret", String(100), nullable=True),  # TOTP: the shared secret (base32)
    Column("credential_id", String(400), nullable=True, unique=True),  # passkey (base64url)
    Column("public_key", Text, nullable=True),  # passkey: COSE public key (base64url)
    Column("sign_count", Integer, nullable=False),
    Column("last_step", Integer, nullable=True),  # TOTP: last time step accepted (no reuse)
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    # One-time codes for a lost authenticator: only their SHA-256 (they carry 80 random bits).
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

auth_flows = Table(
    "auth_flows",
    metadata,
    # A sign-in step in flight: an OpenID Connect round trip (state, nonce, PKCE verifier)
    # or a WebAuthn challenge. The browser holds a random handle, the row its SHA-256.
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # oidc | webauthn
    Column("scope", ID, nullable=True),
    Column("session_id", ID, nullable=True),
    Column("data", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

signin_throttle = Table(
    "signin_throttle",
    metadata,
    # Failed sign-ins per key ("account:<address>", "ip:<address>") in a sliding window.
    Column("key", String(400), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_started_at", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
)

cases = Table(
    "cases",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("reference", String(100), nullable=True),
    Column("engineer_id", ID, ForeignKey("users.id"), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("opened_by", String(40), nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("closed_by", String(40), nullable=True),
    Index("ix_cases_tenant_status", "tenant_id", "status"),
)

access_requests = Table(
    "access_requests",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("case_id", ID, ForeignKey("cases.id"), nullable=False, index=True),
    Column("requester_id", ID, ForeignKey("users.id"), nullable=False),
    Column("resources", JSON, nullable=False),
    Column("access_level", String(16), nullable=False),
    Column("justification", Text, nullable=False),
    # What the access is for (incident, maintenance, …): auto-approval rules select on it.
    Column("category", String(32), nullable=False, server_default="other"),
    Column("state", String(24), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("review_deadline", UTCDateTime, nullable=False),
    Column("reviewer_id", String(40), nullable=True),
    Column("reviewed_at", UTCDateTime, nullable=True),
    Column("review_comment", Text, nullable=True),
    Column("customer_step", Boolean, nullable=True),
    Column("required_approvals", Integer, nullable=False),
    # The customer stages frozen at review (JSON); null: one stage of required_approvals.
    Column("stages", JSON, nullable=True),
    # What was asked, once an approver granted less (null: as asked), the window granted.
    Column("asked_resources", JSON, nullable=True),
    Column("asked_level", String(16), nullable=True),
    Column("access_window_s", Integer, nullable=True),
    # An extension waiting for approvals (JSON), and how many were granted.
    Column("extension", JSON(none_as_null=True), nullable=True),  # SQL NULL: none waits
    Column("extensions", Integer, nullable=False, server_default="0"),
    # A scheduled start of access (null: at approval).
    Column("starts_at", UTCDateTime, nullable=True),
    Column("approval_deadline", UTCDateTime, nullable=True),
    Column("approved_at", UTCDateTime, nullable=True),
    Column("access_deadline", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("ended_by", String(40), nullable=True),
    Column("end_comment", Text, nullable=True),
    Column("first_used_at", UTCDateTime, nullable=True),
    Column("version", Integer, nullable=False),
    # The queries that grow: the sweeper's "due" scans, lists per tenant and per requester.
    Index("ix_access_requests_state_review", "state", "review_deadline"),
    Index("ix_access_requests_state_approval", "state", "approval_deadline"),
    Index("ix_access_requests_state_access", "state", "access_deadline"),
    # A page of a tenant's requests in a state is read from this index alone on PostgreSQL
    # (the deadlines decide the effective state); only the page's rows are then fetched.
    Index(
        "ix_access_requests_tenant_state_created",
        "tenant_id",
        "state",
        "created_at",
        "id",
        postgresql_include=["review_deadline", "approval_deadline", "access_deadline"],
    ),
    Index("ix_access_requests_tenant_created", "tenant_id", "created_at", "id"),
    # One engineer's requests on one tenant, newest first (a denied check explains itself).
    Index(
        "ix_access_requests_tenant_requester_created",
        "tenant_id",
        "requester_id",
        "created_at",
        "id",
    ),
    # One engineer's live grants on one tenant (every allowed online check reads them).
    Index(
        "ix_access_requests_tenant_requester_state",
        "tenant_id",
        "requester_id",
        "state",
        "access_deadline",
    ),
    Index("ix_access_requests_requester_created", "requester_id", "created_at"),
)

request_decisions = Table(
    "request_decisions",
    metadata,
    Column("request_id", ID, ForeignKey("access_requests.id"), primary_key=True),
    Column("actor_id", ID, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("comment", Text, nullable=True),
    # Which credential the decision was made with (``token:tok_…``, ``session:ses_…``).
    Column("credential", String(80), nullable=True),
    # The stage (its key) the decision was made in; null: made before stages existed.
    Column("stage", String(40), nullable=True),
    # Made as this person's delegate (null: in the decider's own right).
    Column("on_behalf_of", String(40), nullable=True),
)

auto_approval_rules = Table(
    "auto_approval_rules",
    metadata,
    # What a tenant's lockbox approves without a person (docs/approvals.md). Rows are kept
    # after a rule is deleted: audit records name rules by id.
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("name", String(80), nullable=False),
    # resources, access_level, categories, days, hours, time_zone, max_access_window_seconds
    Column("definition", JSON, nullable=False),
    # pending | active | disabled | deleted | rejected | withdrawn (only active approves)
    Column("state", String(16), nullable=False),
    Column("created_by", String(40), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_by", String(40), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_auto_approval_rules_tenant_state", "tenant_id", "state"),
)

pending_changes = Table(
    "pending_changes",
    metadata,
    # Changes that widen access, waiting for a second tenant admin (four eyes).
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("kind", String(24), nullable=False),  # policy.change | auto_rule.create | .update
    Column("payload", JSON, nullable=False),  # what it changes, and the version it changes
    Column("reasons", JSON, nullable=False),  # why it needs a second admin, in words
    Column("proposed_by", String(40), nullable=False),
    Column("proposed_at", UTCDateTime, nullable=False),
    # pending | applied | rejected | withdrawn | superseded
    Column("state", String(16), nullable=False),
    Column("decided_by", String(40), nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("comment", Text, nullable=True),
    Column("version", Integer, nullable=False),
    Index("ix_pending_changes_tenant_state", "tenant_id", "state", "proposed_at"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", ID, primary_key=True),
    # The chain: a tenant's id, or ``provider`` for the provider's own actions (0005).
    Column("tenant_id", ID, ForeignKey("audit_heads.tenant_id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor_id", String(40), nullable=False),
    Column("actor_kind", String(16), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("request_id", String(40), nullable=True),
    Column("details", Text, nullable=False),  # canonical JSON text, hashed as stored
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("tenant_id", "seq"),
    Index("ix_audit_events_tenant_request", "tenant_id", "request_id"),
    Index("ix_audit_events_tenant_at", "tenant_id", "at"),
)

audit_heads = Table(
    "audit_heads",
    metadata,
    # One row per chain, the registry of chains: each tenant's (created with the tenant)
    # and the provider's own (``provider``, created by migration 0005). Records and
    # checkpoints refer to it.
    Column("tenant_id", ID, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    # Signed statements "(chain, seq, hash) at time T" (issue #12): the signature is over
    # the canonical statement rebuilt from these columns (docs/audit.md).
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("audit_heads.tenant_id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kid", String(64), ForeignKey("signing_keys.kid"), nullable=False),
    Column("signature", String(100), nullable=False),  # base64 of 64 bytes
    Column("reason", String(16), nullable=False),  # decision | hourly | daily | export | manual
    Index("ix_audit_checkpoints_tenant_seq", "tenant_id", "seq"),
    Index("ix_audit_checkpoints_tenant_at", "tenant_id", "at"),
)

decision_receipts = Table(
    "decision_receipts",
    metadata,
    # Signed receipts of decisions on access. ``payload`` holds the canonical statement as
    # signed; no foreign key to the audit record it names, so tampering with the log never
    # has to get past the receipts (and cannot hide behind them either).
    Column("id", ID, primary_key=True),
    Column("request_id", ID, ForeignKey("access_requests.id"), nullable=False),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("audit_seq", Integer, nullable=False),  # its record's place in the tenant's chain
    Column("kid", String(64), ForeignKey("signing_keys.kid"), nullable=False),
    Column("payload", Text, nullable=False),
    Column("signature", String(100), nullable=False),
    Index("ix_decision_receipts_request_seq", "request_id", "audit_seq"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", ID, primary_key=True),
    Column("channel", String(16), nullable=False),  # email | webhook
    Column("topic", String(64), nullable=False),
    Column("tenant_id", String(40), nullable=True),
    Column("request_id", String(40), nullable=True),
    Column("recipient", String(2048), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    # Deliver only while the request is still in this state (reminders).
    Column("only_if_state", String(24), nullable=True),
    Column("status", String(16), nullable=False),  # pending | sent | failed | skipped
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Index("ix_outbox_status_due", "status", "due_at"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=True, index=True),
    Column("url", String(2048), nullable=False),
    Column("secret", String(200), nullable=False),  # needed to sign; never shown after creation
    Column("events", JSON, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(40), nullable=False),
    # standard (signed JSON) | slack | teams (chat messages, unsigned: the URL is the secret)
    Column("format", String(16), nullable=False, server_default="standard"),
)

grant_changes = Table(
    "grant_changes",
    metadata,
    # The global, ordered stream of grants starting and ending, written in the same
    # transaction as the change (the grant feed follows it). ``seq`` is assigned under
    # the ``feed_head`` row lock, so it grows in commit order: a reader that has seen
    # ``seq`` N has seen every change before it.
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(8), nullable=False),  # grant | end
    Column("reason", String(32), nullable=False),
    Column("tenant_id", ID, nullable=False),
    Column("tenant_slug", String(63), nullable=False),
    Column("request_id", ID, nullable=False),
    Column("engineer_id", ID, nullable=False),
    Column("engineer_email", String(320), nullable=False),
    Column("resources", JSON, nullable=False),
    Column("access_level", String(16), nullable=False),
    Column("access_deadline", UTCDateTime, nullable=True),
    # A grant scheduled to start later: followers allow nothing before it.
    Column("access_starts_at", UTCDateTime, nullable=True),
)

feed_head = Table(
    "feed_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    # What the key signs: ``access`` tokens, or ``audit`` checkpoints and receipts (0005).
    Column("purpose", String(16), nullable=False),
    Column("algorithm", String(16), nullable=False),
    Column("private_pem", Text, nullable=False),
    Column("public_jwk", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime, nullable=True),  # no longer signs
    Column("publish_until", UTCDateTime, nullable=True),  # dropped from JWKS after this
)

helpdesk_integrations = Table(
    "helpdesk_integrations",
    metadata,
    # A help desk that opens, updates and closes cases with signed events (docs/helpdesk.md).
    Column("id", ID, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("secret", String(200), nullable=False),  # needed to verify; never shown after creation
    # After a rotation the previous secret still verifies until ``previous_until``.
    Column("previous_secret", String(200), nullable=True),
    Column("previous_until", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(40), nullable=False),
    Column("rotated_at", UTCDateTime, nullable=True),
)

helpdesk_deliveries = Table(
    "helpdesk_deliveries",
    metadata,
    # Every delivery applied (or deliberately ignored), by its ``webhook-id``: a repeat of one
    # is answered without doing anything again.
    Column(
        "integration_id",
        ID,
        ForeignKey("helpdesk_integrations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("webhook_id", String(200), primary_key=True),
    Column("ticket_id", String(100), nullable=False),
    Column("event_type", String(16), nullable=False),  # ticket.opened | .updated | .closed
    Column("outcome", String(24), nullable=False),
    Column("received_at", UTCDateTime, nullable=False, index=True),
)

helpdesk_tickets = Table(
    "helpdesk_tickets",
    metadata,
    # A help-desk ticket and the case it opened. ``case_id`` is None for a ticket that was
    # closed before Lockbox saw it open: remembered so that a late "opened" opens nothing.
    Column(
        "integration_id",
        ID,
        ForeignKey("helpdesk_integrations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("ticket_id", String(100), primary_key=True),
    Column("case_id", ID, ForeignKey("cases.id"), nullable=True, unique=True),
    Column("status", String(16), nullable=False),  # open | closed
    # The ticket's own ``updated_at`` of the last event applied (older events are ignored).
    Column("ticket_updated_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

delegations = Table(
    "delegations",
    metadata,
    # An approver's approvals handed to a colleague of the same tenant for a period.
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("from_user", ID, ForeignKey("users.id"), nullable=False),
    Column("to_user", ID, ForeignKey("users.id"), nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(40), nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revoked_by", String(40), nullable=True),
    # Who holds whose approvals now: looked up on every decision and "approval needed".
    Index("ix_delegations_to_user", "to_user", "ends_at"),
    Index("ix_delegations_from_user", "from_user", "ends_at"),
    Index("ix_delegations_tenant", "tenant_id", "created_at"),
)
