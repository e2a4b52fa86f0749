"""Soak: minutes of high load on the three default models; nothing may be lost, memory must stay flat.

wrk sends a mix of single-text and 16-text requests to sentiment, intent and next-word, requests
asking intent and sentiment together, and sampled completions, over 64 connections. The report
counts requests sent and answered (wrk) and answers by status (the service's own metrics), the
requests lost (sent but never answered, plus any difference between the two counts), and resident
memory sampled every 10 s.

    python benchmarks/soak.py [--minutes 5] [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_service import TEXTS, Service  # noqa: E402
from benchmarks.report import publish  # noqa: E402

WRK_SCRIPT = """
local bodies = {}
local index = 0
init = function(args)
  for line in io.lines(os.getenv("SOAK_BODIES")) do table.insert(bodies, line) end
end
request = function()
  index = index % #bodies + 1
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, bodies[index])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('SOAKJSON {"requests": %d, "seconds": %f, "connect": %d, "read": %d, "write": %d, '
    .. '"timeout": %d, "non2xx": %d, "p99_ms": %f}\\n', summary.requests, summary.duration / 1e6,
    e.connect, e.read, e.write, e.timeout, e.status, latency:percentile(99) / 1000))
end
"""


def bodies() -> list[str]:
    out = []
    for model in ("sentiment", "intent", "next-word"):
        for count in (1, 1, 1, 16):
            inputs = [TEXTS[(i + len(out)) % len(TEXTS)] for i in range(count)]
            out.append(json.dumps({"model": model, "inputs": inputs}))
    # The newer paths too: intent and sentiment in one request, and sampled completions.
    out.append(json.dumps({"inputs": TEXTS[:2], "models": [{"model": "intent"}, {"model": "sentiment"}]}))
    completion = {"max_words": 8, "strategy": "sample", "completions": 2, "top_p": 0.9}
    out.append(json.dumps({"model": "next-word", "inputs": ["the company said"], "params": completion}))
    return out


def predict_counts(url: str) -> dict[str, int]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    counts: dict[str, int] = {}
    pattern = r'rnnserve_http_requests_total\{method="POST",route="/predict",status="(\d+)"\} ([0-9.e+]+)'
    for status, value in re.findall(pattern, text):
        counts[status] = counts.get(status, 0) + int(float(value))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    seconds = int(args.minutes * 60)

    service = Service()
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        started = time.perf_counter()
        while not stop.is_set():
            samples.append((time.perf_counter() - started, service.rss_mb()))
            stop.wait(10)

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "soak.lua").write_text(WRK_SCRIPT)
        (Path(tmp) / "bodies.txt").write_text("\n".join(bodies()) + "\n")
        sampler = threading.Thread(target=sample)
        sampler.start()
        env = {**os.environ, "SOAK_BODIES": str(Path(tmp) / "bodies.txt")}
        output = subprocess.run(
            [
                "wrk",
                "-t",
                "1",
                "-c",
                "64",
                "-d",
                f"{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(Path(tmp) / "soak.lua"),
                service.url,
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
        stop.set()
        sampler.join()
    time.sleep(0.5)
    by_status = predict_counts(service.url)
    rss_end = service.rss_mb()
    service.stop()

    result = json.loads(output.split("SOAKJSON ", 1)[1].splitlines()[0])
    answered = sum(by_status.values())
    unanswered = result["read"] + result["write"] + result["timeout"]
    # wrk stops with up to one request in flight per connection: the service answers those (its
    # count includes them) but wrk no longer reads them. Lost: sent and never answered.
    in_flight_at_stop = answered - result["requests"]
    lost = unanswered + max(0, -in_flight_at_stop)
    statuses = ", ".join(f"{k}: {v:,}" for k, v in sorted(by_status.items()))
    first, middle = samples[0][1], samples[min(len(samples) - 1, 1)][1]
    report = "\n".join(
        [
            f"### Soak run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            "",
            f"Command: `python benchmarks/soak.py --minutes {args.minutes:g}`; {os.cpu_count()} cores, CPU "
            "execution provider, wrk (1 thread, 64 connections) on the same machine; requests cycle over "
            "sentiment, intent and next-word (three single-text requests to one 16-text request), plus "
            "intent-and-sentiment requests and sampled 8-word completions.",
            "",
            "| requests answered (wrk) | per second | answered by status (service metrics) | in flight when wrk"
            " stopped | lost | p99 ms | RSS at start / after warm-up / end (MB) |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            f"| {result['requests']:,} | {result['requests'] / result['seconds']:,.0f} | "
            f"{statuses} | {in_flight_at_stop} | {lost} | {result['p99_ms']:.1f} | "
            f"{first:.0f} / {middle:.0f} / {rss_end:.0f} |",
            "",
            "RSS every 10 s (MB): " + ", ".join(f"{rss:.0f}" for _, rss in samples),
            "",
        ]
    )
    publish(report, args.write)


if __name__ == "__main__":
    main()
