"""`POST /predict`: texts in, one answer per text out, in order."""

from __future__ import annotations

import json
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response

from service.errors import InvalidInput, ServiceError
from service.metrics import Metrics
from service.postprocess import Output
from service.repository import ModelRepository
from service.routes import dependencies
from service.schemas import ERROR_RESPONSES, PredictRequest, PredictResponse
from service.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter()


def answer(model: str, version: str, outputs: list[Output]) -> Response:
    """The response body, serialised once (the route's `response_model` documents its shape)."""
    body = {"model": model, "version": version, "outputs": outputs}
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def check_limits(request: PredictRequest, settings: Settings) -> None:
    if len(request.inputs) > settings.max_inputs_per_request:
        raise InvalidInput(f"inputs: {len(request.inputs)} texts exceed the limit of {settings.max_inputs_per_request}")
    for index, text in enumerate(request.inputs):
        if len(text) > settings.max_chars_per_input:
            raise InvalidInput(
                f"inputs[{index}]: {len(text)} characters exceed the limit of {settings.max_chars_per_input}"
            )
    if request.params.top_k is not None and request.params.top_k > settings.max_top_k:
        raise InvalidInput(f"params.top_k: at most {settings.max_top_k}")


@router.post(
    "/predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=ERROR_RESPONSES,
)
async def predict(
    request: PredictRequest,
    repository: Annotated[ModelRepository, Depends(dependencies.repository)],
    metrics: Annotated[Metrics, Depends(dependencies.metrics)],
    settings: Annotated[Settings, Depends(dependencies.settings)],
) -> Response:
    check_limits(request, settings)
    model = repository.get(request.model, request.version)
    if settings.log_request_texts:
        log.info("inputs", extra={"model": model.name, "texts": request.inputs})
    try:
        outputs = await model.predict(request.inputs, request.params)
    except ServiceError as error:
        metrics.inference_requests.labels(model.name, error.error_type).inc()
        raise
    metrics.inference_requests.labels(model.name, "ok").inc()
    metrics.inference_inputs.labels(model.name).inc(len(request.inputs))
    return answer(model.name, model.version, outputs)


@router.post("/echo", response_model=PredictResponse, response_model_exclude_none=True, include_in_schema=False)
async def echo(request: PredictRequest, settings: Annotated[Settings, Depends(dependencies.settings)]) -> Response:
    """The same parsing, validation and serialisation as `/predict`, without tokenizer or model:
    the HTTP ceiling that benchmarks compare the service with. Off unless `echo_route` is set."""
    if not settings.echo_route:
        raise HTTPException(status_code=404, detail="Not Found")
    check_limits(request, settings)
    return answer(request.model, "echo", [{"label": "echo", "score": 1.0, "truncated": False} for _ in request.inputs])
