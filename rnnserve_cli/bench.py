"""`rnnserve bench`: a closed-loop load test of a running service.

`--connections` clients each send a request, wait for its answer and send the next, for
`--duration` seconds; the figures are requests and texts per second and latency percentiles, as
JSON. The clients run in one Python process (on the same cores as the server when beside it), so
past what that process can send it measures itself: a native load generator such as wrk (the
repository's benchmarks use it) goes further.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import numpy as np

SAMPLE_TEXTS = [
    "play something relaxing by miles davis",
    "will it rain in chicago tomorrow",
    "the acting was wooden and the plot made no sense",
    "book a table for two at an italian place tonight",
    "the company said it expects",
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnserve bench", description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the service's base URL")
    parser.add_argument("--model", required=True, help="model name, e.g. sentiment")
    parser.add_argument("--protocol", choices=["predict", "v2"], default="predict", help="POST /predict or v2 infer")
    parser.add_argument("--texts", type=int, default=1, help="texts per request")
    parser.add_argument("--text", action="append", help="a text to send (repeatable; default: built-in samples)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--api-key", help="sent as X-API-Key")
    return parser


def _body(protocol: str, model: str, texts: list[str]) -> tuple[str, dict[str, Any]]:
    if protocol == "predict":
        return "/predict", {"model": model, "inputs": texts}
    tensor = {"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}
    return f"/v2/models/{model}/infer", {"inputs": [tensor]}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    pool = args.text or SAMPLE_TEXTS
    texts = [pool[i % len(pool)] for i in range(args.texts)]
    path, body = _body(args.protocol, args.model, texts)
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=args.connections)
    async with httpx.AsyncClient(base_url=args.url, headers=headers, limits=limits, timeout=30) as client:
        first = await client.post(path, json=body)  # fail fast on a wrong model or key
        if first.status_code != 200:
            raise SystemExit(f"rnnserve bench: {path} answered {first.status_code}: {first.text[:300]}")
        deadline = time.perf_counter() + args.duration

        async def connection() -> None:
            while (started := time.perf_counter()) < deadline:
                response = await client.post(path, json=body)
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(args.connections)))
        elapsed = time.perf_counter() - began
    ok = statuses.get(200, 0)
    p50, p90, p99 = np.percentile(latencies, [50, 90, 99]) * 1000
    return {
        "url": args.url + path,
        "connections": args.connections,
        "texts_per_request": args.texts,
        "requests": len(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "requests_per_s": round(ok / elapsed, 1),
        "texts_per_s": round(ok * args.texts / elapsed, 1),
        "p50_ms": round(float(p50), 2),
        "p90_ms": round(float(p90), 2),
        "p99_ms": round(float(p99), 2),
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.texts < 1 or args.connections < 1 or args.duration <= 0:
        raise SystemExit("rnnserve bench: --texts and --connections must be at least 1, --duration positive")
    try:
        import httpx  # noqa: F401
    except ModuleNotFoundError:
        raise SystemExit("rnnserve bench needs httpx: pip install 'rnnserve[client]'") from None
    result = asyncio.run(run(args))
    print(json.dumps(result))
    return 0 if set(result["statuses"]) == {"200"} else 1
