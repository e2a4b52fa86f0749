"""KServe v2 / Open Inference Protocol over REST (JSON tensors; the binary extension is not supported).

A model takes one BYTES input tensor named `text` (shape [n] or [n, 1]); its head (`service.heads`)
names the output tensors and states them in the model's metadata. The request becomes the same
validated query as `POST /predict` (`service.query`), so every rule holds on both protocols.
Request `parameters`: `top_k` (next-word models: words per text, default 5); the protocol's own
keys (`binary_data_output`, `sequence_id`, `priority`, `timeout`, ...) are ignored.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.errors import InvalidInput
from service.query import Query, params_from
from service.repository import ModelRepository
from service.routes import dependencies

router = APIRouter(prefix="/v2")

Repository = Annotated[ModelRepository, Depends(dependencies.repository)]

INPUT_NAME = "text"
TASK_PARAMETERS = {"top_k"}
# Keys the protocol and its clients (tritonclient, KServe) define for themselves.
PROTOCOL_PARAMETERS = {
    "binary_data_output",
    "binary_data",
    "binary_data_size",
    "sequence_id",
    "sequence_start",
    "sequence_end",
    "priority",
    "timeout",
    "headers",
}


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
    inputs: list[Tensor] = Field(min_length=1, max_length=1, description=f"one BYTES tensor named {INPUT_NAME!r}")
    outputs: list[RequestedOutput] | None = None


def _texts(request: InferRequest) -> list[str]:
    tensor = request.inputs[0]
    if tensor.name != INPUT_NAME:
        raise InvalidInput(f"input {tensor.name!r}: this model's input is named {INPUT_NAME!r}")
    if tensor.datatype != "BYTES":
        raise InvalidInput(f"input {tensor.name!r}: datatype must be BYTES, got {tensor.datatype}")
    shape = tensor.shape
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1) or shape[0] < 0:
        raise InvalidInput(f"input {tensor.name!r}: shape must be [n] or [n, 1], got {shape}")
    data = [x for row in tensor.data for x in (row if isinstance(row, list) else [row])]
    if len(data) != math.prod(shape):
        raise InvalidInput(f"input {tensor.name!r}: {len(data)} elements do not fill shape {shape}")
    if not all(isinstance(x, str) for x in data):
        raise InvalidInput(f"input {tensor.name!r}: every element must be a string")
    return data


def _query(name: str, version: str | None, request: InferRequest) -> Query:
    """The v2 request as the one query both protocols share."""
    parameters = request.parameters or {}
    unknown = set(parameters) - TASK_PARAMETERS - PROTOCOL_PARAMETERS
    if unknown:
        raise InvalidInput(f"parameters: unknown {', '.join(sorted(unknown))} (known: {', '.join(TASK_PARAMETERS)})")
    params = params_from({k: v for k, v in parameters.items() if k in TASK_PARAMETERS}, "parameters")
    return Query(_texts(request), name, version, params)


async def _parse(http_request: Request) -> InferRequest:
    """Read the JSON body whatever its Content-Type: clients such as tritonclient send none."""
    if "inference-header-content-length" in http_request.headers:
        raise InvalidInput("the binary tensor extension is not supported; send JSON tensors")
    try:
        return InferRequest.model_validate_json(await http_request.body())
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"] == "json_invalid":
            raise InvalidInput(f"request body is not valid JSON ({first['msg']})") from None
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(f"{where}: {first['msg']}") from None


@router.get("")
async def server_metadata() -> dict:
    return {"name": "rnnserve", "version": "0.1.0", "extensions": []}


@router.get("/models/{name}")
@router.get("/models/{name}/versions/{version}")
async def model_metadata(name: str, repository: Repository, version: str | None = None) -> dict:
    model = repository.get(name, version)
    outputs, parameters = model.head.metadata()
    return {
        "name": model.name,
        "versions": repository.versions(model.name),
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": INPUT_NAME, "datatype": "BYTES", "shape": [-1]}],
        "outputs": outputs,
        "parameters": parameters,
    }


@router.get("/models/{name}/ready")
@router.get("/models/{name}/versions/{version}/ready")
async def model_ready(name: str, repository: Repository, version: str | None = None) -> JSONResponse:
    model = repository.get(name, version)
    return JSONResponse({"name": model.name, "ready": True})


INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InferRequest"}}},
    }
}


@router.post("/models/{name}/infer", openapi_extra=INFER_BODY)
@router.post("/models/{name}/versions/{version}/infer", openapi_extra=INFER_BODY)
async def infer(
    name: str,
    http_request: Request,
    serving: Annotated[dependencies.Serving, Depends(dependencies.serving)],
    version: str | None = None,
) -> dict:
    """Body: an `InferRequest` (JSON tensors), read whatever the Content-Type."""
    with serving.repository.lease(name, version) as (model,):
        request = await _parse(http_request)
        query = _query(model.name, model.version, request)
        serving.rules.check(query, params_at="parameters")
        wanted = {o.name for o in request.outputs or ()}
        unknown = wanted - model.head.output_names
        if unknown:
            raise InvalidInput(f"unknown outputs: {', '.join(sorted(unknown))}")
        tensors = await model.infer(query, serving.rules)
    if wanted:
        tensors = [t for t in tensors if t["name"] in wanted]
    body: dict = {"model_name": model.name, "model_version": model.version, "outputs": tensors}
    if request.id is not None:
        body["id"] = request.id
    return body
