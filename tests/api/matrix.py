"""The generated authorization matrix: every endpoint × role × own/foreign tenant × credential.

The expected status of each case is *derived* here from
:data:`lockbox.domain.permissions.MATRIX` (role × intent → scope) and the
person-level rules of :data:`lockbox.domain.lifecycle.TRANSITIONS`, with this
oracle, written independently of the service layer's checks:

1. no, expired, revoked or malformed token → 401;
2. the object is invisible (a visibility intent's scope does not cover it) → 404;
3. the intent's scope does not cover the object → 403;
4. the lifecycle's person rule for the transition fails → 403;
5. otherwise → the endpoint's success status.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from sqlalchemy import select

from lockbox.domain.lifecycle import ActorRule, Event, State, find
from lockbox.domain.permissions import MATRIX, Intent, Scope
from lockbox.domain.roles import Principal, Role, Side
from lockbox.service import cases, requests, tokens, users
from lockbox.service.app import Lockbox
from lockbox.store.tables import metadata
from tests.conftest import World

#: The principal of each role in the world (customer roles: Contoso's).
ROLE_PRINCIPAL: dict[Role, str] = {
    Role.ENGINEER: "engineer",
    Role.MANAGER: "manager",
    Role.PROVIDER_ADMIN: "provider_admin",
    Role.RESOURCE_SERVICE: "service",
    Role.TENANT_ADMIN: "contoso_admin",
    Role.APPROVER: "contoso_approver",
    Role.AUDITOR: "contoso_auditor",
}
assert set(ROLE_PRINCIPAL) == set(Role), "every role must be in the matrix test"

RELATIONS = ("own", "foreign")
BAD_CREDENTIALS = ("expired", "revoked")


def covers(
    principal: Principal, role: Role, intent: Intent, tenant_id: str | None, owner: str | None
) -> bool:
    """Whether MATRIX grants ``intent`` to ``role`` on an object of ``tenant_id`` owned by ``owner``."""
    scope = MATRIX[role].get(intent)
    if scope is None:
        return False
    if scope is Scope.ANY_TENANT:
        return role.side is Side.PROVIDER
    if scope is Scope.STAFF:
        return role.side is Side.PROVIDER and tenant_id is None
    if scope is Scope.OWN_TENANT:
        return (
            role.side is Side.CUSTOMER
            and tenant_id is not None
            and principal.tenant_id == tenant_id
        )
    return owner is not None and owner == principal.id


def rule_allows(
    rule: ActorRule, principal: Principal, role: Role, tenant_id: str, owner: str
) -> bool:
    """The person-level rules of the lifecycle table, as the oracle reads them."""
    if rule is ActorRule.ENGINEER_ON_CASE:
        return principal.id == owner
    if rule is ActorRule.MANAGER_NOT_REQUESTER:
        return principal.id != owner
    if rule is ActorRule.REQUESTER:
        return principal.id == owner
    if rule is ActorRule.TENANT_APPROVER:
        return role.side is Side.CUSTOMER and principal.tenant_id == tenant_id
    if rule is ActorRule.REQUESTER_OR_MANAGER:
        return principal.id == owner or role is Role.MANAGER
    raise AssertionError(f"rule {rule} is not reachable through the API")


@dataclass
class Prepared:
    method: str
    url: str
    json: Any = None
    tenant_id: str | None = None
    owner: str | None = None
    fake: dict[str, str] = field(default_factory=dict)  # real id -> a missing id of the same kind


class Ctx:
    """Builds the objects endpoints act on, through the service layer, caching read-only ones."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.app: Lockbox = world.app
        self.op = Principal.operator()
        self._seq = count()
        self._cases: dict[tuple[str, str], str] = {}
        self._requests: dict[tuple[str, str, State], str] = {}
        self._targets: dict[str, Principal] = {}
        self.slugs = {world.contoso: "contoso", world.fabrikam: "fabrikam"}

    def n(self) -> int:
        return next(self._seq)

    def approver(self, tenant_id: str) -> Principal:
        w = self.world
        return w.contoso_approver if tenant_id == w.contoso else w.fabrikam_approver

    def principal(self, user_id: str) -> Principal:
        w = self.world
        for p in (w.engineer, w.engineer2):
            if p.id == user_id:
                return p
        raise KeyError(user_id)

    def case(self, tenant_id: str, engineer_id: str, *, fresh: bool = False) -> str:
        key = (tenant_id, engineer_id)
        if fresh or key not in self._cases:
            made = cases.open_case(
                self.app,
                self.op_with_case_rights(),
                tenant=tenant_id,
                title="c",
                engineer=engineer_id,
            ).id
            if fresh:
                return made
            self._cases[key] = made
        return self._cases[key]

    def op_with_case_rights(self) -> Principal:
        return self.world.manager  # the operator has no case rights; a manager opens cases

    def request(
        self, tenant_id: str, requester_id: str, state: State, *, fresh: bool = False
    ) -> str:
        key = (tenant_id, requester_id, state)
        if not fresh and key in self._requests:
            return self._requests[key]
        requester = self.principal(requester_id)
        made = requests.submit_request(
            self.app,
            requester,
            tenant=tenant_id,
            case_id=self.case(tenant_id, requester_id),
            resources=["exchange/mailbox/alice@x.test"],
            access_level="read",
            justification="matrix",
        ).id
        if state is not State.PENDING_REVIEW:
            requests.review_request(self.app, self.world.manager, made, approve=True)
        if state is State.APPROVED:
            requests.decide_request(self.app, self.approver(tenant_id), made, approve=True)
        if not fresh:
            self._requests[key] = made
        return made

    def target_user(self, tenant_id: str) -> Principal:
        if tenant_id not in self._targets:
            self._targets[tenant_id] = users.create_user(
                self.app,
                self.op,
                email=f"target@{self.slugs[tenant_id]}.test",
                roles=["auditor"],
                tenant=tenant_id,
            ).principal()
        return self._targets[tenant_id]

    def fingerprint(self) -> str:
        """A digest of every row (except tokens' last-used stamps): equal means nothing written."""
        digest = hashlib.sha256()
        with self.app.db.read() as conn:
            for table in metadata.sorted_tables:
                columns = [c for c in table.columns if c.name != "last_used_at"]
                rows = sorted(repr(tuple(r)) for r in conn.execute(select(*columns)))
                digest.update(f"{table.name}:{rows}".encode())
        return digest.hexdigest()


