"""The service over real HTTP: uvicorn on a loopback port, real ONNX Runtime sessions."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from tests import fixtures
from tests.conftest import Server, metric


def predict(client: httpx.Client, model: str, inputs: list, **extra) -> httpx.Response:
    return client.post("/predict", json={"model": model, "inputs": inputs, **extra})


def test_health_lists_models_and_provider(client: httpx.Client) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert {m["name"] for m in body["models"]} == {"sentiment", "intent", "next-word"}
    assert body["execution_providers"] == ["CPUExecutionProvider"]


def test_sentiment_predictions(client: httpx.Client) -> None:
    response = predict(client, "sentiment", ["the movie was truly wonderful", "this film was awful"])
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "sentiment" and body["version"] == "1"
    assert [o["label"] for o in body["outputs"]] == ["positive", "negative"]
    assert all(0.5 < o["score"] <= 1.0 for o in body["outputs"])


def test_intent_predictions_with_alternatives(client: httpx.Client) -> None:
    texts = ["will it rain in oslo", "play some jazz", "book a table in rome"]
    body = predict(client, "intent", texts, params={"top_k": 3}).json()
    assert [o["label"] for o in body["outputs"]] == ["weather", "music", "booking"]
    for output in body["outputs"]:
        scores = [a["score"] for a in output["alternatives"]]
        assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, abs=1e-4)


def test_next_word_predictions(client: httpx.Client) -> None:
    body = predict(client, "next-word", ["the company"], params={"top_k": 3}).json()
    words = body["outputs"][0]["next"]
    assert len(words) == 3
    assert words[0]["token"] in {"said", "reported", "expects", "announced"}
    assert [w["score"] for w in words] == sorted((w["score"] for w in words), reverse=True)
    default = predict(client, "next-word", ["the bank said"]).json()
    assert len(default["outputs"][0]["next"]) == 5


def probabilities(client: httpx.Client, texts: list[str]) -> list[dict[str, float]]:
    outputs = predict(client, "sentiment", texts, params={"top_k": 2}).json()["outputs"]
    return [{a["label"]: a["score"] for a in output["alternatives"]} for output in outputs]


def test_a_long_text_is_read_whole_in_windows_of_sentences(client: httpx.Client) -> None:
    """A classifier's text longer than its 64 tokens is read in windows of whole sentences and
    answers the mean of their probabilities; nothing is cut off."""
    first = "the film was dull and " * 7 + "boring ."  # 37 tokens: with the second, more than 64
    second = "the cast was great , " * 7 + "wonderful ."  # 37 tokens
    body = predict(client, "sentiment", [f"{first} {second}", first, second], params={"top_k": 2}).json()
    whole, alone = body["outputs"][0], probabilities(client, [first, second])
    assert whole["truncated"] is False and whole["windows"] == 2
    assert "windows" not in body["outputs"][1]
    for label in ("positive", "negative"):
        mean = (alone[0][label] + alone[1][label]) / 2
        assert abs(probabilities(client, [f"{first} {second}"])[0][label] - mean) < 1e-5
    # A sentence longer than a window fills windows of its own.
    output = predict(client, "sentiment", [" ".join(["wonderful"] * 500)]).json()["outputs"][0]
    assert output["windows"] == 8 and output["truncated"] is False and output["label"] == "positive"
    # KServe v2 answers the same probabilities.
    v2 = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [f"{first} {second}"]}]}
    tensors = {t["name"]: t for t in client.post("/v2/models/sentiment/infer", json=v2).json()["outputs"]}
    config = client.get("/v2/models/sentiment").json()["parameters"]["labels"]
    got = dict(zip(config, tensors["probabilities"]["data"], strict=True))
    assert all(abs(got[k] - v) < 1e-5 for k, v in probabilities(client, [f"{first} {second}"])[0].items())


def test_a_long_prefix_keeps_its_end_and_is_flagged(client: httpx.Client) -> None:
    output = predict(client, "next-word", [" ".join(["the company said"] * 40)]).json()["outputs"][0]
    assert output["truncated"] is True and "windows" not in output


def test_the_token_limit_counts_every_window_and_windows_can_be_off(make_server, model_repository) -> None:
    server = make_server(model_repository, RNNSERVE_MAX_TOKENS_PER_REQUEST="100")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        fits = predict(http, "sentiment", [" ".join(["good"] * 100)])
        assert fits.status_code == 200 and fits.json()["outputs"][0]["windows"] == 2
        refused = predict(http, "sentiment", [" ".join(["good"] * 120)])  # its first window alone: 64
        assert refused.status_code == 422
        assert "120 tokens exceed the limit of 100" in refused.json()["error"]["message"]
    cut = make_server(model_repository, RNNSERVE_LONG_TEXTS="truncate")
    with httpx.Client(base_url=cut.url, timeout=30) as http:
        output = predict(http, "sentiment", [" ".join(["good"] * 120)]).json()["outputs"][0]
        assert output["truncated"] is True and "windows" not in output


def test_concurrent_requests_come_back_matched(server: Server) -> None:
    """Many concurrent mixed-size requests: each answer equals that input's answer alone."""
    rng = random.Random(5)
    pool = [text for text, _ in fixtures.sentiment_rows(60, seed=9)]
    requests = [rng.sample(pool, rng.randint(1, 6)) for _ in range(120)]

    async def send_all() -> list[dict]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            replies = await asyncio.gather(
                *(http.post("/predict", json={"model": "sentiment", "inputs": r}) for r in requests)
            )
        return [reply.json() for reply in replies]

    answers = asyncio.run(send_all())
    with httpx.Client(base_url=server.url, timeout=30) as http:
        alone = {text: predict(http, "sentiment", [text]).json()["outputs"][0] for text in pool}
    for request, answer in zip(requests, answers, strict=True):
        assert len(answer["outputs"]) == len(request)
        for text, output in zip(request, answer["outputs"], strict=True):
            assert output["label"] == alone[text]["label"]
            assert output["score"] == pytest.approx(alone[text]["score"], abs=1e-5)


