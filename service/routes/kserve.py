"""KServe v2 / Open Inference Protocol over REST: JSON tensors, or the binary tensor data extension
(`service.binary_tensors`) for requests and responses, as `tritonclient.http` sends by default.

A model takes one BYTES input tensor named `text` (shape [n] or [n, 1]); its head (`service.heads`)
names the output tensors and states them in the model's metadata. The request becomes the same
validated query as `POST /predict` (`service.query`), so every rule holds on both protocols.
Request `parameters`: `top_k` (next-word models: words per text, default 5); the protocol's own
keys (`binary_data_output`, `sequence_id`, `priority`, `timeout`, ...) are ignored.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service import binary_tensors
from service.binary_tensors import BINARY_SIZE
from service.errors import InvalidInput, MalformedRequest
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
    data: list[Any] | None = Field(default=None, description=f"absent when `parameters.{BINARY_SIZE}` is given")


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[Tensor] = Field(min_length=1, max_length=1, description=f"one BYTES tensor named {INPUT_NAME!r}")
    outputs: list[RequestedOutput] | None = None


def _texts(request: InferRequest, binary: memoryview | None) -> list[str]:
    tensor = request.inputs[0]
    where = f"input {tensor.name!r}"
    if tensor.name != INPUT_NAME:
        raise InvalidInput(f"{where}: this model's input is named {INPUT_NAME!r}")
    if tensor.datatype != "BYTES":
        raise InvalidInput(f"{where}: datatype must be BYTES, got {tensor.datatype}")
    shape = tensor.shape
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1) or shape[0] < 0:
        raise InvalidInput(f"{where}: shape must be [n] or [n, 1], got {shape}")
    size = (tensor.parameters or {}).get(BINARY_SIZE)
    if size is not None and binary is None:
        raise MalformedRequest(f"{where}: {BINARY_SIZE} is set, but the request has no Inference-Header-Content-Length")
    chunk = binary_tensors.take_chunk(size, binary, where) if binary is not None else None
    if chunk is not None:
        if tensor.data is not None:
            raise InvalidInput(f"{where}: give data or {BINARY_SIZE}, not both")
        data: list[Any] = binary_tensors.decode_strings(chunk, math.prod(shape), where)
    elif tensor.data is None:
        raise InvalidInput(f"{where}: data is required (or {BINARY_SIZE} with the binary extension)")
    else:
        data = [x for row in tensor.data for x in (row if isinstance(row, list) else [row])]
        if not all(isinstance(x, str) for x in data):
            raise InvalidInput(f"{where}: every element must be a string")
    if len(data) != math.prod(shape):
        raise InvalidInput(f"{where}: {len(data)} elements do not fill shape {shape}")
    return data


def _query(name: str, version: str | None, request: InferRequest, binary: memoryview | None) -> Query:
    """The v2 request as the one query both protocols share."""
    parameters = request.parameters or {}
    unknown = set(parameters) - TASK_PARAMETERS - PROTOCOL_PARAMETERS
    if unknown:
        raise InvalidInput(f"parameters: unknown {', '.join(sorted(unknown))} (known: {', '.join(TASK_PARAMETERS)})")
    params = params_from({k: v for k, v in parameters.items() if k in TASK_PARAMETERS}, "parameters")
    return Query(_texts(request, binary), name, version, params)


async def _parse(http_request: Request) -> tuple[InferRequest, memoryview | None]:
    """The JSON header (the whole body without the binary extension) and the binary section.
    The body is read whatever its Content-Type: clients such as tritonclient send none."""
    body = await http_request.body()
    binary = None
    header_length = http_request.headers.get(binary_tensors.HEADER)
    if header_length is not None:
        body, binary = binary_tensors.split_body(body, header_length)
    try:
        return InferRequest.model_validate_json(body), binary
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"] == "json_invalid":
            raise InvalidInput(f"request body is not valid JSON ({first['msg']})") from None
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(f"{where}: {first['msg']}") from None


def _respond(body: dict, tensors: list[dict], binary: set[str]) -> Response:
    """JSON tensors, or the binary extension for the outputs named in `binary`."""
    chunks = []
    for tensor in tensors:
        if tensor["name"] in binary:
            chunk = binary_tensors.encode(tensor["datatype"], tensor.pop("data"))
            tensor["parameters"] = {BINARY_SIZE: len(chunk)}
            chunks.append(chunk)
    header = json.dumps({**body, "outputs": tensors}, separators=(",", ":")).encode()
    if not chunks:
        return Response(header, media_type="application/json")
    return Response(
        b"".join([header, *chunks]),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )


@router.get("")
async def server_metadata() -> dict:
    return {"name": "rnnserve", "version": "0.1.0", "extensions": ["binary_tensor_data"]}


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
) -> Response:
    """Body: an `InferRequest` (JSON tensors, or a JSON header and binary tensors), read whatever
    the Content-Type."""
    with serving.repository.lease(name, version) as (model,):
        request, binary = await _parse(http_request)
        query = _query(model.name, model.version, request, binary)
        serving.rules.check(query, params_at="parameters")
        wanted = {o.name: o.parameters for o in request.outputs or ()}
        unknown = wanted.keys() - model.head.output_names
        if unknown:
            raise InvalidInput(f"unknown outputs: {', '.join(sorted(unknown))}")
        # Decided (and the flags checked) before inference: a bad flag costs no model run.
        binary = {
            name
            for name in wanted or model.head.output_names
            if binary_tensors.wants_binary(request.parameters, wanted.get(name))
        }
        tensors = await model.infer(query, serving.rules)
    if wanted:
        tensors = [t for t in tensors if t["name"] in wanted]
    body: dict = {"model_name": model.name, "model_version": model.version}
    if request.id is not None:
        body["id"] = request.id
    return _respond(body, tensors, binary)
