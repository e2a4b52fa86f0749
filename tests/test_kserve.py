"""KServe v2 / Open Inference Protocol, driven by the off-the-shelf Triton clients with their default
settings: the same tests through `tritonclient.http` (REST, binary tensors) and `tritonclient.grpc`.
REST's own wire format (JSON tensors, the binary extension's framing) is tested after them;
gRPC's in tests/test_grpc.py."""

from __future__ import annotations

import json
import struct
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.conftest import Server


class Triton:
    """One of the two Triton clients, with what differs between them (how metadata comes back)."""

    def __init__(self, module: ModuleType, server: Server) -> None:
        self.module = module
        self.is_grpc = module is triton_grpc
        self.client = module.InferenceServerClient(server.grpc_target if self.is_grpc else urlparse(server.url).netloc)

    def texts(self, texts: list[str]) -> Any:
        tensor = self.module.InferInput("text", [len(texts)], "BYTES")
        tensor.set_data_from_numpy(np.array(texts, dtype=object))  # each client's default encoding
        return tensor

    def outputs(self, *names: str) -> list:
        return [self.module.InferRequestedOutput(name) for name in names]

    def model_metadata(self, name: str) -> dict:
        if self.is_grpc:
            metadata = self.client.get_model_metadata(name, as_json=True)
            for tensor in metadata["inputs"] + metadata["outputs"]:  # int64 as JSON strings
                tensor["shape"] = [int(d) for d in tensor["shape"]]
            return metadata
        return self.client.get_model_metadata(name)

    def response_id(self, result: Any) -> str:
        return result.get_response().id if self.is_grpc else result.get_response()["id"]


@pytest.fixture(params=[triton, triton_grpc], ids=["http", "grpc"])
def client(request: pytest.FixtureRequest, server: Server) -> Triton:
    return Triton(request.param, server)


def labels(array: np.ndarray) -> list[str]:
    return [x.decode() if isinstance(x, bytes) else x for x in array.ravel()]


def test_health_and_metadata(client: Triton) -> None:
    c = client.client
    assert c.is_server_live() and c.is_server_ready()
    assert c.is_model_ready("intent") and c.is_model_ready("intent", "1")
    assert not c.is_model_ready("absent")
    metadata = client.model_metadata("intent")
    assert metadata["versions"] == ["1"] and metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert {o["name"]: o["shape"] for o in metadata["outputs"]} == {
        "label": [-1],
        "score": [-1],
        "probabilities": [-1, 3],
    }
    server_metadata = c.get_server_metadata(**({"as_json": True} if client.is_grpc else {}))
    assert server_metadata["name"] == "rnnserve"


def test_classifier_infer(client: Triton) -> None:
    texts = ["play some jazz", "will it rain in tokyo", "naïve café ☕"]
    result = client.client.infer("intent", [client.texts(texts)], request_id="r-1")  # every output
    assert labels(result.as_numpy("label"))[:2] == ["music", "weather"]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (3, 3) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(probabilities.max(axis=1), result.as_numpy("score"), atol=1e-6)
    assert client.response_id(result) == "r-1"


def test_both_protocols_give_the_same_answers(server: Server) -> None:
    texts = ["play some jazz", "will it rain in tokyo", "naïve café ☕", "x" * 300]
    results = []
    for module in (triton, triton_grpc):
        each = Triton(module, server)
        results.append(each.client.infer("intent", [each.texts(texts)]))
    rest, grpc = results
    assert labels(rest.as_numpy("label")) == labels(grpc.as_numpy("label"))
    np.testing.assert_array_equal(rest.as_numpy("probabilities"), grpc.as_numpy("probabilities"))


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests_answer_as_plain_ones(server: Server, algorithm: str) -> None:
    """tritonclient's request compression (Content-Encoding over REST, grpc's own over gRPC)."""
    texts = ["play some jazz", "will it rain in tokyo", "naïve café ☕"]
    plain = Triton(triton, server).client.infer("intent", [Triton(triton, server).texts(texts)])
    for module in (triton, triton_grpc):
        each = Triton(module, server)
        options = (
            {"compression_algorithm": algorithm}
            if each.is_grpc
            else {
                "request_compression_algorithm": algorithm,
                "response_compression_algorithm": algorithm,
            }
        )
        result = each.client.infer("intent", [each.texts(texts)], **options)
        assert labels(result.as_numpy("label")) == labels(plain.as_numpy("label"))
        np.testing.assert_array_equal(result.as_numpy("probabilities"), plain.as_numpy("probabilities"))


