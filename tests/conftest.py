"""Shared fixtures: tiny real bundles trained by the CLI, and a real uvicorn server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import fixtures

ROOT = Path(__file__).resolve().parent.parent

TINY = [
    "--embedding-dim",
    "24",
    "--hidden-size",
    "24",
    "--epochs",
    "8",
    "--batch-size",
    "16",
    "--lr",
    "0.01",
    # One model per bundle (the intent default trains three and a bag); test_training covers ensembles.
    "--ensemble",
    "1",
    "--bag-members",
    "0",
]
# Next-word trains with SGD by default (the recipe's learning rate), where TINY's 0.01 is for AdamW.
TINY_LM = [*TINY, "--lr", "20"]


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "training", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(f"training CLI failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    fixtures.write_sst2(root / "sst2" / "train.tsv")
    fixtures.write_snips(root / "snips")
    fixtures.write_text(root / "text")
    fixtures.write_csv(root / "intent.csv")
    return root


@pytest.fixture(scope="session")
def model_repository(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """Three tiny bundles, one per task, trained and exported by `python -m training train`."""
    repo = tmp_path_factory.mktemp("models")
    run_cli(
        "train",
        "--task",
        "sentiment",
        "--format",
        "sst2",
        "--data",
        str(data_dir / "sst2"),
        "--out",
        str(repo / "sentiment" / "1"),
        *TINY,
    )
    run_cli(
        "train",
        "--task",
        "intent",
        "--format",
        "snips",
        "--arch",
        "gru",
        "--data",
        str(data_dir / "snips"),
        "--out",
        str(repo / "intent" / "1"),
        *TINY,
    )
    run_cli(
        "train",
        "--task",
        "next-word",
        "--format",
        "text",
        "--data",
        str(data_dir / "text" / "train.txt"),
        "--valid-data",
        str(data_dir / "text" / "valid.txt"),
        "--out",
        str(repo / "next-word" / "1"),
        "--layers",
        "1",
        *TINY_LM,
    )
    return repo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, repository: Path, command: list[str] | None = None, port: int | None = None, **env: str) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_port = int(env.get("RNNSERVE_GRPC_PORT") or free_port())
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        environment = {
            **os.environ,
            "RNNSERVE_MODEL_REPOSITORY": str(repository),
            "RNNSERVE_PORT": str(self.port),
            "RNNSERVE_GRPC_PORT": str(self.grpc_port),
            "RNNSERVE_HOST": "127.0.0.1",
            "RNNSERVE_WORKERS": "1",  # one process unless a test asks (auto would start one per core)
            **env,
        }
        self.workers = int(environment["RNNSERVE_WORKERS"] or 1)
        self.log = repository.parent / f"server-{self.port}.log"
        self.process = subprocess.Popen(
            command or [sys.executable, "-m", "service"],
            cwd=ROOT,
            env=environment,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until /health answers and, with several workers, every worker has started: the first
        to start answers /health while the others may still be loading their models."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log.read_text()[-3000:]}")
            try:
                answered = httpx.get(f"{self.url}/health", timeout=1.0).status_code in (200, 503)
            except httpx.TransportError:
                answered = False
            if answered and (self.workers <= 1 or self.log.read_text().count("startup complete") >= self.workers):
                return
            time.sleep(0.1)
        raise AssertionError(f"server not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="session")
def server(model_repository: Path) -> Iterator[Server]:
    running = Server(model_repository)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@pytest.fixture()
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        yield http


def metric(text: str, sample: str) -> float:
    """One sample's value from a Prometheus exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def start(repository: Path, **env: str) -> Server:
    server = Server(repository, **env)
    server.wait_ready()
    return server


@pytest.fixture()
def make_server() -> Iterator:
    """Start servers on other repositories or settings; all are stopped after the test."""
    servers: list[Server] = []

    def factory(repository: Path, **env: str) -> Server:
        servers.append(start(repository, **env))
        return servers[-1]

    yield factory
    for server in servers:
        server.stop()
