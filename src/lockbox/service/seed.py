"""The demo data behind ``make run``: two tenants, one user of every role, and API tokens.

Idempotent: tenants and users are created only if missing; every run revokes
the previous demo tokens and issues fresh ones (a token is shown once, so the
only way to print it again is to make a new one).
"""

from __future__ import annotations

from dataclasses import dataclass

from lockbox.config import get_settings
from lockbox.domain.errors import NotFound
from lockbox.domain.roles import Principal
from lockbox.service import resource_services, tenants, tokens, users
from lockbox.service.app import Lockbox
from lockbox.store import repositories as repo
from lockbox.store import tokens as token_store

DEMO_TOKEN_NAME = "demo"

#: (slug, display name, e-mail domain) of the demo tenants.
DEMO_TENANTS = (
    ("contoso", "Contoso", "contoso.example"),
    ("fabrikam", "Fabrikam", "fabrikam.example"),
)
#: What the demo mail store serves: every demo tenant's mailboxes.
DEMO_SERVICE_PREFIXES = ["exchange/"]


@dataclass(frozen=True)
class DemoUser:
    key: str  # the suffix of LOCKBOX_TOKEN_<KEY>
    email: str
    role: str
    tenant: str | None
    display_name: str

    @property
    def password(self) -> str:
        return f"demo-{self.key.lower().replace('_', '-')}-password"


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("ENGINEER", "erin@provider.example", "engineer", None, "Erin (support engineer)"),
    DemoUser("MANAGER", "mark@provider.example", "manager", None, "Mark (support manager)"),
    DemoUser("PROVIDER_ADMIN", "pat@provider.example", "provider_admin", None, "Pat (admin)"),
    DemoUser(
        "RESOURCE_SERVICE", "mailstore@provider.example", "resource_service", None, "Mail store"
    ),
    DemoUser("CONTOSO_TENANT_ADMIN", "ines@contoso.example", "tenant_admin", "contoso", "Ines"),
    DemoUser("CONTOSO_APPROVER", "paula@contoso.example", "approver", "contoso", "Paula"),
    DemoUser("CONTOSO_AUDITOR", "audrey@contoso.example", "auditor", "contoso", "Audrey"),
    DemoUser("FABRIKAM_TENANT_ADMIN", "fay@fabrikam.example", "tenant_admin", "fabrikam", "Fay"),
    DemoUser("FABRIKAM_APPROVER", "fred@fabrikam.example", "approver", "fabrikam", "Fred"),
    DemoUser("FABRIKAM_AUDITOR", "finn@fabrikam.example", "auditor", "fabrikam", "Finn"),
)


@dataclass(frozen=True)
class SeededUser:
    user: DemoUser
    user_id: str
    token: str
    created: bool


@dataclass(frozen=True)
class SeedResult:
    tenants_created: list[str]
    users: list[SeededUser]

    def env_lines(self) -> list[str]:
        return [f"LOCKBOX_TOKEN_{s.user.key}={s.token}" for s in self.users]


def seed_demo(
    app: Lockbox, actor: Principal | None = None, *, audience: str | None = None
) -> SeedResult:
    """Create what is missing and issue a fresh demo token for every demo user."""
    operator = actor or Principal.operator()
    created_tenants = []
    for slug, name, domain in DEMO_TENANTS:
        try:
            found = tenants.get_tenant(app, operator, slug)
            if domain not in found.email_domains:
                tenants.set_domains(app, operator, slug, [*found.email_domains, domain])
        except NotFound:
            tenants.create_tenant(app, operator, slug=slug, name=name, email_domains=[domain])
            created_tenants.append(slug)
    seeded = []
    for demo in DEMO_USERS:
        with app.read() as tx:
            existing = repo.get_user(tx.conn, demo.email)
        created = existing is None
        if existing is None:
            user = users.create_user(
                app,
                operator,
                email=demo.email,
                roles=[demo.role],
                tenant=demo.tenant,
                display_name=demo.display_name,
                password=demo.password,
            )
        else:
            user = existing
        with app.tx() as tx:
            for row in token_store.for_user(tx.conn, user.id):
                if row.name == DEMO_TOKEN_NAME and row.revoked_at is None:
                    token_store.revoke(tx.conn, row.id, tx.now)
        issued = tokens.create_token(app, operator, user=user.id, name=DEMO_TOKEN_NAME)
        seeded.append(SeededUser(demo, user.id, issued.secret, created))
        if demo.role == "resource_service":
            resource_services.register(
                app,
                operator,
                user.id,
                tenants=[slug for slug, _name, _domain in DEMO_TENANTS],
                prefixes=DEMO_SERVICE_PREFIXES,
                audience=audience or get_settings().access_token_audience,
            )
    return SeedResult(created_tenants, seeded)