FAKE_REQUEST = "req_" + "z" * 26
FAKE_CASE = "case_" + "z" * 26
FAKE_USER = "usr_" + "z" * 26
FAKE_TOKEN = "tok_" + "z" * 26
FAKE_TENANT = "no-such-tenant"


@dataclass(frozen=True)
class Endpoint:
    name: str
    prepare: Callable[[Ctx, str, str], Prepared]  # (ctx, tenant_id, owner_id)
    visibility: tuple[Intent, ...]
    intent: Intent | None
    success: int = 200
    rule: ActorRule | None = None
    mutating: bool = False


def _rule(source: State | None, event: Event) -> ActorRule:
    transition = find(source, event)
    assert transition is not None
    return transition.rule


def _tenant_ep(
    name: str, method: str, suffix: str, visibility: tuple[Intent, ...], intent: Intent, **kw: Any
) -> Endpoint:
    body = kw.pop("json", None)

    def prepare(ctx: Ctx, tenant_id: str, owner: str) -> Prepared:
        return Prepared(
            method,
            f"/v1/tenants/{tenant_id}{suffix}",
            body,
            tenant_id,
            owner,
            {tenant_id: FAKE_TENANT},
        )

    return Endpoint(name, prepare, visibility, intent, **kw)


def _user_ep(name: str, method: str, suffix: str, intent: Intent, **kw: Any) -> Endpoint:
    body = kw.pop("json", None)

    def prepare(ctx: Ctx, tenant_id: str, owner: str) -> Prepared:
        target = ctx.target_user(tenant_id)
        return Prepared(
            method,
            f"/v1/users/{target.id}{suffix}",
            body,
            tenant_id,
            target.id,
            {target.id: FAKE_USER},
        )

    return Endpoint(name, prepare, (Intent.USER_VIEW,), intent, **kw)


def _request_ep(
    name: str,
    action: str | None,
    state: State,
    intent: Intent,
    event: Event | None,
    body: Any = None,
) -> Endpoint:
    def prepare(ctx: Ctx, tenant_id: str, owner: str) -> Prepared:
        rid = ctx.request(tenant_id, owner, state, fresh=action is not None)
        url = f"/v1/requests/{rid}" + (f"/{action}" if action else "")
        return Prepared(
            "POST" if action else "GET", url, body, tenant_id, owner, {rid: FAKE_REQUEST}
        )

    return Endpoint(
        name,
        prepare,
        (Intent.REQUEST_VIEW,),
        intent,
        rule=_rule(state, event) if event else None,
        mutating=action is not None,
    )


