"""KServe v2 / Open Inference Protocol, driven by the off-the-shelf Triton HTTP client."""

from __future__ import annotations

import json
import struct
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from tests.conftest import Server


@pytest.fixture()
def triton_client(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(urlparse(server.url).netloc)


def texts_input(texts: list[str]) -> triton.InferInput:
    tensor = triton.InferInput("text", [len(texts)], "BYTES")
    tensor.set_data_from_numpy(np.array(texts, dtype=object), binary_data=False)
    return tensor


def outputs(*names: str) -> list[triton.InferRequestedOutput]:
    return [triton.InferRequestedOutput(name, binary_data=False) for name in names]


def test_health_and_metadata(triton_client: triton.InferenceServerClient) -> None:
    assert triton_client.is_server_live() and triton_client.is_server_ready()
    assert triton_client.is_model_ready("intent")
    metadata = triton_client.get_model_metadata("intent")
    assert metadata["versions"] == ["1"]
    assert metadata["inputs"][0]["datatype"] == "BYTES"
    assert {o["name"] for o in metadata["outputs"]} == {"label", "score", "probabilities"}
    assert triton_client.get_server_metadata()["name"] == "rnnserve"


def test_classifier_infer(triton_client: triton.InferenceServerClient) -> None:
    result = triton_client.infer(
        "intent",
        [texts_input(["play some jazz", "will it rain in tokyo"])],
        outputs=outputs("label", "score", "probabilities"),
        request_id="r-1",
    )
    assert [x.decode() if isinstance(x, bytes) else x for x in result.as_numpy("label")] == [
        "music",
        "weather",
    ]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(probabilities.max(axis=1), result.as_numpy("score"), atol=1e-6)
    assert result.get_response()["id"] == "r-1"


def test_next_word_infer_with_version_and_top_k(triton_client: triton.InferenceServerClient) -> None:
    result = triton_client.infer(
        "next-word",
        [texts_input(["the company"])],
        model_version="1",
        outputs=outputs("next_tokens", "next_scores"),
        parameters={"top_k": 3},
    )
    assert result.as_numpy("next_tokens").shape == (1, 3)
    scores = result.as_numpy("next_scores")[0]
    assert list(scores) == sorted(scores, reverse=True)


def test_errors(triton_client: triton.InferenceServerClient, server: Server) -> None:
    with pytest.raises(triton.InferenceServerException, match="no model named"):
        triton_client.get_model_metadata("absent")
    body = {"inputs": [{"name": "text", "shape": [2], "datatype": "INT64", "data": [1, 2]}]}
    response = httpx.post(f"{server.url}/v2/models/intent/infer", json=body)
    assert response.status_code == 422 and "BYTES" in response.json()["error"]
    body = {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": ["a", "b"]}]}
    response = httpx.post(f"{server.url}/v2/models/intent/infer", json=body)
    assert response.status_code == 422 and "do not fill shape" in response.json()["error"]


# The binary tensor data extension: tritonclient's defaults.


def test_default_client_settings_use_binary_tensors(triton_client: triton.InferenceServerClient) -> None:
    texts = ["play some jazz", "will it rain in tokyo", "naïve café ☕"]
    tensor = triton.InferInput("text", [len(texts)], "BYTES")
    tensor.set_data_from_numpy(np.array(texts, dtype=object))  # binary_data=True by default
    binary = triton_client.infer("intent", [tensor])  # no outputs named: all of them, in binary
    assert all(o["parameters"]["binary_data_size"] > 0 for o in binary.get_response()["outputs"])
    json_result = triton_client.infer("intent", [texts_input(texts)], outputs=outputs("label", "probabilities"))
    assert [x.decode() for x in binary.as_numpy("label")] == list(json_result.as_numpy("label"))
    np.testing.assert_allclose(binary.as_numpy("probabilities"), json_result.as_numpy("probabilities"), atol=1e-6)
    # One output in binary, the other as JSON, as the request asks.
    mixed = triton_client.infer(
        "next-word",
        [tensor],
        outputs=[triton.InferRequestedOutput("next_tokens"), triton.InferRequestedOutput("next_scores", False)],
        parameters={"top_k": 2},
    )
    assert mixed.as_numpy("next_tokens").shape == (3, 2)
    assert "data" in mixed.get_output("next_scores") and "data" not in mixed.get_output("next_tokens")


def framed(header: dict, binary: bytes) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(header).encode()
    return raw + binary, {"Inference-Header-Content-Length": str(len(raw))}


def strings(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def binary_input(shape: list[int], size: int) -> dict:
    return {"inputs": [{"name": "text", "shape": shape, "datatype": "BYTES", "parameters": {"binary_data_size": size}}]}


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"{}", {"Inference-Header-Content-Length": "abc"}, 400, "non-negative integer"),
        (b"{}", {"Inference-Header-Content-Length": "-1"}, 400, "non-negative integer"),
        (b"{}", {"Inference-Header-Content-Length": "99999"}, 400, "the body holds 2 bytes"),
        (*framed(binary_input([1], 100), strings(b"hi")), 400, "only 6 bytes remain"),
        (*framed(binary_input([1], 6), strings(b"hi") + b"xx"), 400, "2 bytes of binary data follow"),
        (*framed(binary_input([1], 4), struct.pack("<I", 0xFFFFFFFF)), 400, "declares 4294967295 bytes"),
        (*framed(binary_input([2], 8), strings(b"hi") + b"\x01\x00"), 400, "cut short inside its 4-byte length"),
        (*framed(binary_input([1], 6), strings(b"\xff\xfe")), 422, "not UTF-8"),
        (*framed(binary_input([1], 12), strings(b"hi", b"yo")), 422, "more than the 1 elements"),
        (*framed(binary_input([3], 12), strings(b"hi", b"yo")), 422, "do not fill shape"),
        (*framed(binary_input([1], 5), strings(b"\x00")), 422, "visible character"),
        (*framed(binary_input([1], "6"), strings(b"hi")), 400, "non-negative integer"),
        (json.dumps(binary_input([1], 6)).encode(), {}, 400, "no Inference-Header-Content-Length"),
        (
            *framed({"inputs": [{**binary_input([1], 6)["inputs"][0], "data": ["hi"]}]}, strings(b"hi")),
            422,
            "not both",
        ),
        (*framed({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES"}]}, b""), 422, "data is required"),
        (
            *framed({**binary_input([1], 6), "parameters": {"binary_data_output": "yes"}}, strings(b"hi")),
            422,
            "true or false",
        ),
    ],
)
def test_malformed_binary_requests(
    server: Server, body: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    response = httpx.post(f"{server.url}/v2/models/intent/infer", content=body, headers=headers, timeout=10)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
