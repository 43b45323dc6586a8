"""The FastAPI application factory.

Routers live in one module per resource (``routes_*.py``) and only translate
HTTP to service calls: no rule is decided here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from fastapi import APIRouter, FastAPI
from starlette.concurrency import run_in_threadpool

from lockbox import __version__
from lockbox.api import contract, health, metrics_routes, problems
from lockbox.api.limits import BodySizeLimit, StrictJson
from lockbox.api.ratelimit import RateLimit
from lockbox.service.app import Lockbox
from lockbox.service.denials import DenialRecorder

DESCRIPTION = """\
Lockbox: customer-approved, time-bounded, audited support access.

Authenticate with an API token: `Authorization: Bearer lbx_…`. Errors are
RFC 9457 problem details (`application/problem+json`) with a stable `type`
(`urn:lockbox:problem:<code>`). An object you may not see answers 404, exactly
like a missing one.
"""


def create_app(lockbox: Lockbox, *, batch_denials: bool = True) -> FastAPI:
    """The API and the pages over ``lockbox``.

    With ``batch_denials`` (servers) denied checks are audited in batches off the
    request path (:mod:`lockbox.service.denials`); the recorder is flushed at shutdown.
    """
    recorder: DenialRecorder | None = None
    if batch_denials and lockbox.denials is None:
        recorder = DenialRecorder(lockbox)
        lockbox = replace(lockbox, denials=recorder)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if recorder is not None:
            await run_in_threadpool(recorder.close)

    app = FastAPI(
        lifespan=lifespan,
        title="Lockbox",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.lockbox = lockbox
    problems.install(app)
    contract.install(app)  # the shared problem schema in /openapi.json; OPTIONS with Allow
    app.add_middleware(StrictJson)  # inner: sees at most the size limit
    app.add_middleware(BodySizeLimit)
    app.add_middleware(RateLimit)  # outside the body checks: a refused call sends no body
    app.include_router(health.router)
    app.include_router(metrics_routes.router)
    for router in _v1_routers():
        app.include_router(router)
    from lockbox.web.app import mount

    mount(app)  # the admin center and support portal: pages at /, the API stays at /v1
    app.add_middleware(metrics_routes.RequestMetrics)  # outermost: times everything above
    return app


def _v1_routers() -> list[APIRouter]:
    """Every ``/v1`` router; modules register here as they are added."""
    from importlib import import_module

    routers = []
    for name in ROUTER_MODULES:
        module = import_module(f"lockbox.api.{name}")
        router = module.router
        if not isinstance(router, APIRouter):
            raise TypeError(f"lockbox.api.{name}.router is not an APIRouter")
        routers.append(router)
    return routers


#: Router modules, in the order their tags appear in the docs.
ROUTER_MODULES: list[str] = [
    "routes_tenants",
    "routes_auto_approval",
    "routes_users",
    "routes_tokens",
    "routes_cases",
    "routes_requests",
    "routes_delegations",
    "routes_audit",
    "routes_access",
    "routes_feed",
    "routes_webhooks",
    "routes_integrations",
    "routes_outbox",
    "routes_keys",
    "routes_trust",
    "routes_sso",
]
