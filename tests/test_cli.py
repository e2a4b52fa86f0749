"""The `rnnserve` console script: one command for serving, training, evaluating and load tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ROOT, Server, free_port

RNNSERVE = str(Path(sys.executable).parent / "rnnserve")


def rnnserve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RNNSERVE, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_lists_its_commands_and_refuses_unknown_ones() -> None:
    listing = rnnserve("--help")
    assert listing.returncode == 0
    for command in ("serve", "train", "evaluate", "retokenize", "bench"):
        assert f"  {command}" in listing.stdout
    unknown = rnnserve("fly")
    assert unknown.returncode == 2 and "unknown command 'fly'" in unknown.stderr


def test_serve_takes_flags_for_the_common_settings(model_repository: Path) -> None:
    # The flags win over the environment (here pointing at a port and folder that would fail).
    port = free_port()
    server = Server(
        model_repository,
        command=[RNNSERVE, "serve", "--models", str(model_repository), "--port", str(port), "--api-keys", "k1"],
        port=port,
        RNNSERVE_PORT="1",
        RNNSERVE_MODEL_REPOSITORY="/nonexistent",
    )
    try:
        server.wait_ready()
        body = {"model": "sentiment", "inputs": ["a fine film"]}
        assert httpx.post(f"{server.url}/predict", json=body).status_code == 401
        answer = httpx.post(f"{server.url}/predict", json=body, headers={"X-API-Key": "k1"})
        assert answer.status_code == 200 and answer.json()["model"] == "sentiment"
    finally:
        server.stop()


def test_evaluate_is_the_training_command(model_repository: Path, data_dir: Path) -> None:
    result = rnnserve(
        "evaluate", "--model", str(model_repository / "sentiment" / "1"), "--format", "sst2", "--data",
        str(data_dir / "sst2" / "train.tsv"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert 0.0 <= json.loads(result.stdout)["accuracy"] <= 1.0
    assert "usage: rnnserve train" in rnnserve("train", "--help").stdout


def test_bench_reports_throughput_and_latency(server: Server) -> None:
    for protocol in ("predict", "v2"):
        result = rnnserve(
            "bench", "--url", server.url, "--model", "intent", "--protocol", protocol, "--texts", "4",
            "--connections", "4", "--duration", "1",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        figures = json.loads(result.stdout)
        assert figures["statuses"] == {"200": figures["requests"]} and figures["requests"] > 0
        assert abs(figures["texts_per_s"] - 4 * figures["requests_per_s"]) < 1
        assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    wrong = rnnserve("bench", "--url", server.url, "--model", "absent", "--duration", "1")
    assert wrong.returncode != 0 and "404" in wrong.stderr
