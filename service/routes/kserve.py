"""KServe v2 / Open Inference Protocol over REST (JSON tensors; the binary extension is not supported).

A model takes one BYTES input tensor of texts (any name, shape [n] or [n, 1]). Classifiers answer
`label` (BYTES [n]), `score` (FP32 [n]) and `probabilities` (FP32 [n, classes], in the order of
the metadata's `labels` parameter); next-word models answer `next_tokens` (BYTES [n, k]) and
`next_scores` (FP32 [n, k]), with k from the `top_k` request parameter (default 5).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.errors import InvalidInput
from service.repository import ModelRepository
from service.routes import dependencies
from service.routes.predict import check_limits
from service.schemas import PredictParams, PredictRequest
from service.served_model import DEFAULT_NEXT_WORDS, ServedModel

router = APIRouter(prefix="/v2")

Repository = Annotated[ModelRepository, Depends(dependencies.repository)]


class Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any]


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[Tensor] = Field(min_length=1, max_length=1)
    outputs: list[RequestedOutput] | None = None


def _texts(request: InferRequest) -> list[str]:
    tensor = request.inputs[0]
    if tensor.datatype != "BYTES":
        raise InvalidInput(f"input {tensor.name!r}: datatype must be BYTES, got {tensor.datatype}")
    if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
        raise InvalidInput(f"input {tensor.name!r}: shape must be [n] or [n, 1], got {tensor.shape}")
    data = [x for row in tensor.data for x in (row if isinstance(row, list) else [row])]
    if len(data) != math.prod(tensor.shape):
        raise InvalidInput(f"input {tensor.name!r}: {len(data)} elements do not fill shape {tensor.shape}")
    if not data:
        raise InvalidInput(f"input {tensor.name!r}: no texts")
    if not all(isinstance(x, str) for x in data):
        raise InvalidInput(f"input {tensor.name!r}: every element must be a string")
    return data


def _output_tensors(model: ServedModel, outputs: list) -> list[dict]:
    n = len(outputs)
    if model.is_classifier:
        return [
            {"name": "label", "datatype": "BYTES", "shape": [n], "data": [o["label"] for o in outputs]},
            {"name": "score", "datatype": "FP32", "shape": [n], "data": [o["score"] for o in outputs]},
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [n, len(model.config.labels)],
                "data": [a["score"] for o in outputs for a in o["alternatives"]],
            },
        ]
    k = len(outputs[0]["next"])
    return [
        {
            "name": "next_tokens",
            "datatype": "BYTES",
            "shape": [n, k],
            "data": [w["token"] for o in outputs for w in o["next"]],
        },
        {
            "name": "next_scores",
            "datatype": "FP32",
            "shape": [n, k],
            "data": [w["score"] for o in outputs for w in o["next"]],
        },
    ]


def _output_names(model: ServedModel) -> list[tuple[str, str, list[int]]]:
    if model.is_classifier:
        return [
            ("label", "BYTES", [-1]),
            ("score", "FP32", [-1]),
            ("probabilities", "FP32", [-1, len(model.config.labels)]),
        ]
    return [("next_tokens", "BYTES", [-1, -1]), ("next_scores", "FP32", [-1, -1])]


async def _parse(http_request: Request) -> InferRequest:
    """Read the JSON body whatever its Content-Type: clients such as tritonclient send none."""
    if "inference-header-content-length" in http_request.headers:
        raise InvalidInput("the binary tensor extension is not supported; send JSON tensors")
    try:
        return InferRequest.model_validate_json(await http_request.body())
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(f"{where}: {first['msg']}") from None


@router.get("")
async def server_metadata() -> dict:
    return {"name": "rnnserve", "version": "0.1.0", "extensions": []}


@router.get("/models/{name}")
@router.get("/models/{name}/versions/{version}")
async def model_metadata(name: str, repository: Repository, version: str | None = None) -> dict:
    model = repository.get(name, version)
    return {
        "name": model.name,
        "versions": repository.versions(model.name),
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": n, "datatype": d, "shape": s} for n, d, s in _output_names(model)],
        "parameters": {"task": model.config.task.value, "labels": model.config.labels},
    }


@router.get("/models/{name}/ready")
@router.get("/models/{name}/versions/{version}/ready")
async def model_ready(name: str, repository: Repository, version: str | None = None) -> JSONResponse:
    model = repository.get(name, version)
    return JSONResponse({"name": model.name, "ready": True})


@router.post("/models/{name}/infer")
@router.post("/models/{name}/versions/{version}/infer")
async def infer(
    name: str,
    http_request: Request,
    serving: Annotated[dependencies.Serving, Depends(dependencies.serving)],
    version: str | None = None,
) -> dict:
    """Body: an `InferRequest` (JSON tensors), read whatever the Content-Type."""
    model = serving.repository.get(name, version)
    request = await _parse(http_request)
    texts = _texts(request)
    parameters = request.parameters or {}
    top_k = parameters.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise InvalidInput("parameters.top_k must be a positive integer")
    if model.is_classifier:
        top_k = len(model.config.labels)  # the probabilities tensor carries every label
    params = PredictParams(top_k=top_k or DEFAULT_NEXT_WORDS)
    check_limits(PredictRequest(model=model.name, inputs=texts, params=params), serving.settings)
    outputs = await model.predict(texts, params)
    if model.is_classifier:  # probabilities in label order, not best-first
        for output in outputs:
            output["alternatives"].sort(key=lambda a: model.label_index[a["label"]])
    tensors = _output_tensors(model, outputs)
    if request.outputs:
        wanted = {o.name for o in request.outputs}
        unknown = wanted - {t["name"] for t in tensors}
        if unknown:
            raise InvalidInput(f"unknown outputs: {', '.join(sorted(unknown))}")
        tensors = [t for t in tensors if t["name"] in wanted]
    body: dict = {"model_name": model.name, "model_version": model.version, "outputs": tensors}
    if request.id is not None:
        body["id"] = request.id
    return body
