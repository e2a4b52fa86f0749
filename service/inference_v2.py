"""The KServe v2 / Open Inference Protocol, whatever carries it: REST (`service.routes.kserve`) and
gRPC (`service.grpc_server`) both bring a request's input tensor, parameters and wanted outputs
here, and get back the one validated query that `POST /predict` uses too (`service.query`), the
outputs to send, and the model's metadata. A rule or message changed here changes on both.

A model takes one BYTES input tensor named `text` (shape [n] or [n, 1]); its head names the output
tensors. Request parameters: `top_k` (next-word models: words per text, default 5); the protocol's
own keys (`binary_data_output`, `sequence_id`, `priority`, `timeout`, ...) are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from service import binary_tensors
from service.errors import InvalidInput
from service.query import Query, QueryRules, params_from

if TYPE_CHECKING:
    from service.served_model import ServedModel

SERVER_NAME = "rnnserve"
SERVER_VERSION = "0.1.0"
PLATFORM = "onnxruntime_onnx"
INPUT_NAME = "text"
INPUT_DATATYPE = "BYTES"
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


def check_input(name: str, datatype: str, shape: list[int]) -> str:
    """The input tensor's header, before its data is read; returns how errors name it."""
    where = f"input {name!r}"
    if name != INPUT_NAME:
        raise InvalidInput(f"{where}: this model's input is named {INPUT_NAME!r}")
    if datatype != INPUT_DATATYPE:
        raise InvalidInput(f"{where}: datatype must be {INPUT_DATATYPE}, got {datatype}")
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1) or shape[0] < 0:
        raise InvalidInput(f"{where}: shape must be [n] or [n, 1], got {shape}")
    return where


def texts_from_raw(raw: memoryview, shape: list[int], where: str) -> list[str]:
    """The texts of raw tensor bytes (4-byte little-endian length, then UTF-8), filling `shape`."""
    return _filled(binary_tensors.decode_strings(raw, math.prod(shape), where), shape, where)


def texts_from_elements(elements: list[Any], shape: list[int], where: str) -> list[str]:
    """The texts of a tensor's listed elements (JSON strings, or gRPC `bytes_contents`)."""
    texts = []
    for index, element in enumerate(elements):
        if isinstance(element, bytes):
            try:
                element = element.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"{where}: element {index} is not UTF-8 text") from None
        elif not isinstance(element, str):
            raise InvalidInput(f"{where}: every element must be a string")
        texts.append(element)
    return _filled(texts, shape, where)


def _filled(texts: list[str], shape: list[int], where: str) -> list[str]:
    if len(texts) != math.prod(shape):
        raise InvalidInput(f"{where}: {len(texts)} elements do not fill shape {shape}")
    return texts


def query(model: ServedModel, texts: list[str], parameters: Mapping[str, Any], rules: QueryRules) -> Query:
    """The request as the query `POST /predict` would make, checked against every rule that does
    not need the model's tokenizer (the model checks the rest as it encodes)."""
    unknown = set(parameters) - TASK_PARAMETERS - PROTOCOL_PARAMETERS
    if unknown:
        raise InvalidInput(f"parameters: unknown {', '.join(sorted(unknown))} (known: {', '.join(TASK_PARAMETERS)})")
    params = params_from({k: v for k, v in parameters.items() if k in TASK_PARAMETERS}, "parameters")
    checked = Query(texts, model.name, model.version, params)
    rules.check(checked, params_at="parameters")
    return checked


def check_outputs(model: ServedModel, wanted: Collection[str]) -> None:
    unknown = set(wanted) - model.head.output_names
    if unknown:
        raise InvalidInput(f"unknown outputs: {', '.join(sorted(unknown))}")


def selected(tensors: list[dict], wanted: Collection[str]) -> list[dict]:
    """The output tensors the request named, in the model's order; all of them when it named none."""
    return [t for t in tensors if t["name"] in wanted] if wanted else tensors


def model_metadata(model: ServedModel, versions: list[str]) -> dict:
    """The protocol's model metadata, plus the task's parameters (labels, ...) where the transport
    has room for them (REST)."""
    outputs, parameters = model.head.metadata()
    return {
        "name": model.name,
        "versions": versions,
        "platform": PLATFORM,
        "inputs": [{"name": INPUT_NAME, "datatype": INPUT_DATATYPE, "shape": [-1]}],
        "outputs": outputs,
        "parameters": parameters,
    }
