"""A small client for Lockbox's enforcement API (``/v1/access/*`` and the JWKS).

Resource services authenticate with their own API token (a user with the
``resource_service`` role); engineers use theirs to obtain access tokens.
Errors come back as :class:`LockboxAPIError` carrying the problem+json body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

DEFAULT_TIMEOUT = 5.0


class LockboxAPIError(Exception):
    """Lockbox answered with an error (``status`` and its problem+json ``problem``)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(f"{status}: {problem.get('detail') or problem.get('title') or 'error'}")

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


@dataclass(frozen=True)
class CheckAnswer:
    """The answer of ``POST /v1/access/check``."""

    allowed: bool
    reason: str
    request_id: str | None = None
    state: str | None = None
    access_level: str | None = None
    resources: tuple[str, ...] = ()
    access_deadline: str | None = None
    checked_at: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckAnswer:
        return cls(
            allowed=bool(data.get("allowed")),
            reason=str(data.get("reason")),
            request_id=data.get("request_id"),
            state=data.get("state"),
            access_level=data.get("access_level"),
            resources=tuple(data.get("resources") or ()),
            access_deadline=data.get("access_deadline"),
            checked_at=data.get("checked_at"),
            raw=data,
        )


def _headers(token: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "lockbox-sdk"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _answer(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            problem = response.json()
        except ValueError:
            problem = {"detail": response.text[:200]}
        if not isinstance(problem, dict):
            problem = {"detail": str(problem)}
        raise LockboxAPIError(response.status_code, problem)
    return response.json()


def _object(data: Any) -> dict[str, Any]:
    """A JSON object answer; anything else means the server is not Lockbox (or broken)."""
    if not isinstance(data, dict):
        raise LockboxAPIError(
            502, {"detail": "Lockbox answered with something other than a JSON object"}
        )
    return data


def _check_body(
    engineer: str,
    tenant: str,
    resource: str,
    action: str,
    request_id: str | None,
    kid: str | None = None,
) -> dict[str, str]:
    body = {"engineer": engineer, "tenant": tenant, "resource": resource, "action": action}
    if request_id:
        body["request_id"] = request_id
    if kid:
        body["kid"] = kid
    return body


class LockboxClient:
    """Synchronous client (scripts, threads, the background reporter)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=_headers(token),
            timeout=timeout,
            transport=transport,
        )

    def check(
        self,
        *,
        engineer: str,
        tenant: str,
        resource: str,
        action: str,
        request_id: str | None = None,
        kid: str | None = None,
    ) -> CheckAnswer:
        body = _check_body(engineer, tenant, resource, action, request_id, kid)
        return CheckAnswer.from_json(_answer(self._http.post("/v1/access/check", json=body)))

    def issue_token(self, request_id: str, audience: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"request_id": request_id}
        if audience is not None:
            body["audience"] = audience
        data = _answer(self._http.post("/v1/access/token", json=body))
        return _object(data)

    def report_events(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        data = _answer(self._http.post("/v1/access/events", json={"events": events}))
        return _object(data)

    def jwks(self) -> dict[str, Any]:
        data = _answer(self._http.get("/.well-known/jwks.json"))
        return _object(data)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LockboxClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class AsyncLockboxClient:
    """Asynchronous client, for the online check on an ASGI request path."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_headers(token),
            timeout=timeout,
            transport=transport,
        )

    async def check(
        self,
        *,
        engineer: str,
        tenant: str,
        resource: str,
        action: str,
        request_id: str | None = None,
        kid: str | None = None,
    ) -> CheckAnswer:
        body = _check_body(engineer, tenant, resource, action, request_id, kid)
        response = await self._http.post("/v1/access/check", json=body)
        return CheckAnswer.from_json(_answer(response))

    async def report_events(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        data = _answer(await self._http.post("/v1/access/events", json={"events": events}))
        return _object(data)

    async def aclose(self) -> None:
        await self._http.aclose()
