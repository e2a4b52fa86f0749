"""Versions side by side and reload without restart, with requests in flight."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import httpx

from rnnserve_bundle.config import BundleConfig
from tests.conftest import Server


def add_version(source: Path, repo: Path, version: str) -> Path:
    target = repo / "sentiment" / version
    shutil.copytree(source, target)
    config = BundleConfig.load(target)
    config.version = version
    config.save(target)
    return target


def ask(server: Server, **extra) -> httpx.Response:
    body = {"model": "sentiment", "inputs": ["the movie was great"], **extra}
    return httpx.post(f"{server.url}/predict", json=body, timeout=30)


def test_versions_and_reload(model_repository: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    source = model_repository / "sentiment" / "1"
    add_version(source, repo, "1")
    server = Server(repo)
    try:
        server.wait_ready()
        assert ask(server).json()["version"] == "1"

        add_version(source, repo, "2")
        changes = httpx.post(f"{server.url}/reload", timeout=60).json()
        assert changes["loaded"] == ["sentiment/2"]
        assert ask(server).json()["version"] == "2"  # the newest answers by default
        assert ask(server, version="1").json()["version"] == "1"

        broken = add_version(source, repo, "3")
        (broken / "model.onnx").write_bytes(b"corrupt")
        changes = httpx.post(f"{server.url}/reload", timeout=60).json()
        assert changes["failed"] == ["sentiment/3"] and "sentiment/3" in changes["failures"]
        assert ask(server).json()["version"] == "2"  # the broken version never serves
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
        assert httpx.get(f"{server.url}/health").json()["status"] == "degraded"

        shutil.rmtree(repo / "sentiment" / "2")
        changes = httpx.post(f"{server.url}/reload", timeout=60).json()
        assert changes["unloaded"] == ["sentiment/2"]
        assert ask(server).json()["version"] == "1"
        assert ask(server, version="2").status_code == 404
        assert httpx.post(f"{server.url}/reload", timeout=60).json()["loaded"] == []  # nothing changed
    finally:
        server.stop()


def test_replacing_a_bundle_loses_no_request_in_flight(model_repository: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    bundle = add_version(model_repository / "sentiment" / "1", repo, "1")
    server = Server(repo, RNNSERVE_MAX_BATCH_DELAY_MS="5")
    try:
        server.wait_ready()

        async def traffic_during_reloads() -> list[int]:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                body = {"model": "sentiment", "inputs": ["a wonderful film"] * 8}
                tensor = {"name": "text", "shape": [8], "datatype": "BYTES", "data": ["a wonderful film"] * 8}
                # Both protocols; each request leases the copy it found until it is answered.
                requests = [
                    asyncio.create_task(
                        http.post("/predict", json=body)
                        if i % 2
                        else http.post("/v2/models/sentiment/infer", json={"inputs": [tensor]})
                    )
                    for i in range(150)
                ]
                for _ in range(3):
                    os.utime(bundle / "model.onnx")  # the same bundle, seen as replaced
                    reload = await http.post("/reload")
                    assert reload.json()["loaded"] == ["sentiment/1"]
                return [r.status_code for r in await asyncio.gather(*requests)]

        assert asyncio.run(traffic_during_reloads()) == [200] * 150
    finally:
        server.stop()


def test_watcher_picks_up_new_versions(model_repository: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    source = model_repository / "sentiment" / "1"
    add_version(source, repo, "1")
    server = Server(repo, RNNSERVE_WATCH_INTERVAL_S="0.2")
    try:
        server.wait_ready()
        add_version(source, repo, "7")
        for _ in range(100):
            if ask(server).json()["version"] == "7":
                break
            asyncio.run(asyncio.sleep(0.1))
        assert ask(server).json()["version"] == "7"
    finally:
        server.stop()
