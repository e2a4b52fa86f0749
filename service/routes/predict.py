"""`POST /predict`: texts in, one answer per text out, in order."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response

from service.errors import InvalidInput
from service.postprocess import Output
from service.routes import dependencies
from service.schemas import ERROR_RESPONSES, MultiPredictResponse, PredictRequest, PredictResponse
from service.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter()


def serialise(body: dict) -> Response:
    """The response body, serialised once (the route's `response_model` documents its shape)."""
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def answer(model: str, version: str, outputs: list[Output]) -> Response:
    return serialise({"model": model, "version": version, "outputs": outputs})


def check_limits(request: PredictRequest, settings: Settings) -> None:
    if len(request.inputs) > settings.max_inputs_per_request:
        raise InvalidInput(f"inputs: {len(request.inputs)} texts exceed the limit of {settings.max_inputs_per_request}")
    for index, text in enumerate(request.inputs):
        if len(text) > settings.max_chars_per_input:
            raise InvalidInput(
                f"inputs[{index}]: {len(text)} characters exceed the limit of {settings.max_chars_per_input}"
            )
    for _, _, params in request.queries():
        if params.top_k is not None and params.top_k > settings.max_top_k:
            raise InvalidInput(f"params.top_k: at most {settings.max_top_k}")


@router.post(
    "/predict",
    response_model=PredictResponse | MultiPredictResponse,
    response_model_exclude_none=True,
    responses=ERROR_RESPONSES,
)
async def predict(
    request: PredictRequest,
    serving: Annotated[dependencies.Serving, Depends(dependencies.serving)],
) -> Response:
    settings = serving.settings
    check_limits(request, settings)
    queries = request.queries()
    # Every model is found before any runs: an unknown one fails the request at once.
    models = [serving.repository.get(name, version) for name, version, _ in queries]
    if settings.log_request_texts:
        log.info("inputs", extra={"model": ",".join(m.name for m in models), "texts": request.inputs})
    if request.models is None:
        outputs = await models[0].predict(request.inputs, request.params)
        return answer(models[0].name, models[0].version, outputs)
    # Several models answer together; the request fails with the first error if any of them fails.
    results = await asyncio.gather(
        *(model.predict(request.inputs, params) for model, (_, _, params) in zip(models, queries, strict=True)),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return serialise(
        {
            "results": [
                {"model": m.name, "version": m.version, "outputs": outputs}
                for m, outputs in zip(models, results, strict=True)
            ]
        }
    )


@router.post("/echo", response_model=PredictResponse, response_model_exclude_none=True, include_in_schema=False)
async def echo(request: PredictRequest, settings: Annotated[Settings, Depends(dependencies.settings)]) -> Response:
    """The same parsing, validation and serialisation as `/predict`, without tokenizer or model:
    the HTTP ceiling that benchmarks compare the service with. Off unless `echo_route` is set."""
    if not settings.echo_route:
        raise HTTPException(status_code=404, detail="Not Found")
    check_limits(request, settings)
    return answer(
        request.model or "echo", "echo", [{"label": "echo", "score": 1.0, "truncated": False} for _ in request.inputs]
    )
