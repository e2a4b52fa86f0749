"""KServe v2 / Open Inference Protocol, driven by the off-the-shelf Triton HTTP client."""

from __future__ import annotations

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
