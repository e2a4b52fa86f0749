"""`POST /reload`: pick up bundles added, replaced or removed on disk, without a restart."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from service.reload_broadcast import ReloadBroadcast
from service.repository import ModelRepository
from service.routes import dependencies

router = APIRouter()


@router.post("/reload")
async def reload(request: Request, repository: Annotated[ModelRepository, Depends(dependencies.repository)]) -> dict:
    """Reloads this process and, with several workers, every other one before answering;
    `processes` says how many reloaded out of how many run (fewer: one was still loading when the
    wait ran out, or failed; its log says which)."""
    broadcast: ReloadBroadcast | None = request.app.state.reload_broadcast
    epoch = broadcast.announce() if broadcast is not None else 0
    changes = await repository.reload()
    reloaded, running = await broadcast.wait_for_peers(epoch) if broadcast is not None else (1, 1)
    return {
        **changes,
        "failures": dict(repository.snapshot.failures),
        "processes": {"reloaded": reloaded, "running": running},
    }
