"""`POST /predict`: texts in, one answer per text out, in order."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response

from service.postprocess import Output
from service.query import predict_queries
from service.routes import dependencies
from service.schemas import ERROR_RESPONSES, MultiPredictResponse, PredictRequest, PredictResponse

log = logging.getLogger(__name__)

router = APIRouter()


def serialise(body: dict) -> Response:
    """The response body, serialised once (the route's `response_model` documents its shape)."""
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def answer(model: str, version: str, outputs: list[Output]) -> Response:
    return serialise({"model": model, "version": version, "outputs": outputs})


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
    rules = serving.rules
    queries = predict_queries(request)
    rules.check_texts(request.inputs)  # the same texts for every model asked
    for query in queries:
        rules.check_params(query.params)
    # Every model is found and leased before any runs: an unknown one fails the request at once.
    with serving.repository.leases([(q.model, q.version) for q in queries]) as models:
        if serving.settings.log_request_texts:
            log.info("inputs", extra={"model": ",".join(m.name for m in models), "texts": request.inputs})
        if request.models is None:
            outputs = await models[0].predict(queries[0], rules)
            return answer(models[0].name, models[0].version, outputs)
        # Several models answer together; the request fails with the first error if any of them fails.
        results = await asyncio.gather(
            *(model.predict(query, rules) for model, query in zip(models, queries, strict=True)),
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
async def echo(
    request: PredictRequest, serving: Annotated[dependencies.Serving, Depends(dependencies.serving)]
) -> Response:
    """The same parsing, validation and serialisation as `/predict`, without tokenizer or model:
    the HTTP ceiling that benchmarks compare the service with. Off unless `echo_route` is set."""
    if not serving.settings.echo_route:
        raise HTTPException(status_code=404, detail="Not Found")
    for query in predict_queries(request):
        serving.rules.check(query)
    return answer(
        request.model or "echo", "echo", [{"label": "echo", "score": 1.0, "truncated": False} for _ in request.inputs]
    )
