"""KServe v2 / Open Inference Protocol over REST: JSON tensors, or the binary tensor data extension
(`service.binary_tensors`) for requests and responses, as `tritonclient.http` sends by default.
What the request means (input, parameters, outputs, metadata) is `service.inference_v2`, shared
with gRPC; this module reads and writes the REST wire format.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service import binary_tensors, inference_v2
from service.binary_tensors import BINARY_SIZE
from service.errors import InvalidInput, MalformedRequest
from service.repository import ModelRepository
from service.routes import dependencies
from service.routes.head import answer_head

router = APIRouter(prefix="/v2")

Repository = Annotated[ModelRepository, Depends(dependencies.repository)]


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
    inputs: list[Tensor] = Field(
        min_length=1, max_length=1, description=f"one BYTES tensor named {inference_v2.INPUT_NAME!r}"
    )
    outputs: list[RequestedOutput] | None = None


def _texts(request: InferRequest, binary: memoryview | None) -> list[str]:
    tensor = request.inputs[0]
    where = inference_v2.check_input(tensor.name, tensor.datatype, tensor.shape)
    size = (tensor.parameters or {}).get(BINARY_SIZE)
    if size is not None and binary is None:
        raise MalformedRequest(f"{where}: {BINARY_SIZE} is set, but the request has no Inference-Header-Content-Length")
    chunk = binary_tensors.take_chunk(size, binary, where) if binary is not None else None
    if chunk is not None:
        if tensor.data is not None:
            raise InvalidInput(f"{where}: give data or {BINARY_SIZE}, not both")
        return inference_v2.texts_from_raw(chunk, tensor.shape, where)
    if tensor.data is None:
        raise InvalidInput(f"{where}: data is required (or {BINARY_SIZE} with the binary extension)")
    elements = [x for row in tensor.data for x in (row if isinstance(row, list) else [row])]
    return inference_v2.texts_from_elements(elements, tensor.shape, where)


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
    return {
        "name": inference_v2.SERVER_NAME,
        "version": inference_v2.SERVER_VERSION,
        "extensions": ["binary_tensor_data"],
    }


@router.get("/models/{name}")
@router.get("/models/{name}/versions/{version}")
async def model_metadata(name: str, repository: Repository, version: str | None = None) -> dict:
    model = repository.get(name, version)
    return inference_v2.model_metadata(model, repository.versions(model.name))


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
        query = inference_v2.query(model, _texts(request, binary), request.parameters or {}, serving.rules)
        wanted = {o.name: o.parameters for o in request.outputs or ()}
        inference_v2.check_outputs(model, wanted)
        # Decided (and the flags checked) before inference: a bad flag costs no model run.
        binary = {
            name
            for name in wanted or model.head.output_names
            if binary_tensors.wants_binary(request.parameters, wanted.get(name))
        }
        tensors = inference_v2.selected(await model.infer(query, serving.rules), wanted)
    body: dict = {"model_name": model.name, "model_version": model.version}
    if request.id is not None:
        body["id"] = request.id
    return _respond(body, tensors, binary)


answer_head(router)
