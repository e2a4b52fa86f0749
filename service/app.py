"""The FastAPI application: lifespan owns the settings, metrics and model repository."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.errors import install_error_handlers
from service.metrics import Metrics
from service.middleware import HttpMetricsMiddleware
from service.repository import ModelRepository
from service.routes import health, kserve, metrics, predict
from service.settings import Settings

log = logging.getLogger("service")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app_metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        repository = ModelRepository(settings.model_repository, settings, app_metrics)
        repository.load_all()
        repository.start()
        app.state.repository = repository
        providers = sorted({m.provider for m in repository.all()})
        log.info("serving %d model version(s) on %s", len(repository.all()), ", ".join(providers) or "-")
        try:
            yield
        finally:
            await repository.close()

    app = FastAPI(title="rnnserve", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = app_metrics
    install_error_handlers(app)
    app.include_router(predict.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(kserve.router)
    app.add_middleware(HttpMetricsMiddleware, metrics=app_metrics)
    return app
