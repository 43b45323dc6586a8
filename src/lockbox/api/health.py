"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from lockbox.api.deps import LockboxDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable", response_model=None)
def readyz(lockbox: LockboxDep) -> JSONResponse | dict[str, str]:
    if lockbox.db.ping():
        return {"status": "ready"}
    return JSONResponse({"status": "database unreachable"}, status_code=503)
