"""Health: `GET /health` (details) and the KServe v2 liveness/readiness probes.

Ready means every bundle in the repository loaded and answered a warm-up batch; a bundle that
failed to load keeps the service live (it serves the others) but not ready.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from service.repository import ModelRepository, Snapshot
from service.routes import dependencies
from service.routes.head import answer_head

router = APIRouter()

Repository = Annotated[ModelRepository, Depends(dependencies.repository)]


def is_ready(snapshot: Snapshot) -> bool:
    """Every model on disk has a version serving (a broken new version beside a serving one is
    reported in /health but does not take the pod out of rotation)."""
    return bool(snapshot.all()) and not snapshot.unserved_failures()


@router.get("/health", responses={503: {"description": "no model is loaded"}})
async def health(repository: Repository) -> JSONResponse:
    snapshot = repository.snapshot  # one consistent view for the whole answer
    models = [m.describe() for m in snapshot.all()]
    providers = sorted({m["provider"] for m in models})
    status = "ok" if models and not snapshot.failures else ("degraded" if models else "unavailable")
    body = {
        "status": status,
        "execution_providers": providers,
        "models": models,
        "failed": dict(snapshot.failures),
    }
    return JSONResponse(body, status_code=200 if models else 503)


@router.get("/v2/health/live")
async def live() -> dict:
    return {"live": True}


@router.get("/v2/health/ready", responses={503: {"description": "not every bundle loaded and warmed up"}})
async def ready(repository: Repository) -> JSONResponse:
    ok = is_ready(repository.snapshot)
    return JSONResponse({"ready": ok}, status_code=200 if ok else 503)


answer_head(router)
