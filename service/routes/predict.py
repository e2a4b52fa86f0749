"""`POST /predict`: texts in, one answer per text out, in order."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends

from service.errors import InvalidInput, ServiceError
from service.metrics import Metrics
from service.repository import ModelRepository
from service.routes import dependencies
from service.schemas import PredictRequest, PredictResponse
from service.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter()


def check_limits(request: PredictRequest, settings: Settings) -> None:
    if len(request.inputs) > settings.max_inputs_per_request:
        raise InvalidInput(
            f"inputs: {len(request.inputs)} texts exceed the limit of {settings.max_inputs_per_request}"
        )
    for index, text in enumerate(request.inputs):
        if not text.strip():
            raise InvalidInput(f"inputs[{index}]: empty text")
        if len(text) > settings.max_chars_per_input:
            raise InvalidInput(
                f"inputs[{index}]: {len(text)} characters exceed the limit "
                f"of {settings.max_chars_per_input}"
            )
        if "\x00" in text:
            raise InvalidInput(f"inputs[{index}]: contains a NUL character")
    if request.params.top_k is not None and request.params.top_k > settings.max_top_k:
        raise InvalidInput(f"params.top_k: at most {settings.max_top_k}")


@router.post("/predict", response_model=PredictResponse, response_model_exclude_none=True)
async def predict(
    request: PredictRequest,
    repository: Annotated[ModelRepository, Depends(dependencies.repository)],
    metrics: Annotated[Metrics, Depends(dependencies.metrics)],
    settings: Annotated[Settings, Depends(dependencies.settings)],
) -> PredictResponse:
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
    return PredictResponse(model=model.name, version=model.version, outputs=outputs)
