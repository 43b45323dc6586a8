"""The demo data behind ``make run``: two tenants, one user of every role, and API tokens.

Idempotent: tenants and users are created only if missing; every run revokes
the previous demo tokens and issues fresh ones (a token is shown once, so the
only way to print it again is to make a new one).
"""

from __future__ import annotations

from dataclasses import dataclass

from lockbox.domain.errors import NotFound
from lockbox.domain.roles import Principal
from lockbox.service import tenants, tokens, users
from lockbox.service.app import Lockbox
from lockbox.store import repositories as repo
from lockbox.store import tokens as token_store

DEMO_TOKEN_NAME = "demo"

#: (slug, display name) of the demo tenants.
DEMO_TENANTS = (("contoso", "Contoso"), ("fabrikam", "Fabrikam"))


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


def seed_demo(app: Lockbox, actor: Principal | None = None) -> SeedResult:
    """Create what is missing and issue a fresh demo token for every demo user."""
    operator = actor or Principal.operator()
    created_tenants = []
    for slug, name in DEMO_TENANTS:
        try:
            tenants.get_tenant(app, operator, slug)
        except NotFound:
            tenants.create_tenant(app, operator, slug=slug, name=name)
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
    return SeedResult(created_tenants, seeded)
