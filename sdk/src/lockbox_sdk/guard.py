"""Guard FastAPI / Starlette routes with Lockbox, and report what engineers did.

::

    guard = LockboxGuard(verifier=TokenVerifier(jwks_url=..., audience="mailstore"),
                         online=AsyncLockboxClient(LOCKBOX_URL, SERVICE_TOKEN),   # optional
                         reporter=EventReporter(LockboxClient(LOCKBOX_URL, SERVICE_TOKEN).report_events))

    @app.get("/mailboxes/{tenant}/{address}")
    def read(grant: Annotated[AccessGrant, guard.depends(
            "exchange/mailbox/{address}", "read", tenant="{tenant}")]): ...

Modes:

* **token** (no ``online`` client): the engineer sends a Lockbox access token
  as ``Authorization: Bearer …``; it is verified locally (signature, issuer,
  audience, lifetime, tenant, resource, level). No call to Lockbox on the
  request path; revocation takes effect within the token's few minutes.
* **online** (``online`` client given): additionally asks
  ``POST /v1/access/check`` on every request, so closing or revoking takes
  effect at once. If Lockbox cannot be reached the guard fails closed (503).
  With ``identify`` (and no verifier) the service names the engineer from its
  own authentication and no token is needed.

After the route ran, the action is reported in the background (``success``,
or ``failure`` if the handler raised). Every refusal the guard makes (no token,
a bad or expired token, a grant of another tenant, out of scope, level too low,
Lockbox unreachable) is reported as ``denied`` to the chain of the tenant the
path belongs to, with the reason. Reporting never blocks or fails the response.
Lockbox being unreachable (its keys or its check) is a 503 with ``Retry-After``,
never a 401 or 403.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

try:
    from fastapi import Depends, HTTPException, Request
    from starlette.concurrency import run_in_threadpool
except ImportError as exc:  # the guard is the only part of the SDK that needs FastAPI
    raise ImportError(
        "LockboxGuard needs FastAPI: install the SDK with its extra, lockbox-sdk[fastapi]"
    ) from exc

from lockbox_sdk.client import AsyncLockboxClient, LockboxAPIError
from lockbox_sdk.feed import GrantFeed
from lockbox_sdk.reporter import EventReporter
from lockbox_sdk.verify import AccessClaims, TokenError, TokenVerifier

log = logging.getLogger(__name__)

Template = str | Callable[[Request], str]
Identify = Callable[[Request], str | None] | Callable[[Request], Awaitable[str | None]]


@dataclass
class AccessGrant:
    """What the guard allowed; handlers may set ``detail`` for the audit record."""

    engineer: str
    tenant: str
    request_id: str
    resource: str
    action: str
    mode: str
    claims: AccessClaims | None = None
    access_deadline: str | None = None
    detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _render(template: Template, request: Request) -> str:
    if callable(template):
        return template(request)
    try:
        return template.format_map(request.path_params)
    except (KeyError, IndexError, ValueError):
        raise HTTPException(500, "the resource template names an unknown path parameter") from None


#: Seconds a client should wait before retrying when Lockbox cannot be asked.
RETRY_AFTER = 5


class Refused(HTTPException):
    """A refusal with its machine-readable ``reason`` (reported to Lockbox, then raised)."""

    def __init__(self, status: int, error: str, reason: str, message: str) -> None:
        headers = None
        if status == 401:
            headers = {
                "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'
            }
        elif status == 503:
            headers = {"Retry-After": str(RETRY_AFTER)}
        super().__init__(
            status, {"error": error, "reason": reason, "message": message}, headers=headers
        )
        self.reason = reason


def _deny(status: int, error: str, reason: str, message: str) -> Refused:
    return Refused(status, error, reason, message)


def _unavailable(reason: str, message: str) -> Refused:
    return Refused(503, "lockbox_unavailable", reason, message)


class LockboxGuard:
    def __init__(
        self,
        *,
        verifier: TokenVerifier | None = None,
        online: AsyncLockboxClient | None = None,
        reporter: EventReporter | None = None,
        identify: Identify | None = None,
        feed: GrantFeed | None = None,
        when_feed_is_stale: str = "fail_closed",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if verifier is None and identify is None:
            raise ValueError("give a token verifier, or identify (with an online client or feed)")
        if verifier is None and online is None and feed is None:
            raise ValueError("identify needs an online client or a grant feed to decide")
        if when_feed_is_stale not in ("fail_closed", "online"):
            raise ValueError("when_feed_is_stale must be 'fail_closed' or 'online'")
        if when_feed_is_stale == "online" and online is None:
            raise ValueError("falling back to the online check needs an online client")
        self.verifier = verifier
        self.online = online
        self.reporter = reporter
        self.identify = identify
        self.feed = feed
        self.when_feed_is_stale = when_feed_is_stale
        self.clock = clock or (verifier.clock if verifier is not None else _utcnow)

    @property
    def mode(self) -> str:
        if self.feed is not None:
            return "feed"
        return "online" if self.online is not None else "token"

    def require(
        self, resource: Template, action: str, *, tenant: Template
    ) -> Callable[[Request], AsyncIterator[AccessGrant]]:
        """A FastAPI dependency that allows the request or answers 401/403/503."""
        if action not in ("read", "write"):
            raise ValueError("action must be 'read' or 'write'")

        async def dependency(request: Request) -> AsyncIterator[AccessGrant]:
            grant = await self.authorize(
                request, _render(resource, request), action, _render(tenant, request)
            )
            try:
                yield grant
            except Exception as exc:
                status = getattr(exc, "status_code", None)
                self._report(
                    grant,
                    "failure",
                    grant.detail or f"handler failed ({status or type(exc).__name__})",
                )
                raise
            self._report(grant, "success", grant.detail)

        return dependency

    def depends(self, resource: Template, action: str, *, tenant: Template) -> Any:
        """``Depends(require(...))`` that reports *before* the response is sent, where
        FastAPI supports it (``scope="function"``), so a flush after a response sees it."""
        dependency = self.require(resource, action, tenant=tenant)
        if "scope" in inspect.signature(Depends).parameters:
            return Depends(dependency, scope="function")
        return Depends(dependency)  # pragma: no cover - older FastAPI

    async def authorize(
        self, request: Request, resource: str, action: str, tenant: str
    ) -> AccessGrant:
        """Decide for one request (usable from any Starlette handler)."""
        try:
            return await self._authorize(request, resource, action, tenant)
        except Refused as refusal:
            if not getattr(request.state, "lockbox_checked", False):
                claims = getattr(request.state, "lockbox_claims", None)
                self._report_refusal(refusal, claims, resource, action, tenant)
            raise

    async def _authorize(
        self, request: Request, resource: str, action: str, tenant: str
    ) -> AccessGrant:
        claims: AccessClaims | None = None
        if self.verifier is not None:
            claims = await self._verify(request)
            request.state.lockbox_claims = claims
            engineer = claims.engineer
            if not claims.matches_tenant(tenant):
                raise _deny(403, "access_denied", "wrong_tenant", "the token is for another tenant")
            reason = claims.denies(resource, action)
            if reason is not None:
                raise _deny(403, "access_denied", reason, f"access denied: {reason}")
        else:
            engineer = await self._identify(request)
        grant = AccessGrant(
            engineer=engineer,
            tenant=tenant,
            request_id=claims.request_id if claims else "",
            resource=resource,
            action=action,
            mode=self.mode,
            claims=claims,
        )
        if self.feed is not None:
            if self.feed.healthy():
                return self._from_feed(self.feed, grant, engineer, tenant, resource, action)
            if self.when_feed_is_stale != "online":
                raise _unavailable(
                    "feed_stale", "Lockbox's grant feed is silent; refusing until it is back"
                )
            grant.mode = "online"
        if self.online is not None:
            try:
                answer = await self.online.check(
                    engineer=engineer,
                    tenant=tenant,
                    resource=resource,
                    action=action,
                    request_id=claims.request_id if claims else None,
                    kid=claims.kid if claims else None,
                )
            except LockboxAPIError as exc:
                log.error("lockbox check failed: %s", exc)
                raise _unavailable("check_failed", "cannot ask Lockbox") from None
            except Exception as exc:
                log.error("lockbox unreachable: %s", exc)
                raise _unavailable("unreachable", "cannot reach Lockbox") from None
            if not answer.allowed:
                # Lockbox audited this denial itself (access.check_denied): not reported again.
                request.state.lockbox_checked = True
                raise _deny(403, "access_denied", answer.reason, f"access denied: {answer.reason}")
            if answer.request_id:
                grant.request_id = answer.request_id
            grant.access_deadline = answer.access_deadline
        return grant

    def _from_feed(
        self,
        feed: GrantFeed,
        grant: AccessGrant,
        engineer: str,
        tenant: str,
        resource: str,
        action: str,
    ) -> AccessGrant:
        """A local look-up in the table the feed keeps current (the feed is healthy)."""
        decision = feed.table.decide(
            engineer=engineer,
            tenant=tenant,
            resource=resource,
            action=action,
            now=self.clock(),
            request_id=grant.request_id or None,
        )
        if not decision.allowed or decision.grant is None:
            raise _deny(403, "access_denied", decision.reason, f"access denied: {decision.reason}")
        grant.request_id = decision.grant.request_id
        deadline = decision.grant.access_deadline
        grant.access_deadline = deadline.isoformat() if deadline else None
        return grant

    async def _verify(self, request: Request) -> AccessClaims:
        if self.verifier is None:
            raise RuntimeError("token mode needs a verifier")
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _deny(401, "unauthorized", "missing_token", "send a Lockbox access token")
        try:
            return await run_in_threadpool(self.verifier.verify, token.strip())
        except TokenError as exc:
            if exc.reason == "jwks_unavailable":
                # Lockbox's keys cannot be fetched: the token may be fine; say so, retryably.
                raise _unavailable(exc.reason, "cannot fetch Lockbox's signing keys") from None
            raise _deny(
                401, "unauthorized", exc.reason, f"invalid access token: {exc.reason}"
            ) from None

    async def _identify(self, request: Request) -> str:
        if self.identify is None:
            raise RuntimeError("identify mode needs an identify callable")
        found = self.identify(request)
        engineer = await found if not isinstance(found, str | None) else found
        if not engineer:
            raise _deny(401, "unauthorized", "unknown_engineer", "who are you?")
        return engineer

    def _report(self, grant: AccessGrant, outcome: str, detail: str | None) -> None:
        if self.reporter is None or not grant.request_id:
            return
        self.reporter.report(
            request_id=grant.request_id,
            action=grant.action,
            resource=grant.resource,
            outcome=outcome,
            detail=detail,
            engineer=grant.engineer,
        )

    def _report_refusal(
        self,
        refusal: Refused,
        claims: AccessClaims | None,
        resource: str,
        action: str,
        tenant: str,
    ) -> None:
        """Every refusal goes to the chain of the tenant whose content was asked for."""
        if self.reporter is None:
            return
        self.reporter.report(
            request_id=claims.request_id if claims else None,
            tenant=tenant,
            action=action,
            resource=resource,
            outcome="denied",
            reason=refusal.reason,
            detail=f"refused by the resource service ({refusal.status_code}): {refusal.reason}",
            engineer=claims.engineer if claims else None,
        )

    async def aclose(self, timeout: float = 10.0) -> None:
        """Flush queued reports and close the online client (call on shutdown)."""
        if self.reporter is not None:
            await run_in_threadpool(self.reporter.close, timeout)
        if self.online is not None:
            await self.online.aclose()
        if self.feed is not None:
            await run_in_threadpool(self.feed.stop)
