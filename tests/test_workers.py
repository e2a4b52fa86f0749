"""`RNNSERVE_WORKERS`: several server processes on one port, which share metrics, reloads and the
continuation key, all drain on SIGTERM, are replaced one by one on SIGHUP and restarted when one dies."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import tritonclient.grpc as triton_grpc

from service.process_group import MAX_AUTO_WORKERS, worker_count
from service.settings import Settings, available_cores
from tests.conftest import Server


def test_worker_count_and_thread_split() -> None:
    assert worker_count(Settings(workers=3)) == 3
    auto = worker_count(Settings(workers=0, execution_provider="cpu"))
    assert auto == min(available_cores(), MAX_AUTO_WORKERS) >= 1
    # The cores are shared out between every session that may run at once.
    cores = available_cores()
    assert Settings(workers=2, instances=1).session_threads() == max(1, cores // 2)
    assert Settings(workers=2, instances=2).session_threads() == max(1, cores // 4)
    # One session on the whole machine: ONNX Runtime decides; within a CPU quota: the quota.
    alone = 0 if cores == os.cpu_count() else cores
    assert Settings(workers=1, instances=1).session_threads() == alone
    assert Settings(workers=4, intra_op_threads=3).session_threads() == 3  # the operator's number wins


def test_one_session_in_a_cpu_quota_takes_the_quota(monkeypatch) -> None:
    monkeypatch.setattr("service.settings.available_cores", lambda: 2)
    monkeypatch.setattr("os.cpu_count", lambda: 64)  # a 2-CPU container on a 64-core host
    assert Settings(workers=1, instances=1).session_threads() == 2
    assert Settings(workers=2, instances=1).session_threads() == 1
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert Settings(workers=1, instances=1).session_threads() == 0


def predictions_by_process(server: Server) -> Counter[int]:
    """`/predict` access lines per process that wrote them (each line names its process)."""
    time.sleep(0.3)  # access lines are written every 50 ms
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    return Counter(
        line["process"] for line in lines if line.get("logger") == "service.access" and line["path"] == "/predict"
    )


def served_by(server: Server) -> set[int]:
    return set(predictions_by_process(server))


def test_workers_share_metrics_reloads_and_keys(make_server, model_repository: Path, tmp_path: Path) -> None:
    repository = tmp_path / "models"
    for name in ("sentiment", "next-word"):
        shutil.copytree(model_repository / name, repository / name)
    server = make_server(repository, RNNSERVE_WORKERS="2")

    # A new connection each time, each hashed to one worker's socket: send until both have answered.
    sent = 0
    while len(served_by(server)) < 2 and sent < 2000:
        for _ in range(50):
            body = {"model": "sentiment", "inputs": ["good"]}
            assert httpx.post(f"{server.url}/predict", json=body).status_code == 200
        sent += 50
    assert len(served_by(server)) == 2
    # One access line per request, the service's own (uvicorn's would double the cost).
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    assert sum(line.get("logger") == "service.access" and line["path"] == "/predict" for line in lines) == sent
    assert not any(line.get("logger") == "uvicorn.access" for line in lines)
    metrics = httpx.get(f"{server.url}/metrics").text  # whichever worker answers, it counts all
    assert f'rnnserve_http_requests_total{{method="POST",route="/predict",status="200"}} {sent}.0' in metrics
    assert f'rnnserve_inference_requests_total{{model="sentiment",status="ok",version="1"}} {sent}.0' in metrics
    assert "rnnserve_models_loaded 2.0" in metrics

    # A continuation token from one worker holds on the other.
    state = None
    for piece in ["the company ", "said ", "it ", "expects ", "to ", "report "]:
        answer = httpx.post(f"{server.url}/suggest", json={"model": "next-word", "text": piece, "state": state})
        assert answer.status_code == 200, answer.text
        state = answer.json()["state"]

    # /reload on one worker reaches both before it answers.
    shutil.copytree(repository / "sentiment" / "1", repository / "sentiment" / "2")
    reload = httpx.post(f"{server.url}/reload", timeout=120).json()
    assert reload["loaded"] == ["sentiment/2"] and reload["processes"] == {"reloaded": 2, "running": 2}
    for _ in range(20):
        body = {"model": "sentiment", "version": "2", "inputs": ["good"]}
        assert httpx.post(f"{server.url}/predict", json=body).status_code == 200

    # gRPC: every worker listens on the port.
    tensor = triton_grpc.InferInput("text", [1], "BYTES")
    tensor.set_data_from_numpy(np.array(["fine"], dtype=object))
    for _ in range(6):
        result = triton_grpc.InferenceServerClient(server.grpc_target).infer("sentiment", [tensor], model_version="2")
        assert result.as_numpy("label").shape == (1,)


def test_connections_opened_together_spread_over_the_workers(make_server, model_repository: Path) -> None:
    # One SO_REUSEPORT socket per worker (the default on Linux): the kernel hashes each new
    # connection to one of them, about half each of 64. From one shared socket, a burst of
    # connections under load could all go to whichever worker woke first (64/0 and 58/6 seen here
    # under wrk; BENCHMARKS.md, workers).
    server = make_server(model_repository, RNNSERVE_WORKERS="2")

    async def one_request_per_connection() -> list[int]:
        async def one() -> int:
            async with httpx.AsyncClient(timeout=30) as client:  # a connection each
                response = await client.post(f"{server.url}/predict", json={"model": "sentiment", "inputs": ["ok"]})
                return response.status_code

        return await asyncio.gather(*(one() for _ in range(64)))

    assert asyncio.run(one_request_per_connection()) == [200] * 64
    per_process = predictions_by_process(server)
    assert len(per_process) == 2 and min(per_process.values()) >= 8, per_process  # fails by chance ~1e-10
    # A listening socket per worker (one shared socket shows as one); the parent's never listens.
    assert listening_sockets(server.port) == 2


def listening_sockets(port: int) -> int:
    """TCP sockets in the LISTEN state (0A) on `port`, from the kernel's table."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A" for row in rows)