def test_next_word_infer_with_version_top_k_and_one_output(client: Triton) -> None:
    result = client.client.infer(
        "next-word",
        [client.texts(["the company", "it said"])],
        model_version="1",
        outputs=client.outputs("next_tokens"),
        parameters={"top_k": 3},
    )
    assert result.as_numpy("next_tokens").shape == (2, 3)
    assert result.as_numpy("next_scores") is None  # not asked for
    scores = client.client.infer("next-word", [client.texts(["the company"])]).as_numpy("next_scores")[0]
    assert len(scores) == 5 and list(scores) == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    ("model", "texts", "kwargs", "message"),
    [
        ("absent", ["hi"], {}, "no model named 'absent'"),
        ("intent", ["hi"], {"model_version": "9"}, "version"),
        ("intent", ["   "], {}, "visible character"),
        ("intent", ["hi"], {"parameters": {"top_k": 10_000}}, "top_k"),
        ("intent", ["hi"], {"parameters": {"bogus": 1}}, "unknown bogus"),
        ("intent", ["hi"], {"outputs": ["nothing"]}, "unknown outputs: nothing"),
        ("intent", ["hi"] * 300, {}, "exceed the limit"),
    ],
)
def test_errors(client: Triton, model: str, texts: list[str], kwargs: dict, message: str) -> None:
    if "outputs" in kwargs:
        kwargs = {**kwargs, "outputs": client.outputs(*kwargs["outputs"])}
    with pytest.raises(InferenceServerException, match=message) as raised:
        client.client.infer(model, [client.texts(texts)], **kwargs)
    status = raised.value.status()
    assert status in (("StatusCode.NOT_FOUND", "StatusCode.INVALID_ARGUMENT") if client.is_grpc else ("404", "422"))
    assert client.client.is_server_ready()


def test_json_tensor_errors(server: Server) -> None:
    body = {"inputs": [{"name": "text", "shape": [2], "datatype": "INT64", "data": [1, 2]}]}
    response = httpx.post(f"{server.url}/v2/models/intent/infer", json=body)
    assert response.status_code == 422 and "BYTES" in response.json()["error"]
    body = {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": ["a", "b"]}]}
    response = httpx.post(f"{server.url}/v2/models/intent/infer", json=body)
    assert response.status_code == 422 and "do not fill shape" in response.json()["error"]


# The binary tensor data extension: tritonclient's defaults.


def test_rest_outputs_binary_or_json_as_asked(server: Server) -> None:
    rest = Triton(triton, server)
    texts = ["play some jazz", "will it rain in tokyo", "naïve café ☕"]
    binary = rest.client.infer("intent", [rest.texts(texts)])  # no outputs named: all of them, in binary
    assert all(o["parameters"]["binary_data_size"] > 0 for o in binary.get_response()["outputs"])
    as_json = rest.client.infer(
        "intent",
        [rest.texts(texts)],
        outputs=[triton.InferRequestedOutput(name, binary_data=False) for name in ("label", "probabilities")],
    )
    assert labels(binary.as_numpy("label")) == labels(as_json.as_numpy("label"))
    np.testing.assert_allclose(binary.as_numpy("probabilities"), as_json.as_numpy("probabilities"), atol=1e-6)
    # One output in binary, the other as JSON, as the request asks.
    mixed = rest.client.infer(
        "next-word",
        [rest.texts(texts)],
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
