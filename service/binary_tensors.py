"""The KServe v2 binary tensor data extension (REST), as Triton defines it and its clients send it.

A request or response body is a JSON header followed by raw tensor bytes; the header's length is
in `Inference-Header-Content-Length`. A tensor whose bytes follow names their size in
`parameters.binary_data_size`, and the bytes of such tensors lie end to end in the order the header
lists them. A BYTES element is a 4-byte little-endian length and that many bytes; FP32 is IEEE
little-endian. Framing faults (a length that is not a number, points past the body, or leaves bytes
unclaimed) are the client's malformed request: 400, found before anything is decoded further.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import numpy as np

from service.errors import InvalidInput, MalformedRequest

HEADER = "inference-header-content-length"
BINARY_SIZE = "binary_data_size"
_LENGTH = struct.Struct("<I")


def _length(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedRequest(f"{what} must be a non-negative integer, got {value!r}")
    return value


def split_body(body: bytes, header_length: str) -> tuple[bytes, memoryview]:
    """The JSON header and the binary section of a body sent with the extension."""
    text = header_length.strip()
    if not text.isdigit():
        raise MalformedRequest(f"Inference-Header-Content-Length must be a non-negative integer, got {header_length!r}")
    length = int(text)
    if length > len(body):
        raise MalformedRequest(f"Inference-Header-Content-Length is {length}, but the body holds {len(body)} bytes")
    return body[:length], memoryview(body)[length:]


def take_chunk(size: Any, binary: memoryview, where: str) -> memoryview | None:
    """The input tensor's bytes: the whole binary section, which its `binary_data_size` must claim
    exactly (None: the tensor's data is in the JSON, and no bytes may follow)."""
    claimed = 0 if size is None else _length(size, f"{where}: {BINARY_SIZE}")
    if claimed > len(binary):
        raise MalformedRequest(f"{where}: {BINARY_SIZE} is {claimed}, but only {len(binary)} bytes remain")
    if claimed < len(binary):
        raise MalformedRequest(f"{len(binary) - claimed} bytes of binary data follow the tensors that claim theirs")
    return None if size is None else binary


def decode_strings(chunk: memoryview, limit: int, where: str) -> list[str]:
    """A BYTES tensor's elements as text; at most `limit` of them (the shape's count) are read."""
    texts: list[str] = []
    offset, end = 0, len(chunk)
    while offset < end:
        if len(texts) == limit:
            raise InvalidInput(f"{where}: the binary data holds more than the {limit} elements of its shape")
        if offset + 4 > end:
            raise MalformedRequest(f"{where}: element {len(texts)} is cut short inside its 4-byte length")
        (size,) = _LENGTH.unpack_from(chunk, offset)
        offset += 4
        if offset + size > end:
            raise MalformedRequest(
                f"{where}: element {len(texts)} declares {size} bytes, but only {end - offset} remain"
            )
        try:
            texts.append(str(chunk[offset : offset + size], "utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput(f"{where}: element {len(texts)} is not UTF-8 text") from None
        offset += size
    return texts


def encode(datatype: str, data: Iterable[Any]) -> bytes:
    """A response tensor's data in the extension's layout."""
    if datatype == "BYTES":
        parts = []
        for item in data:
            raw = item.encode() if isinstance(item, str) else bytes(item)
            parts += (_LENGTH.pack(len(raw)), raw)
        return b"".join(parts)
    if datatype == "FP32":
        return np.asarray(list(data), dtype="<f4").tobytes()
    raise ValueError(f"no binary layout for {datatype}")  # a head added a datatype: a bug, not a request


def wants_binary(request_parameters: dict[str, Any] | None, output_parameters: dict[str, Any] | None) -> bool:
    """Whether an output goes in binary: its own `binary_data` if given, else the request's
    `binary_data_output` (tritonclient sets the latter when the request names no outputs)."""
    for parameters, key in ((output_parameters, "binary_data"), (request_parameters, "binary_data_output")):
        if parameters and key in parameters:
            value = parameters[key]
            if not isinstance(value, bool):
                raise InvalidInput(f"parameters.{key} must be true or false, got {value!r}")
            return value
    return False
