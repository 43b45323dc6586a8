"""The CLI's ``--server`` mode: every :class:`~lockbox.cli.backend.Backend` method over the API.

Problem responses are mapped back to the domain error they came from (by
their stable ``type``), so the CLI prints the same one-line errors and exits
with the same codes whether it talks to the database or to a server.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from lockbox import __version__
from lockbox.domain import errors
from lockbox.domain.instants import format_instant

JSON = dict[str, Any]
PROBLEM_PREFIX = "urn:lockbox:problem:"


def _all_errors() -> dict[str, type[errors.LockboxError]]:
    found: dict[str, type[errors.LockboxError]] = {}
    pending: list[type[errors.LockboxError]] = [errors.LockboxError]
    while pending:
        kind = pending.pop()
        found.setdefault(kind.code, kind)
        pending.extend(kind.__subclasses__())
    return found


_BY_STATUS: dict[int, type[errors.LockboxError]] = {
    400: errors.ValidationError,
    401: errors.AuthenticationFailed,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    405: errors.ValidationError,
    409: errors.Conflict,
    412: errors.Conflict,
    413: errors.ValidationError,
    422: errors.ValidationError,
    429: errors.RateLimited,
}


def error_from_problem(status: int, body: Any) -> errors.LockboxError:
    """The domain error a problem+json response stands for."""
    problem = body if isinstance(body, dict) else {}
    code = str(problem.get("type", "")).removeprefix(PROBLEM_PREFIX)
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
    kind = _all_errors().get(code) or _BY_STATUS.get(status)
    if kind is None:
        return errors.LockboxError(f"server error (HTTP {status}): {detail}")
    if issubclass(kind, errors.ValidationError):
        items = problem.get("errors") or []
        if items and isinstance(items[0], dict):
            return kind(str(items[0].get("field", "input")), str(items[0].get("message", detail)))
        return kind("request", detail)
    if issubclass(kind, errors.InvalidTransition):
        return kind(detail, state=str(problem.get("state", "unknown")))
    if issubclass(kind, errors.RateLimited):
        # The server's rate limiter or a sign-in lock-out: both say how long to wait.
        wait = problem.get("retry_after")
        return kind(detail, retry_after=wait if isinstance(wait, int) else 1)
    extra = {k: v for k, v in problem.items() if k not in ("type", "title", "status", "detail")}
    try:
        return kind(detail, **extra)
    except TypeError:  # an error whose fields this client version does not know
        return errors.LockboxError(f"{detail} (HTTP {status})", **extra)


def _q(value: str) -> str:
    return quote(value, safe="@")


class HttpBackend:
    """Talks to a Lockbox server with a bearer token."""

    def __init__(
        self,
        server: str,
        token: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.client = httpx.Client(
            base_url=server.rstrip("/"),
            headers={
                **({"Authorization": f"Bearer {token}"} if token else {}),
                "User-Agent": f"lockbox-cli/{__version__}",
                "Accept": "application/json",
            },
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    # -- plumbing ---------------------------------------------------------------------

    def _send(self, method: str, url: str, **kw: Any) -> Any:
        try:
            response = self.client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise errors.LockboxError(f"cannot reach the server: {exc}") from None
        return self._check(response)

    def _check(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            raise error_from_problem(response.status_code, body)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    @staticmethod
    def _params(**values: Any) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = []
        for key, value in values.items():
            if value is None:
                continue
            for item in value if isinstance(value, list | tuple) else [value]:
                params.append((key, item.isoformat() if isinstance(item, datetime) else str(item)))
        return params

    # -- tenants and users ------------------------------------------------------------

    def create_tenant(self, slug: str, name: str, policy: JSON, domains: list[str]) -> JSON:
        body: JSON = {"slug": slug, "name": name, "email_domains": domains}
        if policy:
            body["policy"] = _policy_body(policy)
        result: JSON = self._send("POST", "/v1/tenants", json=body)
        return result

    def set_domains(self, tenant: str, domains: list[str]) -> JSON:
        result: JSON = self._send(
            "PUT", f"/v1/tenants/{_q(tenant)}/domains", json={"email_domains": domains}
        )
        return result

    def start_password_reset(self, user: str) -> JSON:
        result: JSON = self._send("POST", f"/v1/users/{_q(user)}/password-reset")
        return result

    def complete_password_reset(self, email: str, code: str, new_password: str) -> None:
        body = {"email": email, "code": code, "new_password": new_password}
        self._send("POST", "/v1/password-reset", json=body)

    def change_password(self, current: str, new: str) -> None:
        body = {"current_password": current, "new_password": new}
        self._send("PUT", "/v1/me/password", json=body)

    def get_service(self, user: str) -> JSON:
        result: JSON = self._send("GET", f"/v1/users/{_q(user)}/service")
        return result

    def set_service(
        self, user: str, tenants: list[str] | str, prefixes: list[str], audience: str | None
    ) -> JSON:
        body: JSON = {"tenants": tenants, "prefixes": prefixes, "audience": audience}
        result: JSON = self._send("PUT", f"/v1/users/{_q(user)}/service", json=body)
        return result

    def list_tenants(self) -> list[JSON]:
        items: list[JSON] = self._send("GET", "/v1/tenants")["items"]
        return items

    def get_tenant(self, ref: str) -> JSON:
        result: JSON = self._send("GET", f"/v1/tenants/{_q(ref)}")
        return result

    def change_policy(self, tenant: str, changes: JSON) -> JSON:
        answer = self._send("PATCH", f"/v1/tenants/{_q(tenant)}/policy", json=_policy_body(changes))
        if isinstance(answer, dict) and "kind" in answer:  # 202: waits for a second admin
            return {"pending_change": answer}
        return self.get_tenant(tenant)

    def create_user(
        self,
        email: str,
        roles: list[str],
        tenant: str | None,
        name: str | None,
        password: str | None,
    ) -> JSON:
        body: JSON = {"email": email, "roles": roles}
        for key, value in (("tenant", tenant), ("display_name", name), ("password", password)):
            if value is not None:
                body[key] = value
        result: JSON = self._send("POST", "/v1/users", json=body)
        return result

    def list_users(self, tenant: str | None) -> list[JSON]:
        items: list[JSON] = self._send("GET", "/v1/users", params=self._params(tenant=tenant))[
            "items"
        ]
        return items

    def set_roles(self, user: str, roles: list[str]) -> JSON:
        result: JSON = self._send("PUT", f"/v1/users/{_q(user)}/roles", json={"roles": roles})
        return result

    def set_active(self, user: str, active: bool) -> JSON:
        result: JSON = self._send("PATCH", f"/v1/users/{_q(user)}", json={"active": active})
        return result

    def create_token(self, user: str | None, name: str, expires_at: datetime | None) -> JSON:
        body: JSON = {"name": name}
        if user is not None:
            body["user"] = user
        if expires_at is not None:
            body["expires_at"] = expires_at.isoformat()
        result: JSON = self._send("POST", "/v1/tokens", json=body)
        return result

    def list_tokens(self, user: str | None) -> list[JSON]:
        items: list[JSON] = self._send("GET", "/v1/tokens", params=self._params(user=user))["items"]
        return items

    def revoke_token(self, token_id: str) -> JSON:
        result: JSON = self._send("POST", f"/v1/tokens/{_q(token_id)}/revoke")
        return result

    # -- cases ------------------------------------------------------------------------

    def open_case(
        self, tenant: str, title: str, engineer: str | None, reference: str | None
    ) -> JSON:
        body: JSON = {"tenant": tenant, "title": title}
        if engineer is not None:
            body["engineer"] = engineer
        if reference is not None:
            body["reference"] = reference
        result: JSON = self._send("POST", "/v1/cases", json=body)
        return result

    def close_case(self, case_id: str, comment: str | None) -> JSON:
        result: JSON = self._send("POST", f"/v1/cases/{_q(case_id)}/close", json=_comment(comment))
        return result

    def list_cases(self, tenant: str | None, status: str | None) -> list[JSON]:
        params = self._params(tenant=tenant, status=status)
        items: list[JSON] = self._send("GET", "/v1/cases", params=params)["items"]
        return items

    def get_case(self, case_id: str) -> JSON:
        result: JSON = self._send("GET", f"/v1/cases/{_q(case_id)}")
        return result

    # -- requests ---------------------------------------------------------------------

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
        body = {
            "tenant": tenant,
            "case_id": case_id,
            "resources": resources,
            "access_level": access_level,
            "justification": justification,
            "category": category,
        }
        if starts_at is not None:
            body["starts_at"] = format_instant(starts_at)
        result: JSON = self._send("POST", "/v1/requests", json=body)
        return result

    def review_request(self, request_id: str, approve: bool, comment: str | None) -> JSON:
        body = {"decision": "approve" if approve else "reject", **_comment(comment)}
        result: JSON = self._send("POST", f"/v1/requests/{_q(request_id)}/review", json=body)
        return result

    def decide_request(
        self, request_id: str, approve: bool, comment: str | None, grant: JSON | None = None
    ) -> JSON:
        body = {"decision": "approve" if approve else "deny", **_comment(comment), **(grant or {})}
        result: JSON = self._send("POST", f"/v1/requests/{_q(request_id)}/decide", json=body)
        return result

    def extend_request(self, request_id: str, by_seconds: int, reason: str) -> JSON:
        body = {"by_seconds": by_seconds, "reason": reason}
        result: JSON = self._send("POST", f"/v1/requests/{_q(request_id)}/extend", json=body)
        return result

    def decide_extension(self, request_id: str, approve: bool, comment: str | None) -> JSON:
        body = {"decision": "approve" if approve else "deny", **_comment(comment)}
        result: JSON = self._send(
            "POST", f"/v1/requests/{_q(request_id)}/extension/decide", json=body
        )
        return result

    def end_request(self, request_id: str, how: str, comment: str | None) -> JSON:
        if how not in ("cancel", "close", "revoke"):
            raise errors.ValidationError("action", "must be cancel, close or revoke")
        result: JSON = self._send(
            "POST", f"/v1/requests/{_q(request_id)}/{how}", json=_comment(comment)
        )
        return result

    def get_request(self, request_id: str) -> JSON:
        result: JSON = self._send(
            "GET", f"/v1/requests/{_q(request_id)}", params={"history": "true"}
        )
        return result

    def list_requests(self, filters: JSON, limit: int, cursor: str | None) -> JSON:
        params = self._params(
            tenant=filters.get("tenant"),
            state=list(filters.get("states") or []),
            requester=filters.get("requester"),
            case=filters.get("case_id"),
            created_after=filters.get("created_after"),
            created_before=filters.get("created_before"),
            limit=limit,
            cursor=cursor,
        )
        result: JSON = self._send("GET", "/v1/requests", params=params)
        return result

    # -- audit and upkeep -------------------------------------------------------------

    def audit_list(self, tenant: str, filters: JSON, limit: int, after: int) -> JSON:
        params = self._params(
            request_id=filters.get("request_id"),
            operation=filters.get("operation"),
            actor_id=filters.get("actor_id"),
            since=filters.get("since"),
            until=filters.get("until"),
            limit=limit,
            cursor=after or None,
        )
        result: JSON = self._send("GET", f"/v1/tenants/{_q(tenant)}/audit", params=params)
        return result

    def audit_export(self, tenant: str, fmt: str) -> Iterator[str]:
        """Starts the download now (so errors surface before any output), streams the rest."""
        request = self.client.build_request(
            "GET", f"/v1/tenants/{_q(tenant)}/audit/export", params={"format": fmt}
        )
        try:
            response = self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise errors.LockboxError(f"cannot reach the server: {exc}") from None
        if response.status_code >= 400:
            response.read()
            response.close()
            self._check(response)

        def chunks() -> Iterator[str]:
            try:
                yield from response.iter_text()
            finally:
                response.close()

        return chunks()

    def audit_verify(self, tenant: str | None) -> list[JSON]:
        if tenant is not None:
            return [self._send("GET", f"/v1/tenants/{_q(tenant)}/audit/verify")]
        items: list[JSON] = self._send("GET", "/v1/audit/verify")["items"]
        return items

    def sweep(self) -> JSON:
        raise errors.ValidationError(
            "server", "sweep runs against the database (the server's worker sweeps continuously)"
        )


def _comment(comment: str | None) -> JSON:
    return {"comment": comment} if comment is not None else {}


def _policy_body(changes: JSON) -> JSON:
    """CLI policy changes (timedeltas, tuples) as the API's PolicyPatch JSON."""
    body: JSON = {}
    for key, value in changes.items():
        if key.endswith("_window"):
            body[f"{key}_seconds"] = int(value.total_seconds())
        elif key == "notify_emails":
            body[key] = list(value)
        else:
            body[key] = value
    return body
