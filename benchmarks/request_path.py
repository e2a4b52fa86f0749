"""Where a single-text request's CPU goes, measured in-process (no HTTP server, no load generator).

The service's ASGI app is called directly by 64 concurrent callers, so the figures leave out
uvicorn's HTTP parsing and wrk, which the wrk benchmark (`bench_service.py`) shares between both
routes. In one run, on the default sentiment model, CPU microseconds per request:

1. `POST /echo`: FastAPI parsing, validation and serialisation, no model (all on the event loop);
2. `POST /predict`: the same plus the model path, on the event loop and on ONNX Runtime's threads;
3. the model path alone: `ServedModel.predict` called by 64 concurrent callers, no FastAPI;
4. its parts: the tokenizer for one text, and ONNX Runtime per sequence at batch 64 (the default
   maximum batch, which 32-text requests fill);
5. `/echo` and `/predict` with 32 texts per request.

    python benchmarks/request_path.py [--requests 6400] [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_service import TEXTS, body, newest_bundle  # noqa: E402
from benchmarks.report import publish  # noqa: E402
from rnnserve_bundle.config import INPUT_IDS, LENGTHS, LOGITS, MODEL_FILE  # noqa: E402
from rnnserve_bundle.sessions import CPU, create_session  # noqa: E402
from rnnserve_bundle.tensors import pad_batch  # noqa: E402
from service.app import create_app  # noqa: E402
from service.query import Query  # noqa: E402
from service.schemas import PredictParams  # noqa: E402
from service.settings import Settings  # noqa: E402

CALLERS = 64
TEXT = TEXTS[7]


class AsgiCaller:
    """One POST through the ASGI app, as uvicorn would make it, answered in memory."""

    def __init__(self, app: Callable, path: str, body: dict) -> None:
        self.app = app
        self.body = json.dumps(body).encode()
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode())],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8000),
        }

    async def __call__(self) -> None:
        delivered = False
        status: list[int] = []

        async def receive() -> dict:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": self.body, "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await self.app(dict(self.scope), receive, send)
        if status != [200]:
            raise RuntimeError(f"{self.scope['path']} answered {status}")


async def cpu_per_request(call: Callable[[], Awaitable[object]], requests: int) -> tuple[float, float]:
    """(event-loop thread, whole process) CPU microseconds per request, 64 callers at a time."""

    async def caller(count: int) -> None:
        for _ in range(count):
            await call()

    loop_started, process_started = time.thread_time(), time.process_time()
    await asyncio.gather(*(caller(requests // CALLERS) for _ in range(CALLERS)))
    done = CALLERS * (requests // CALLERS)
    return (
        1e6 * (time.thread_time() - loop_started) / done,
        1e6 * (time.process_time() - process_started) / done,
    )


async def measure(requests: int, rounds: int) -> dict[str, tuple[float, float]]:
    """Medians of CPU per request by case; 32-text cases run a 16th of the requests."""
    app = create_app(Settings(echo_route=True, log_level="warning"))
    logging.getLogger("service").setLevel(logging.WARNING)
    async with app.router.lifespan_context(app):
        serving = app.state.serving
        model = serving.repository.get("sentiment", None)
        query = Query([TEXT], "sentiment", None, PredictParams())
        echo = AsgiCaller(app, "/echo", {"model": "sentiment", "inputs": [TEXT]})
        predict = AsgiCaller(app, "/predict", {"model": "sentiment", "inputs": [TEXT]})

        async def model_alone() -> None:
            await model.predict(query, serving.rules)

        async def tokenizer() -> None:
            model.encoder.encode([TEXT])

        cases = {
            "echo": echo,
            "predict": predict,
            "model path": model_alone,
            "tokenizer": tokenizer,
            "echo 32": AsgiCaller(app, "/echo", body(32)),
            "predict 32": AsgiCaller(app, "/predict", body(32)),
        }
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        await cpu_per_request(predict, requests)  # warm-up
        for _ in range(rounds):  # interleaved, so that drift on a shared machine hits every case alike
            for name, call in cases.items():
                count = requests // 16 if name.endswith("32") else requests
                samples[name].append(await cpu_per_request(call, count))
    return {
        name: (statistics.median(s[0] for s in runs), statistics.median(s[1] for s in runs))
        for name, runs in samples.items()
    }


def onnx_runtime_per_sequence(batch: int = 64, seconds: float = 2.0) -> float:
    """Process CPU microseconds per sequence, ONNX Runtime alone at this batch size."""
    bundle = newest_bundle("sentiment")
    from rnnserve_bundle.encoder import TextEncoder

    encoder = TextEncoder.from_file(bundle / "tokenizer.json", 64, keep_tail=False)
    ids = [encoder.encode([TEXTS[i % len(TEXTS)]])[0].ids for i in range(batch)]
    padded, lengths = pad_batch(ids)
    session = create_session(bundle / MODEL_FILE, [CPU])
    feeds = {INPUT_IDS: padded, LENGTHS: lengths}
    session.run([LOGITS], feeds)
    runs, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        session.run([LOGITS], feeds)
        runs += 1
    return 1e6 * (time.process_time() - cpu) / (runs * batch)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=6400, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; medians are reported")
    parser.add_argument("--write", type=Path, help="append the report to this Markdown file")
    args = parser.parse_args()

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # as `python -m service` runs
    figures = asyncio.run(measure(args.requests, args.rounds))
    ort = onnx_runtime_per_sequence()
    echo_loop = figures["echo"][0]
    predict_loop, predict_all = figures["predict"]
    model_loop, model_all = figures["model path"]
    lines = [
        f"### Request-path run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, CPU "
        f"execution provider. Command: `python benchmarks/request_path.py --requests {args.requests} "
        f"--rounds {args.rounds}`. In-process (the ASGI app called directly, {CALLERS} concurrent callers, "
        f"no HTTP server or load generator); medians of {args.rounds} interleaved rounds; one text per request.",
        "",
        "| CPU us per request | event-loop thread | whole process |",
        "| --- | --- | --- |",
        f"| `/echo` (FastAPI stack, no model) | {echo_loop:.0f} | {figures['echo'][1]:.0f} |",
        f"| `/predict` | {predict_loop:.0f} | {predict_all:.0f} |",
        f"| model path alone (`ServedModel.predict`, no FastAPI) | {model_loop:.0f} | {model_all:.0f} |",
        f"| of which the tokenizer, one text | {figures['tokenizer'][0]:.0f} | {figures['tokenizer'][1]:.0f} |",
        f"| ONNX Runtime alone, per sequence at batch 64 | - | {ort:.0f} |",
        f"| `/echo`, 32 texts | {figures['echo 32'][0]:.0f} | {figures['echo 32'][1]:.0f} |",
        f"| `/predict`, 32 texts | {figures['predict 32'][0]:.0f} | {figures['predict 32'][1]:.0f} |",
        "",
        f"`/predict` costs the event loop {predict_loop - echo_loop:.0f} us more than `/echo` "
        f"({predict_loop / echo_loop:.2f}x); the model path measured alone accounts for {model_loop:.0f} us "
        f"of that, leaving {predict_loop - echo_loop - model_loop:.0f} us that appear only when both run together. "
        f"A 32-text request costs {figures['predict 32'][1] / 32:.0f} us of CPU per text, "
        f"{figures['predict 32'][0] / 32:.0f} us of it on the event loop; ONNX Runtime alone costs {ort:.0f} us "
        "per sequence at batch 64.",
    ]
    publish("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
