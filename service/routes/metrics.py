"""`GET /metrics`: Prometheus text exposition."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.metrics import Metrics
from service.routes import dependencies
from service.routes.head import answer_head

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(metrics: Annotated[Metrics, Depends(dependencies.metrics)]) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


answer_head(router)