def test_sigterm_drains_every_worker(make_server, model_repository: Path) -> None:
    # Each request waits up to 2 s for its batch to fill: in flight when SIGTERM arrives.
    server = make_server(model_repository, RNNSERVE_WORKERS="2", RNNSERVE_MAX_BATCH_DELAY_MS="2000")

    async def requests_across_a_shutdown() -> list[int]:
        async def one() -> int:
            async with httpx.AsyncClient(timeout=30) as client:  # a connection each
                response = await client.post(f"{server.url}/predict", json={"model": "sentiment", "inputs": ["ok"]})
                return response.status_code

        pending = [asyncio.create_task(one()) for _ in range(8)]
        await asyncio.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        return await asyncio.gather(*pending)

    assert asyncio.run(requests_across_a_shutdown()) == [200] * 8
    assert server.process.wait(timeout=30) == 0
    log = server.log.read_text()
    assert log.count("Application shutdown complete") == 2  # both workers drained and stopped


def test_sighup_replaces_workers_and_a_dead_one_is_restarted(make_server, model_repository: Path) -> None:
    server = make_server(model_repository, RNNSERVE_WORKERS="2")

    def started() -> list[int]:
        return [int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", server.log.read_text())]

    def serve_until(done: Callable[[], bool]) -> None:
        """Requests keep being answered while workers come and go. A connection that a stopping
        worker had accepted but not yet read is closed unanswered (uvicorn's graceful shutdown
        closes idle connections; a SIGKILLed worker loses what it accepted): the caller sees a
        disconnect, never an error status, and a retry is answered."""
        deadline = time.monotonic() + 60
        answered = 0
        while not done() or not answered:
            assert time.monotonic() < deadline, server.log.read_text()[-2000:]
            body = {"model": "sentiment", "inputs": ["good"]}
            try:
                response = httpx.post(f"{server.url}/predict", json=body, timeout=30)
            except (httpx.RemoteProtocolError, httpx.ReadError):  # closed, or reset by a killed worker
                continue
            assert response.status_code == 200, response.text
            answered += 1
            time.sleep(0.05)

    def count(line: str) -> int:
        return server.log.read_text().count(line)

    first = started()
    assert len(first) == 2
    server.process.send_signal(signal.SIGHUP)  # one at a time, each replacement ready first
    serve_until(lambda: count("Application startup complete") >= 4 and count("Finished server process") >= 2)
    replacements = started()[2:]
    assert len(replacements) == 2 and not set(replacements) & set(first)
    os.kill(replacements[0], signal.SIGKILL)
    serve_until(lambda: count("Application startup complete") >= 5)
    assert len(started()) == 5
    assert httpx.post(f"{server.url}/reload", timeout=120).json()["processes"] == {"reloaded": 2, "running": 2}


def test_workers_on_a_taken_port_fail_at_once_with_the_address(model_repository: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = Server(model_repository, port=port, RNNSERVE_WORKERS="2", RNNSERVE_GRPC_PORT="0")
        returncode = server.process.wait(timeout=60)
    assert returncode == 3  # uvicorn's start-up failure, which its supervisor does not retry
    assert f"cannot listen on 127.0.0.1:{port}" in server.log.read_text()
