"""`GET /health`: what is loaded, on which execution provider, and what failed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from service.repository import ModelRepository
from service.routes import dependencies

router = APIRouter()


@router.get("/health")
async def health(
    repository: Annotated[ModelRepository, Depends(dependencies.repository)],
) -> JSONResponse:
    models = [m.describe() for m in repository.all()]
    providers = sorted({m["provider"] for m in models})
    status = "ok" if models and not repository.failures else ("degraded" if models else "unavailable")
    body = {
        "status": status,
        "execution_providers": providers,
        "models": models,
        "failed": repository.failures,
    }
    return JSONResponse(body, status_code=200 if models else 503)
