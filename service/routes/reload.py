"""`POST /reload`: pick up bundles added, replaced or removed on disk, without a restart."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from service.repository import ModelRepository
from service.routes import dependencies

router = APIRouter()


@router.post("/reload")
async def reload(repository: Annotated[ModelRepository, Depends(dependencies.repository)]) -> dict:
    changes = await repository.reload()
    return {**changes, "failures": dict(repository.snapshot.failures)}
