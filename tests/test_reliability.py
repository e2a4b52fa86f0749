"""Limits, faults, authentication, request ids and graceful shutdown, against real servers."""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
import signal
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnx
from onnx import TensorProto, helper

from rnnserve_bundle.config import BundleConfig
from tests.conftest import Server, metric, start


def post(server: Server, body: dict, **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url}/predict", json=body, headers=headers, timeout=30)


SENTIMENT = {"model": "sentiment", "inputs": ["the movie was great"]}


def test_api_keys(make_server, model_repository: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# team keys\nfrom-file\n")
    server = make_server(model_repository, RNNSERVE_API_KEYS="k1, k2", RNNSERVE_API_KEYS_FILE=str(key_file))
    missing = post(server, SENTIMENT)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert post(server, SENTIMENT, **{"x-api-key": "wrong"}).json()["error"]["type"] == "unauthorized"
    assert post(server, SENTIMENT, **{"x-api-key": "k2"}).status_code == 200
    assert post(server, SENTIMENT, authorization="Bearer from-file").status_code == 200
    infer = httpx.post(f"{server.url}/v2/models/sentiment/infer", json={"inputs": []})
    assert infer.status_code == 401
    # Probes and metrics stay open unless the operator asks otherwise.
    assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
    assert httpx.get(f"{server.url}/metrics").status_code == 200
    # Model metadata needs a key, and its HEAD twin the same one.
    assert httpx.head(f"{server.url}/v2/models/sentiment").status_code == 401
    assert httpx.head(f"{server.url}/v2/models/sentiment", headers={"x-api-key": "k1"}).status_code == 200


def test_metrics_and_health_can_require_keys(make_server, model_repository: Path) -> None:
    server = make_server(
        model_repository,
        RNNSERVE_API_KEYS="k",
        RNNSERVE_AUTH_METRICS="true",
        RNNSERVE_AUTH_HEALTH="false",
    )
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    assert httpx.head(f"{server.url}/metrics").status_code == 401
    assert httpx.get(f"{server.url}/metrics", headers={"x-api-key": "k"}).status_code == 200


def test_limits(make_server, model_repository: Path) -> None:
    server = make_server(
        model_repository,
        RNNSERVE_MAX_BODY_BYTES="4096",
        RNNSERVE_MAX_TOKENS_PER_REQUEST="12",
        RNNSERVE_MAX_INPUTS_PER_REQUEST="4",
        RNNSERVE_MAX_CHARS_PER_INPUT="500",
    )
    big = post(server, {"model": "sentiment", "inputs": ["word " * 1000]})
    assert big.status_code == 413 and big.json()["error"]["type"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies to what arrives
        yield b'{"model": "sentiment", "inputs": ["'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"]}'

    chunked = httpx.post(f"{server.url}/predict", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    assert 'status="413"' in httpx.get(f"{server.url}/metrics").text  # refused bodies are counted too
    many = post(server, {"model": "sentiment", "inputs": ["good"] * 5})
    assert many.status_code == 422 and "limit of 4" in many.json()["error"]["message"]
    tokens = post(server, {"model": "sentiment", "inputs": ["one two three four five six seven"] * 2})
    assert tokens.status_code == 422 and "tokens exceed the limit of 12" in tokens.json()["error"]["message"]
    typed = httpx.post(f"{server.url}/suggest", json={"model": "next-word", "text": "the company said it " * 4})
    assert typed.status_code == 422 and "text: 17 tokens exceed the limit of 12" in typed.json()["error"]["message"]
    chars = post(server, {"model": "sentiment", "inputs": ["x" * 501]})
    assert chars.status_code == 422 and "characters" in chars.json()["error"]["message"]
    assert post(server, SENTIMENT).status_code == 200


def test_compressed_bodies(make_server, model_repository: Path) -> None:
    """gzip and deflate bodies are inflated; the limit holds for what they inflate to as well as
    for the bytes sent; other codings and broken streams get a 4xx that says so."""
    server = make_server(model_repository, RNNSERVE_MAX_BODY_BYTES="4096")
    body = json.dumps(SENTIMENT).encode()
    plain = post(server, SENTIMENT).json()

    def send(data: bytes, coding: str, path: str = "/predict") -> httpx.Response:
        headers = {"content-type": "application/json", "content-encoding": coding}
        return httpx.post(f"{server.url}{path}", content=data, headers=headers, timeout=30)

    assert send(gzip.compress(body), "gzip").json() == plain
    assert send(zlib.compress(body), "deflate").json() == plain
    assert send(body, "identity").json() == plain
    bomb = gzip.compress(b" " * 1_000_000)  # 1 MB of spaces in about 1 KB
    assert len(bomb) < 4096
    refused = send(bomb, "gzip")
    assert refused.status_code == 413 and "once decompressed" in refused.json()["error"]["message"]
    v2 = send(bomb, "gzip", "/v2/models/sentiment/infer")
    assert v2.status_code == 413 and "once decompressed" in v2.json()["error"]
    for data, coding, status, fragment in [
        (body, "gzip", 400, "not valid gzip data"),
        (gzip.compress(body)[:-9], "gzip", 400, "truncated"),
        (gzip.compress(body) + b"more", "gzip", 400, "after its end"),
        (body, "br", 415, "'br' is not supported"),
        (gzip.compress(body), "gzip, gzip", 415, "not supported"),
    ]:
        answer = send(data, coding)
        assert answer.status_code == status and fragment in answer.json()["error"]["message"], (coding, answer.text)
    # No body, nothing to decode: a GET, or an empty POST, is answered as without the header.
    assert httpx.get(f"{server.url}/health", headers={"content-encoding": "br"}).status_code == 200
    empty, plain_empty = send(b"", "gzip"), send(b"", "identity")
    assert (empty.status_code, empty.json()) == (plain_empty.status_code, plain_empty.json())
    assert post(server, SENTIMENT).status_code == 200


def test_full_queue_and_deadline(make_server, model_repository: Path) -> None:
    queue = make_server(model_repository, RNNSERVE_MAX_QUEUE_SIZE="3", RNNSERVE_MAX_BATCH_DELAY_MS="5000")

    async def overload() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(base_url=queue.url, timeout=30) as client:
            holder = asyncio.create_task(client.post("/predict", json={"model": "sentiment", "inputs": ["good"] * 2}))
            await asyncio.sleep(0.5)  # queued, waiting up to 5 s for its batch to fill
            refused = await client.post("/predict", json={"model": "sentiment", "inputs": ["good"] * 2})
            return refused, await holder

    refused, held = asyncio.run(overload())
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["type"] == "overloaded"
    assert held.status_code == 200
    slow = make_server(model_repository, RNNSERVE_REQUEST_TIMEOUT_S="0.0001")
    late = post(slow, SENTIMENT)
    assert late.status_code == 504 and late.json()["error"]["type"] == "deadline_exceeded"
    assert httpx.get(f"{slow.url}/health").status_code == 200


def test_request_id_and_logs_without_texts(make_server, model_repository: Path) -> None:
    server = make_server(model_repository)
    secret = "my private message about a wonderful film"
    echoed = post(server, {"model": "sentiment", "inputs": [secret]}, **{"x-request-id": "req-42"})
    assert echoed.headers["x-request-id"] == "req-42"
    generated = post(server, SENTIMENT).headers["x-request-id"]
    assert len(generated) == 32
    bad = post(server, SENTIMENT, **{"x-request-id": "no spaces allowed"}).headers["x-request-id"]
    assert bad != "no spaces allowed"
    time.sleep(0.3)
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "service.access"]
    assert any(line["request_id"] == "req-42" and line["status"] == 200 for line in access)
    assert secret not in server.log.read_text()


def _copy_repository(source: Path, target: Path, names: list[str]) -> Path:
    for name in names:
        shutil.copytree(source / name, target / name)
    return target


def test_broken_bundle_is_reported_and_others_serve(make_server, model_repository: Path, tmp_path: Path) -> None:
    repo = _copy_repository(model_repository, tmp_path / "repo", ["sentiment", "intent"])
    (repo / "intent" / "1" / "model.onnx").write_bytes(b"not an onnx model")
    server = make_server(repo)
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "degraded"
    assert "intent/1" in health["failed"] and health["failed"]["intent/1"]
    assert httpx.get(f"{server.url}/v2/health/ready").status_code == 503
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
    assert post(server, SENTIMENT).status_code == 200
    assert post(server, {"model": "intent", "inputs": ["play jazz"]}).status_code == 404


def _faulty_bundle(model_repository: Path, target: Path) -> str:
    """A classifier whose embedding table is smaller than its vocabulary: ONNX Runtime fails on
    any batch holding a word with a high id. Returns such a word."""
    bundle = target / "faulty" / "1"
    bundle.mkdir(parents=True)
    shutil.copy(model_repository / "sentiment" / "1" / "tokenizer.json", bundle / "tokenizer.json")
    config = BundleConfig.load(model_repository / "sentiment" / "1")
    config.name = "faulty"
    config.save(bundle)
    rows = 8
    table = helper.make_tensor("table", TensorProto.FLOAT, [rows, 2], np.random.rand(rows * 2).tolist())
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "input_ids"], ["embedded"]),
            helper.make_node("ReduceMean", ["embedded", "axes"], ["logits"], keepdims=0),
        ],
        "faulty",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        [table, helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    onnx.save(model, bundle / "model.onnx")
    vocab = json.loads((bundle / "tokenizer.json").read_text())["model"]["vocab"]
    return next(word for word, index in vocab.items() if index >= rows and word.isalpha())


def test_failing_batch_fails_only_its_requests(make_server, model_repository: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    word = _faulty_bundle(model_repository, repo)
    server = make_server(repo, RNNSERVE_MAX_BATCH_DELAY_MS="0")
    failed = post(server, {"model": "faulty", "inputs": [word]})
    assert failed.status_code == 500 and failed.json()["error"]["type"] == "inference_failed"
    assert "Traceback" not in failed.text
    for _ in range(3):  # the scheduler keeps serving
        assert post(server, {"model": "faulty", "inputs": ["<unk>"]}).status_code == 200


def test_sigterm_finishes_accepted_requests(model_repository: Path) -> None:
    # Batches wait up to 10 s to fill 4,096 inputs, so the 64 requests (2,048 inputs) stay queued
    # until the signal, which is sent once the queue-depth gauge shows every one of them: they are
    # all accepted whatever the machine's speed (a fixed sleep let a slow client's last requests
    # arrive during the shutdown, where uvicorn closes connections it has read nothing from).
    server = start(
        model_repository,
        RNNSERVE_MAX_BATCH_DELAY_MS="10000",
        RNNSERVE_MAX_BATCH_SIZE="4096",
        RNNSERVE_REQUEST_TIMEOUT_S="60",  # the deadline (10 s by default) must outlast the wait
    )
    texts = ["the movie was great , honestly", "this film was dull"] * 16
    results: list[object] = []

    async def load() -> None:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as http:

            async def one() -> object:
                try:
                    return (await http.post("/predict", json={"model": "sentiment", "inputs": texts})).status_code
                except httpx.TransportError as error:
                    return f"{type(error).__name__}: {error}"

            results.extend(await asyncio.gather(*(one() for _ in range(64))))

    sender = threading.Thread(target=lambda: asyncio.run(load()))
    sender.start()
    deadline, queued = time.monotonic() + 8, 'rnnserve_queue_depth{model="sentiment",version="1"}'
    while metric(httpx.get(f"{server.url}/metrics", timeout=10).text, queued) < 64 * len(texts):
        assert time.monotonic() < deadline and sender.is_alive(), (results, "the requests never all queued")
        time.sleep(0.05)
    assert not results  # nothing answered yet: the signal arrives with every request in hand
    server.process.send_signal(signal.SIGTERM)
    sender.join(timeout=120)
    # uvicorn drains, then re-raises SIGTERM so the exit status says how it ended.
    assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
    assert "Waiting for application shutdown" in server.log.read_text()
    # Every accepted request is answered: no 5xx, no connection cut, none lost.
    assert results == [200] * 64, results


def test_cors_is_off_by_default_and_configurable(make_server, model_repository: Path, server: Server) -> None:
    preflight = {"origin": "https://app.example", "access-control-request-method": "POST"}
    default = httpx.options(f"{server.url}/predict", headers=preflight)
    assert "access-control-allow-origin" not in default.headers
    configured = make_server(model_repository, RNNSERVE_CORS_ORIGINS="https://app.example")
    allowed = httpx.options(f"{configured.url}/predict", headers=preflight)
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    other = httpx.options(f"{configured.url}/predict", headers={**preflight, "origin": "https://evil.example"})
    assert other.headers.get("access-control-allow-origin") != "https://evil.example"
    # The body middlewares' answers carry the headers too, so that the page can read why.
    origin = {"origin": "https://app.example"}
    for headers in ({**origin, "content-encoding": "br"}, {**origin, "content-encoding": "gzip"}):
        refused = httpx.post(f"{configured.url}/predict", content=b"{}", headers=headers)
        assert refused.status_code in (400, 415)
        assert refused.headers["access-control-allow-origin"] == "https://app.example", refused.headers
    big = httpx.post(f"{configured.url}/predict", content=b"x" * 2_000_000, headers=origin)
    assert big.status_code == 413 and big.headers["access-control-allow-origin"] == "https://app.example"
