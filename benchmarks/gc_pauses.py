"""Garbage-collector pauses under load, with and without the startup heap frozen.

The service freezes its startup heap (`gc.freeze()` in the lifespan, once the models are loaded).
This script serves the default models from uvicorn in this process, records every collection
through `gc.callbacks`, and drives single-text `/predict` requests with wrk, first after undoing
the freeze (`gc.unfreeze()`, the behaviour before) and then with it, in one run.

    python benchmarks/gc_pauses.py [--connections 128] [--duration 6] [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import threading
import time
from pathlib import Path

import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_service import body, free_port, wait_ready, wrk  # noqa: E402
from benchmarks.report import publish  # noqa: E402
from service.app import create_app  # noqa: E402
from service.settings import Settings  # noqa: E402


class Pauses:
    """Durations of collections by generation, from `gc.callbacks`."""

    def __init__(self) -> None:
        self.by_generation: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0
        gc.callbacks.append(self._record)

    def _record(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.by_generation[info["generation"]].append(time.perf_counter() - self._started)

    def reset(self) -> None:
        for durations in self.by_generation.values():
            durations.clear()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    parser.add_argument("--write", type=Path, help="append the report to this Markdown file")
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # as `python -m service` runs
    app = create_app(Settings(port=port, log_level="warning", model_repository=ROOT / "models"))
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_ready(url, thread.is_alive)

    pauses = Pauses()
    frozen = gc.get_freeze_count()
    rows = []
    for label in ("startup heap not frozen", "startup heap frozen (the service's default)"):
        if label.startswith("startup heap not"):
            gc.unfreeze()
        else:
            gc.collect()
            gc.freeze()
        wrk(f"{url}/predict", body(1), args.connections, 2)  # warm-up
        pauses.reset()
        result = wrk(f"{url}/predict", body(1), args.connections, args.duration)
        stats = {g: (len(d), 1e3 * max(d, default=0.0), 1e3 * sum(d)) for g, d in pauses.by_generation.items()}
        rows.append((label, result, stats))
    server.should_exit = True
    thread.join(timeout=30)

    lines = [
        f"### GC-pause run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. Command: "
        f"`python benchmarks/gc_pauses.py --connections {args.connections} --duration {args.duration}`. "
        f"Single-text `/predict` on the default models, wrk with {args.connections} connections, "
        f"{args.duration} s each; the service froze {frozen:,} objects at startup.",
        "",
        "| heap | requests/s | p50 ms | p99 ms | gen-2 collections | longest gen-2 ms | ms in gen 0 / 1 / 2 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, result, stats in rows:
        lines.append(
            f"| {label} | {result['rps']:,.0f} | {result['p50_ms']:.1f} | {result['p99_ms']:.1f} | "
            f"{stats[2][0]} | {stats[2][1]:.1f} | {stats[0][2]:.0f} / {stats[1][2]:.0f} / {stats[2][2]:.0f} |"
        )
    publish("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
