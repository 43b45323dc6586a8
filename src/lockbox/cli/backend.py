"""What the CLI talks to: the local database directly, or (with ``--server``) the HTTP API.

Both backends expose the same methods and return the same JSON-ready
dictionaries (:mod:`lockbox.service.views`), so every command works the same
way in both modes and prints the same fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol

from lockbox.clock import Clock, SystemClock
from lockbox.domain.instants import format_instant
from lockbox.domain.request import AccessRequest, Narrowing
from lockbox.domain.roles import Principal
from lockbox.service import (
    audit,
    cases,
    passwords,
    people,
    requests,
    resource_services,
    sweeper,
    tenants,
    tokens,
    users,
    views,
)
from lockbox.service.app import Lockbox
from lockbox.store.db import Database, upgrade

JSON = dict[str, Any]


class Backend(Protocol):
    def create_tenant(self, slug: str, name: str, policy: JSON, domains: list[str]) -> JSON: ...
    def set_domains(self, tenant: str, domains: list[str]) -> JSON: ...
    def start_password_reset(self, user: str) -> JSON: ...
    def complete_password_reset(self, email: str, code: str, new_password: str) -> None: ...
    def change_password(self, current: str, new: str) -> None: ...
    def get_service(self, user: str) -> JSON: ...
    def set_service(
        self, user: str, tenants: list[str] | str, prefixes: list[str], audience: str | None
    ) -> JSON: ...
    def list_tenants(self) -> list[JSON]: ...
    def get_tenant(self, ref: str) -> JSON: ...
    def change_policy(self, tenant: str, changes: JSON) -> JSON: ...
    def create_user(
        self,
        email: str,
        roles: list[str],
        tenant: str | None,
        name: str | None,
        password: str | None,
    ) -> JSON: ...
    def list_users(self, tenant: str | None) -> list[JSON]: ...
    def set_roles(self, user: str, roles: list[str]) -> JSON: ...
    def set_active(self, user: str, active: bool) -> JSON: ...
    def create_token(self, user: str | None, name: str, expires_at: datetime | None) -> JSON: ...
    def list_tokens(self, user: str | None) -> list[JSON]: ...
    def revoke_token(self, token_id: str) -> JSON: ...
    def open_case(
        self, tenant: str, title: str, engineer: str | None, reference: str | None
    ) -> JSON: ...
    def close_case(self, case_id: str, comment: str | None) -> JSON: ...
    def list_cases(self, tenant: str | None, status: str | None) -> list[JSON]: ...
    def get_case(self, case_id: str) -> JSON: ...
    def submit_request(
        self,
        tenant: str,
        case_id: str,
        resources: list[str],
        access_level: str,
        justification: str,
        category: str = "other",
        starts_at: datetime | None = None,
    ) -> JSON: ...
    def review_request(self, request_id: str, approve: bool, comment: str | None) -> JSON: ...
    def decide_request(
        self, request_id: str, approve: bool, comment: str | None, grant: JSON | None = None
    ) -> JSON: ...
    def extend_request(self, request_id: str, by_seconds: int, reason: str) -> JSON: ...
    def decide_extension(self, request_id: str, approve: bool, comment: str | None) -> JSON: ...
    def end_request(self, request_id: str, how: str, comment: str | None) -> JSON: ...
    def get_request(self, request_id: str) -> JSON: ...
    def list_requests(self, filters: JSON, limit: int, cursor: str | None) -> JSON: ...
    def audit_list(self, tenant: str, filters: JSON, limit: int, after: int) -> JSON: ...
    def audit_export(self, tenant: str, fmt: str) -> Iterator[str]: ...
    def audit_verify(self, tenant: str | None) -> list[JSON]: ...
    def sweep(self) -> JSON: ...


class LocalBackend:
    """Runs use cases in-process against the database, acting as ``principal``."""

    def __init__(
        self, database_url: str | None, principal_ref: str | None, clock: Clock | None = None
    ):
        self.app = Lockbox(Database(database_url), clock or SystemClock())
        self._principal_ref = principal_ref
        self._principal: Principal | None = None

    @property
    def actor(self) -> Principal:
        if self._principal is None:
            self._principal = (
                users.principal_for(self.app, self._principal_ref)
                if self._principal_ref
                else Principal.operator()
            )
        return self._principal

    def migrate(self) -> None:
        upgrade(self.app.db)

    # tenants and users
    def create_tenant(self, slug: str, name: str, policy: JSON, domains: list[str]) -> JSON:
        return views.tenant(
            tenants.create_tenant(
                self.app, self.actor, slug=slug, name=name, policy=policy, email_domains=domains
            )
        )

    def set_domains(self, tenant: str, domains: list[str]) -> JSON:
        return views.tenant(tenants.set_domains(self.app, self.actor, tenant, domains))

    def start_password_reset(self, user: str) -> JSON:
        started = passwords.start_reset(self.app, self.actor, user)
        return {
            "user_id": started.user.id,
            "email": started.user.email,
            "expires_at": format_instant(started.expires_at),
        }

    def complete_password_reset(self, email: str, code: str, new_password: str) -> None:
        passwords.complete_reset(self.app, email, code, new_password)

    def change_password(self, current: str, new: str) -> None:
        passwords.change_own_password(self.app, self.actor, current, new)

    def get_service(self, user: str) -> JSON:
        return resource_services.view(
            resource_services.get_registration(self.app, self.actor, user)
        )

    def set_service(
        self, user: str, tenants: list[str] | str, prefixes: list[str], audience: str | None
    ) -> JSON:
        registration = resource_services.register(
            self.app, self.actor, user, tenants=tenants, prefixes=prefixes, audience=audience
        )
        return resource_services.view(registration)

    def list_tenants(self) -> list[JSON]:
        return [views.tenant(t) for t in tenants.list_tenants(self.app, self.actor)]

    def get_tenant(self, ref: str) -> JSON:
        return views.tenant(tenants.get_tenant(self.app, self.actor, ref))

    def change_policy(self, tenant: str, changes: JSON) -> JSON:
        """The tenant as changed, or ``{"pending_change": …}`` when it waits for a second
        tenant admin (four eyes)."""
        outcome = tenants.update_policy(self.app, self.actor, tenant, changes)
        if outcome.pending is not None:
            from lockbox.service import changes as pending_changes

            return {"pending_change": pending_changes.view(outcome.pending)}
        return views.tenant(outcome.tenant)

    def create_user(
        self,
        email: str,
        roles: list[str],
        tenant: str | None,
        name: str | None,
        password: str | None,
    ) -> JSON:
        return views.user(
            users.create_user(
                self.app,
                self.actor,
                email=email,
                roles=roles,
                tenant=tenant,
                display_name=name,
                password=password,
            )
        )

    def list_users(self, tenant: str | None) -> list[JSON]:
        return [views.user(u) for u in users.list_users(self.app, self.actor, tenant=tenant)]

    def set_roles(self, user: str, roles: list[str]) -> JSON:
        return views.user(users.set_roles(self.app, self.actor, user, roles))

    def set_active(self, user: str, active: bool) -> JSON:
        return views.user(users.set_active(self.app, self.actor, user, active))

    def create_token(self, user: str | None, name: str, expires_at: datetime | None) -> JSON:
        issued = tokens.create_token(
            self.app, self.actor, user=user, name=name, expires_at=expires_at
        )
        return {**views.token(issued.row), "token": issued.secret}

    def list_tokens(self, user: str | None) -> list[JSON]:
        return [views.token(t) for t in tokens.list_tokens(self.app, self.actor, user)]

    def revoke_token(self, token_id: str) -> JSON:
        return views.token(tokens.revoke_token(self.app, self.actor, token_id))

    # cases
    def open_case(
        self, tenant: str, title: str, engineer: str | None, reference: str | None
    ) -> JSON:
        return views.case(
            cases.open_case(
                self.app,
                self.actor,
                tenant=tenant,
                title=title,
                engineer=engineer,
                reference=reference,
            )
        )

    def close_case(self, case_id: str, comment: str | None) -> JSON:
        case, ended = cases.close_case(self.app, self.actor, case_id, comment=comment)
        return {**views.case(case), "ended_requests": [r.id for r in ended]}

    def list_cases(self, tenant: str | None, status: str | None) -> list[JSON]:
        return [
            views.case(c)
            for c in cases.list_cases(self.app, self.actor, tenant=tenant, status=status)
        ]

    def get_case(self, case_id: str) -> JSON:
        return views.case(cases.get_case(self.app, self.actor, case_id))

    # requests
    def _view(self, request_id: str) -> JSON:
        view = requests.get_request(self.app, self.actor, request_id)
        found = people.resolve(
            self.app, people.in_request(view.request, view.history) | set(view.can_approve)
        )
        return {**views.request(view, history=True), "people": people.as_map(found)}

    def _written(self, request: AccessRequest) -> JSON:
        """What an action answers, as over the API: the request as written, no re-read."""
        return views.request(requests.RequestView.of(request, self.app.now()))

    def submit_request(
        self,
        tenant: str,
        case_id: str,
        resources: list[str],
        access_level: str,
        justification: str,
        category: str = "other",
        starts_at: datetime | None = None,
    ) -> JSON:
        created = requests.submit_request(
            self.app,
            self.actor,
            tenant=tenant,
            case_id=case_id,
            resources=resources,
            access_level=access_level,
            justification=justification,
            category=category,
            starts_at=starts_at,
        )
        return self._written(created)

    def review_request(self, request_id: str, approve: bool, comment: str | None) -> JSON:
        done = requests.review_request(
            self.app, self.actor, request_id, approve=approve, comment=comment
        )
        return self._written(done)

    def decide_request(
        self, request_id: str, approve: bool, comment: str | None, grant: JSON | None = None
    ) -> JSON:
        grant = grant or {}
        narrow = Narrowing.of(
            resources=grant.get("resources"),
            access_level=grant.get("access_level"),
            access_window_seconds=grant.get("access_window_seconds"),
        )
        done = requests.decide_request(
            self.app, self.actor, request_id, approve=approve, comment=comment, narrow=narrow
        )
        return self._written(done)

    def extend_request(self, request_id: str, by_seconds: int, reason: str) -> JSON:
        done = requests.extend_request(
            self.app, self.actor, request_id, by=timedelta(seconds=by_seconds), reason=reason
        )
        return self._written(done)

    def decide_extension(self, request_id: str, approve: bool, comment: str | None) -> JSON:
        done = requests.decide_extension(
            self.app, self.actor, request_id, approve=approve, comment=comment
        )
        return self._written(done)

    def end_request(self, request_id: str, how: str, comment: str | None) -> JSON:
        action = {
            "cancel": requests.cancel_request,
            "close": requests.close_request,
            "revoke": requests.revoke_request,
        }[how]
        return self._written(action(self.app, self.actor, request_id, comment=comment))

    def get_request(self, request_id: str) -> JSON:
        return self._view(request_id)

    def list_requests(self, filters: JSON, limit: int, cursor: str | None) -> JSON:
        page = requests.list_requests(self.app, self.actor, limit=limit, cursor=cursor, **filters)
        return {"items": [views.request(v) for v in page.items], "next_cursor": page.next_cursor}

    # audit and upkeep
    def audit_list(self, tenant: str, filters: JSON, limit: int, after: int) -> JSON:
        records, next_cursor = audit.query(
            self.app, self.actor, tenant, limit=limit, after_seq=after, **filters
        )
        return {
            "items": [views.audit_record(r) for r in records],
            "next_cursor": str(next_cursor) if next_cursor is not None else None,
            "people": people.as_map(people.resolve(self.app, people.in_records(records))),
        }

    def audit_export(self, tenant: str, fmt: str) -> Iterator[str]:
        return audit.export(self.app, self.actor, tenant, fmt)

    def audit_verify(self, tenant: str | None) -> list[JSON]:
        return [views.chain_report(r) for r in audit.verify(self.app, self.actor, tenant)]

    def sweep(self) -> JSON:
        result = sweeper.sweep_deadlines(self.app)
        return {"expired": result.expired, "skipped": result.skipped}