def _create_user(ctx: Ctx, tenant_id: str, owner: str) -> Prepared:
    # An address at the tenant's own domain: tenant admins may add people only there.
    body = {
        "email": f"new{ctx.n()}@{ctx.slugs[tenant_id]}.test",
        "roles": ["auditor"],
        "tenant": tenant_id,
    }
    return Prepared("POST", "/v1/users", body, tenant_id, None, {tenant_id: FAKE_TENANT})


def _create_token(ctx: Ctx, tenant_id: str, owner: str) -> Prepared:
    target = ctx.target_user(tenant_id)
    return Prepared(
        "POST",
        "/v1/tokens",
        {"user": target.id, "name": "t"},
        tenant_id,
        target.id,
        {target.id: FAKE_USER},
    )


def _list_tokens(ctx: Ctx, tenant_id: str, owner: str) -> Prepared:
    target = ctx.target_user(tenant_id)
    return Prepared(
        "GET", f"/v1/tokens?user={target.id}", None, tenant_id, target.id, {target.id: FAKE_USER}
    )


def _revoke_token(ctx: Ctx, tenant_id: str, owner: str) -> Prepared:
    target = ctx.target_user(tenant_id)
    row = tokens.create_token(ctx.app, ctx.op, user=target.id, name="victim").row
    return Prepared(
        "POST", f"/v1/tokens/{row.id}/revoke", None, tenant_id, target.id, {row.id: FAKE_TOKEN}
    )


def _open_case(ctx: Ctx, tenant_id: str, owner: str) -> Prepared:
    body = {"tenant": tenant_id, "title": "new case", "engineer": owner}
    return Prepared("POST", "/v1/cases", body, tenant_id, owner, {tenant_id: FAKE_TENANT})


def _get_case(ctx: Ctx, tenant_id: str, owner: str) -> Prepared:
    cid = ctx.case(tenant_id, owner)
    return Prepared("GET", f"/v1/cases/{cid}", None, tenant_id, owner, {cid: FAKE_CASE})


def _close_case(ctx: Ctx, tenant_id: str, owner: str) -> Prepared:
    cid = ctx.case(tenant_id, owner, fresh=True)
    return Prepared(
        "POST", f"/v1/cases/{cid}/close", {"comment": "done"}, tenant_id, owner, {cid: FAKE_CASE}
    )


def _submit(ctx: Ctx, tenant_id: str, owner: str) -> Prepared:
    cid = ctx.case(tenant_id, owner)
    body = {
        "tenant": tenant_id,
        "case_id": cid,
        "resources": ["exchange/mailbox/bob@x.test"],
        "access_level": "read",
        "justification": "matrix",
    }
    return Prepared(
        "POST", "/v1/requests", body, tenant_id, owner, {tenant_id: FAKE_TENANT, cid: FAKE_CASE}
    )


def _set_domains(ctx: Ctx, tenant_id: str, owner: str) -> Prepared:
    body = {"email_domains": [f"{ctx.slugs[tenant_id]}.test", f"mail.{ctx.slugs[tenant_id]}.test"]}
    url = f"/v1/tenants/{tenant_id}/domains"
    return Prepared("PUT", url, body, tenant_id, owner, {tenant_id: FAKE_TENANT})


def _filtered_list(path: str) -> Callable[[Ctx, str, str], Prepared]:
    def prepare(ctx: Ctx, tenant_id: str, owner: str) -> Prepared:
        return Prepared(
            "GET", f"{path}?tenant={tenant_id}", None, tenant_id, owner, {tenant_id: FAKE_TENANT}
        )

    return prepare