@pytest.mark.parametrize(
    ("body", "status", "error_type", "fragment"),
    [
        ({"model": "nope", "inputs": ["hi"]}, 404, "model_not_found", "no model named 'nope'"),
        (
            {"model": "sentiment", "version": "9", "inputs": ["hi"]},
            404,
            "model_not_found",
            "no version '9'",
        ),
        ({"model": "sentiment", "inputs": []}, 422, "invalid_request", "inputs"),
        ({"model": "sentiment", "inputs": "hi"}, 422, "invalid_request", "inputs"),
        ({"model": "sentiment", "inputs": [1, 2]}, 422, "invalid_request", "valid string"),
        ({"model": "sentiment", "inputs": [None]}, 422, "invalid_request", "valid string"),
        ({"model": "sentiment", "inputs": ["  "]}, 422, "invalid_input", "inputs[0]: a text must hold"),
        ({"model": "sentiment", "inputs": ["a\x00b"]}, 422, "invalid_input", "inputs[0]: a text must hold"),
        ({"inputs": ["hi"]}, 422, "invalid_request", "model"),
        ({"model": "../etc", "inputs": ["hi"]}, 422, "invalid_request", "model"),
        (
            {"model": "sentiment", "inputs": ["hi"], "params": {"top_k": 0}},
            422,
            "invalid_request",
            "top_k",
        ),
        (
            {"model": "sentiment", "inputs": ["hi"], "params": {"top_k": 10**30}},
            422,
            "invalid_request",
            "top_k",
        ),
        (
            {"model": "sentiment", "inputs": ["hi"], "params": {"nope": 1}},
            422,
            "invalid_request",
            "nope",
        ),
    ],
)
def test_invalid_requests_get_clear_4xx(client: httpx.Client, body, status, error_type, fragment) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type and fragment in error["message"]


def test_non_json_body(client: httpx.Client) -> None:
    response = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_json"
    response = client.post("/predict", content=b"plain words", headers={"content-type": "text/plain"})
    assert response.status_code == 400 and "JSON object" in response.json()["error"]["message"]
    response = client.post("/predict", content=b"\xff\xfe\x00", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not UTF-8 text" in response.json()["error"]["message"]
    deep = b"[" * 100_000 + b"]" * 100_000
    response = client.post("/predict", content=deep, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "nests" in response.json()["error"]["message"]
    # JSON's NaN and Infinity extensions parse, and a sampling parameter says it wants a number.
    for value in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"model": "next-word", "inputs": ["the"], "params": {"temperature": %s, "top_p": %s}}' % (value, value)
        response = client.post("/predict", content=body, headers={"content-type": "application/json"})
        message = response.json()["error"]["message"]
        assert response.status_code == 422 and "temperature: Input should be a finite number" in message, message
        assert "top_p: Input should be a finite number" in message, message


def test_unknown_route_and_method(client: httpx.Client) -> None:
    assert client.get("/nowhere").json()["error"]["type"] == "not_found"
    assert client.get("/predict").status_code == 405
    assert client.head("/predict").status_code == 405  # HEAD only beside a GET


@pytest.mark.parametrize("path", ["/health", "/v2/health/live", "/v2/health/ready", "/v2/models/intent", "/metrics"])
def test_head_answers_as_get_does_without_a_body(client: httpx.Client, path: str) -> None:
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code == 200
    assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]
    assert client.head("/v2/models/nowhere").status_code == 404


