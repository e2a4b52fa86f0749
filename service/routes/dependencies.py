"""Access to the lifespan-owned state from route handlers (async: no thread-pool hop per request)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from service.continuation import ContinuationKeys
from service.metrics import Metrics
from service.query import QueryRules
from service.repository import ModelRepository
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class Serving:
    """What an inference route needs, as one dependency: FastAPI resolves every dependency on
    every request (its solver was the largest single item in a profile of `/predict`), so hot
    routes take this instead of three."""

    repository: ModelRepository
    metrics: Metrics
    settings: Settings
    rules: QueryRules
    continuations: ContinuationKeys


async def serving(request: Request) -> Serving:
    return request.app.state.serving


async def repository(request: Request) -> ModelRepository:
    return request.app.state.serving.repository


async def metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def settings(request: Request) -> Settings:
    return request.app.state.settings