_V = Intent
ENDPOINTS: tuple[Endpoint, ...] = (
    _tenant_ep("tenant.get", "GET", "", (_V.TENANT_VIEW,), _V.TENANT_VIEW),
    _tenant_ep("policy.get", "GET", "/policy", (_V.TENANT_VIEW,), _V.POLICY_VIEW),
    _tenant_ep(
        "policy.patch",
        "PATCH",
        "/policy",
        (_V.TENANT_VIEW,),
        _V.POLICY_CHANGE,
        json={"reminder_fraction": 0.3},
        mutating=True,
    ),
    Endpoint("tenant.domains", _set_domains, (_V.TENANT_VIEW,), _V.TENANT_DOMAINS, mutating=True),
    _tenant_ep("audit.query", "GET", "/audit", (_V.TENANT_VIEW,), _V.AUDIT_READ),
    _tenant_ep("audit.export", "GET", "/audit/export?format=csv", (_V.TENANT_VIEW,), _V.AUDIT_READ),
    _tenant_ep("audit.verify", "GET", "/audit/verify", (_V.TENANT_VIEW,), _V.AUDIT_VERIFY),
    Endpoint("user.create", _create_user, (_V.TENANT_VIEW,), _V.USER_MANAGE, 201, mutating=True),
    _user_ep("user.get", "GET", "", _V.USER_VIEW),
    _user_ep(
        "user.roles", "PUT", "/roles", _V.USER_MANAGE, json={"roles": ["auditor"]}, mutating=True
    ),
    _user_ep("user.patch", "PATCH", "", _V.USER_MANAGE, json={"active": True}, mutating=True),
    Endpoint("token.list_for_user", _list_tokens, (_V.USER_VIEW,), _V.TOKEN_MANAGE),
    # Nobody may create a credential another person can act with (the operator aside).
    Endpoint(
        "token.create_for_user",
        _create_token,
        (_V.USER_VIEW,),
        _V.CREDENTIAL_ISSUE,
        201,
        mutating=True,
    ),
    _user_ep(
        "user.password_reset",
        "POST",
        "/password-reset",
        _V.USER_PASSWORD_RESET,
        success=202,
        mutating=True,
    ),
    Endpoint("token.revoke_other", _revoke_token, (_V.USER_VIEW,), _V.TOKEN_MANAGE, mutating=True),
    Endpoint("case.open", _open_case, (_V.TENANT_VIEW,), _V.CASE_OPEN, 201, mutating=True),
    Endpoint("case.get", _get_case, (_V.CASE_VIEW,), _V.CASE_VIEW),
    Endpoint("case.close", _close_case, (_V.CASE_VIEW,), _V.CASE_CLOSE, mutating=True),
    Endpoint(
        "request.submit",
        _submit,
        (_V.TENANT_VIEW, _V.CASE_VIEW),
        _V.REQUEST_SUBMIT,
        201,
        rule=_rule(None, Event.SUBMIT),
        mutating=True,
    ),
    _request_ep("request.get", None, State.APPROVED, _V.REQUEST_VIEW, None),
    _request_ep(
        "request.review",
        "review",
        State.PENDING_REVIEW,
        _V.REQUEST_REVIEW,
        Event.REVIEW_APPROVE,
        {"decision": "approve"},
    ),
    _request_ep(
        "request.decide",
        "decide",
        State.PENDING_APPROVAL,
        _V.REQUEST_DECIDE,
        Event.APPROVE,
        {"decision": "approve"},
    ),
    _request_ep("request.cancel", "cancel", State.PENDING_REVIEW, _V.REQUEST_CANCEL, Event.CANCEL),
    _request_ep(
        "request.close", "close", State.APPROVED, _V.REQUEST_CLOSE, Event.CLOSE, {"comment": "ok"}
    ),
    _request_ep("request.revoke", "revoke", State.APPROVED, _V.REQUEST_REVOKE, Event.REVOKE),
    Endpoint("request.list_tenant", _filtered_list("/v1/requests"), (_V.TENANT_VIEW,), None),
    Endpoint("case.list_tenant", _filtered_list("/v1/cases"), (_V.TENANT_VIEW,), None),
    Endpoint("user.list_tenant", _filtered_list("/v1/users"), (_V.TENANT_VIEW,), None),
)


def expected_status(ep: Endpoint, principal: Principal, role: Role, prepared: Prepared) -> int:
    tenant_id, owner = prepared.tenant_id, prepared.owner
    for intent in ep.visibility:
        if not covers(principal, role, intent, tenant_id, owner):
            return 404
    if ep.intent is not None and not covers(principal, role, ep.intent, tenant_id, owner):
        return 403
    if ep.rule is not None:
        assert tenant_id is not None and owner is not None
        if not rule_allows(ep.rule, principal, role, tenant_id, owner):
            return 403
    return ep.success


def relation_target(
    world: World, role: Role, principal: Principal, relation: str
) -> tuple[str, str]:
    """(tenant id, owning engineer id) of the object a case acts on."""
    if role.side is Side.CUSTOMER:
        own = principal.tenant_id
        assert own is not None
        other = world.fabrikam if own == world.contoso else world.contoso
        tenant = own if relation == "own" else other
    else:
        tenant = world.contoso if relation == "own" else world.fabrikam
    if relation == "own":
        owner = principal.id if role is Role.ENGINEER else world.engineer.id
    else:
        owner = world.engineer2.id
    return tenant, owner


def replace_ids(prepared: Prepared, real: str) -> tuple[str, Any]:
    """The same call with the id ``real`` swapped for a missing one of its kind."""
    import json

    fake = prepared.fake[real]
    url, body = prepared.url.replace(real, fake), json.dumps(prepared.json).replace(real, fake)
    return url, json.loads(body)
