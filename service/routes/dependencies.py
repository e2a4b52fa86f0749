"""Access to the lifespan-owned state from route handlers (async: no thread-pool hop per request)."""

from __future__ import annotations

from fastapi import Request

from service.metrics import Metrics
from service.repository import ModelRepository
from service.serving import Serving
from service.settings import Settings


async def serving(request: Request) -> Serving:
    return request.app.state.serving


async def repository(request: Request) -> ModelRepository:
    return request.app.state.serving.repository


async def metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def settings(request: Request) -> Settings:
    return request.app.state.settings