def test_inference_outcomes_are_counted_by_model_on_both_protocols(client: httpx.Client) -> None:
    ok = 'rnnserve_inference_requests_total{model="intent",status="ok",version="1"}'
    refused = 'rnnserve_inference_requests_total{model="intent",status="invalid_input",version="1"}'
    inputs = 'rnnserve_inference_inputs_total{model="intent",version="1"}'
    before = client.get("/metrics").text
    assert predict(client, "intent", ["play some rock"] * 3).status_code == 200
    assert predict(client, "intent", ["play jazz"], params={"max_words": 2}).status_code == 422
    v2 = {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["play jazz", "book a table"]}]}
    assert client.post("/v2/models/intent/infer", json=v2).status_code == 200
    after = client.get("/metrics").text
    assert metric(after, ok) - metric(before, ok) == 2
    assert metric(after, refused) - metric(before, refused) == 1
    assert metric(after, inputs) - metric(before, inputs) == 5


def test_metrics_after_traffic(client: httpx.Client) -> None:
    predict(client, "intent", ["play some rock"] * 3)
    predict(client, "intent", [])
    text = client.get("/metrics").text
    assert 'rnnserve_http_requests_total{method="POST",route="/predict",status="200"}' in text
    assert 'rnnserve_http_requests_total{method="POST",route="/predict",status="422"}' in text
    assert 'rnnserve_inference_requests_total{model="intent",status="ok",version="1"}' in text
    assert 'rnnserve_batch_size_count{model="intent",version="1"}' in text
    assert 'rnnserve_batch_padded_token_fraction_bucket{le="0.0",model="intent",version="1"}' in text
    assert 'rnnserve_execution_provider_info{model="intent",provider="CPUExecutionProvider",version="1"} 1.0' in text
    assert "rnnserve_models_loaded 3.0" in text


def test_one_request_asks_several_models_and_gets_one_answer(client: httpx.Client) -> None:
    texts = ["play some jazz please", "what a dreadful film"]
    response = client.post(
        "/predict",
        json={
            "inputs": texts,
            "models": [{"model": "intent", "params": {"top_k": 2}}, {"model": "sentiment"}, {"model": "next-word"}],
        },
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["model"] for r in results] == ["intent", "sentiment", "next-word"]
    for result, params in zip(results, [{"top_k": 2}, {}, {}], strict=True):
        alone = client.post("/predict", json={"model": result["model"], "inputs": texts, "params": params}).json()
        assert result == alone
    assert len(results[0]["outputs"][0]["alternatives"]) == 2

    # The request's params are the default of every model that gives none; a model may be asked twice.
    shared = client.post(
        "/predict",
        json={
            "inputs": texts,
            "params": {"top_k": 3},
            "models": [{"model": "intent"}, {"model": "intent", "params": {"top_k": 1}}],
        },
    ).json()["results"]
    assert [len(r["outputs"][0]["alternatives"]) for r in shared] == [3, 1]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "intent", "models": [{"model": "sentiment"}], "inputs": ["hi"]}, 422, "either `model` or `models`"),
        ({"inputs": ["hi"]}, 422, "either `model` or `models`"),
        ({"models": [{"model": "intent"}], "version": "1", "inputs": ["hi"]}, 422, "per model"),
        ({"models": [{"model": "intent"}, {"model": "absent"}], "inputs": ["hi"]}, 404, "absent"),
        ({"models": [{"model": "sentiment", "params": {"max_words": 2}}], "inputs": ["hi"]}, 422, "next-word"),
        ({"models": [{"model": "intent"}] * 9, "inputs": ["hi"]}, 422, "models"),
    ],
)
def test_bad_multi_model_requests_get_a_clear_4xx(client: httpx.Client, body: dict, status: int, message: str) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
