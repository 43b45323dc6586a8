"""Liveness and readiness probes (no token: a load balancer asks them)."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from lockbox.api import contract
from lockbox.api.deps import LockboxDep
from lockbox.api.schemas import HealthOut

router = contract.router(tags=["health"])


@router.get(
    "/healthz", response_model=HealthOut, summary="The process is up", operation_id="healthz"
)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=HealthOut,
    summary="The database is reachable",
    operation_id="readyz",
    responses={
        503: {
            "model": HealthOut,
            "description": "The database is unreachable (`database unreachable`) or busy.",
        }
    },
)
def readyz(lockbox: LockboxDep) -> JSONResponse | dict[str, str]:
    if lockbox.db.ping():
        return {"status": "ready"}
    return JSONResponse({"status": "database unreachable"}, status_code=503)
