"""The Python client against real servers."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from rnnserve_client import AsyncClient, ClassifierResult, Client, NextWordResult, RnnServeError
from tests.conftest import ROOT, Server, free_port


def test_client_imports_neither_torch_nor_onnxruntime() -> None:
    code = (
        "import sys, rnnserve_client; print(sorted(m for m in ('torch', 'onnxruntime', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_sync_client(server: Server) -> None:
    with Client(server.url) as client:
        positive, negative = client.classify("sentiment", ["the movie was wonderful", "this film was awful"])
        assert isinstance(positive, ClassifierResult)
        assert (positive.label, negative.label) == ("positive", "negative")
        assert positive.windows == 1
        [long] = client.classify("sentiment", ["the movie was wonderful . " * 40])
        assert long.windows == 4 and not long.truncated
        [intent] = client.classify("intent", ["play some jazz"], top_k=2)
        assert intent.label == "music" and len(intent.alternatives) == 2
        [words] = client.next_words("next-word", ["the company"], top_k=3)
        assert isinstance(words, NextWordResult) and len(words.next) == 3
        with pytest.raises(RnnServeError) as missing:
            client.predict("absent", ["hi"])
        assert missing.value.status == 404 and missing.value.error_type == "model_not_found"


def test_async_client(server: Server) -> None:
    async def run() -> list[str]:
        async with AsyncClient(server.url) as client:
            results = await asyncio.gather(
                *(client.classify("intent", [t]) for t in ["play some rock", "rain in oslo"])
            )
            return [r[0].label for r in results]

    assert asyncio.run(run()) == ["music", "weather"]


def test_retries_honour_retry_after(model_repository: Path) -> None:
    # A queue of 3 held full by a request whose batch waits 10 s to fill: every try (over about 2 s)
    # meets a full queue; the holder is answered when its delay ends.
    server = Server(
        model_repository,
        RNNSERVE_MAX_QUEUE_SIZE="3",
        RNNSERVE_MAX_BATCH_DELAY_MS="10000",
        RNNSERVE_REQUEST_TIMEOUT_S="30",
    )
    held: list[int] = []
    holder = threading.Thread(
        target=lambda: held.append(
            httpx.post(
                f"{server.url}/predict", json={"model": "sentiment", "inputs": ["good"] * 3}, timeout=60
            ).status_code
        )
    )
    try:
        server.wait_ready()
        holder.start()
        for _ in range(100):
            if 'rnnserve_queue_depth{model="sentiment",version="1"} 3.0' in httpx.get(f"{server.url}/metrics").text:
                break
            time.sleep(0.05)
        started = time.perf_counter()
        with Client(server.url, retries=2) as client, pytest.raises(RnnServeError) as refused:
            client.predict("sentiment", ["good"])
        elapsed = time.perf_counter() - started
        assert refused.value.status == 503 and refused.value.error_type == "overloaded"
        assert elapsed >= 2.0  # two waits of Retry-After: 1
        metrics = httpx.get(f"{server.url}/metrics").text
        count = re.search(r'rnnserve_http_requests_total\{method="POST",route="/predict",status="503"\} (\S+)', metrics)
        assert count and float(count.group(1)) == 3  # the first try and two retries
        holder.join(timeout=30)
        assert held == [200]  # the request holding the queue is answered, not lost
    finally:
        server.stop()


def test_unreachable_service() -> None:
    with (
        Client(f"http://127.0.0.1:{free_port()}", retries=1, backoff_s=0.01) as client,
        pytest.raises(RnnServeError) as error,
    ):
        client.predict("sentiment", ["hi"])
    assert error.value.status is None and error.value.error_type == "unreachable"


def test_client_asks_several_models_and_completes(server: Server) -> None:
    with Client(server.url) as client:
        answers = client.ask(["play some jazz"], {"intent": {"top_k": 2}, "sentiment": {}})
        assert list(answers) == ["intent", "sentiment"]
        assert isinstance(answers["intent"].outputs[0], ClassifierResult)
        [beams] = client.complete("next-word", ["the company"], max_words=3, strategy="beam", completions=2)
        assert 1 <= len(beams.completions) <= 2 and all(c.logprob < 0 for c in beams.completions)

    async def run() -> list:
        async with AsyncClient(server.url) as client:
            return await client.complete("next-word", ["the company"], max_words=3, strategy="sample", seed=1)

    first, second = asyncio.run(run()), asyncio.run(run())
    assert first[0].completions == second[0].completions
