"""The FastAPI application: lifespan owns the settings, metrics and model repository."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service import process_group
from service.access_log import AccessLog
from service.continuation import ContinuationKeys
from service.errors import install_error_handlers
from service.logs import configure_logging
from service.metrics import Metrics
from service.middleware import BodyLimitMiddleware, ObservabilityMiddleware
from service.openapi import install_openapi
from service.query import QueryRules
from service.reload_broadcast import ReloadBroadcast
from service.repository import ModelRepository
from service.request_encoding import RequestDecompressionMiddleware
from service.routes import health, kserve, metrics, playground, predict, reload, suggest
from service.schemas import V2_ERROR_RESPONSES
from service.security import require_api_key, require_api_key_for_health, require_api_key_for_metrics
from service.serving import Serving
from service.settings import Settings

log = logging.getLogger("service")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app_metrics = Metrics(process_group.metrics_directory())
    access_log = AccessLog(settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        access_log.start()
        repository = ModelRepository(settings.model_repository, settings, app_metrics)
        repository.load_all()
        repository.start()
        keys = ContinuationKeys.from_setting(settings.continuation_secrets.get_secret_value())
        serving = app.state.serving = Serving(repository, app_metrics, settings, QueryRules(settings), keys, access_log)
        grpc = None
        if settings.grpc_port:
            # Imported only to serve: its generated messages register `inference.*` in protobuf's
            # default pool, where another copy of the definition (tritonclient's, in a process
            # that embeds the app) would clash with it.
            from service import grpc_server

            grpc = await grpc_server.start(serving, app.state.api_keys)
        # Everything alive now (frameworks, models, vocabularies) lives as long as the process: kept
        # out of the collector's full passes, which otherwise rescan it under load (pauses of
        # 44-59 ms, about a tenth of the event loop's time at 128 connections; see BENCHMARKS.md).
        gc.collect()
        gc.freeze()
        providers = sorted({m.provider for m in repository.all()})
        log.info("serving %d model version(s) on %s", len(repository.all()), ", ".join(providers) or "-")
        tasks = []
        if settings.watch_interval_s > 0:
            tasks.append(asyncio.create_task(repository.watch(settings.watch_interval_s)))
        reloads = app.state.reload_broadcast
        if reloads is not None:  # one of several workers: follow the reloads the others announce
            reloads.register()
            tasks.append(asyncio.create_task(reloads.follow(repository.reload)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            if reloads is not None:
                reloads.unregister()
            if grpc is not None:
                await grpc_server.stop(grpc)
            await repository.close()
            app_metrics.close()
            access_log.stop()

    app = FastAPI(title="rnnserve", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = app_metrics
    reload_dir = process_group.reload_directory(settings)
    app.state.reload_broadcast = ReloadBroadcast(reload_dir) if reload_dir is not None else None
    app.state.api_keys = [key.encode() for key in settings.api_key_list()]
    install_error_handlers(app)
    install_openapi(app, settings)
    app.include_router(predict.router, dependencies=[Depends(require_api_key)])
    app.include_router(suggest.router, dependencies=[Depends(require_api_key)])
    app.include_router(reload.router, dependencies=[Depends(require_api_key)])
    app.include_router(kserve.router, dependencies=[Depends(require_api_key)], responses=V2_ERROR_RESPONSES)
    app.include_router(health.router, dependencies=[Depends(require_api_key_for_health)])
    app.include_router(metrics.router, dependencies=[Depends(require_api_key_for_metrics)])
    if settings.playground:  # the page itself is public; its calls carry the key the user enters
        app.include_router(playground.router())
    # Added last runs first: observability → CORS → body limit → decompression → routes. CORS
    # outside the body middlewares, so that a browser can read their 413, 415 and 400 too.
    app.add_middleware(RequestDecompressionMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "content-encoding", "authorization", "x-api-key", "x-request-id"],
        )
    app.add_middleware(ObservabilityMiddleware, metrics=app_metrics, access_log=access_log)
    return app


def worker_app() -> FastAPI:
    """The app of one of several worker processes (`RNNSERVE_WORKERS`), built in the worker from the
    environment the parent prepared (`service.process_group`)."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format, settings.access_log)
    return create_app(settings)
