"""Worker processes and the access log, measured in one run (ratios are what to read):

1. the access log's cost: the shipped defaults (one JSON line per request, written to a file) against
   the same server with it off (log level warning), in pairs whose order alternates, single-text
   requests;
2. worker scaling: `RNNSERVE_WORKERS` 1, 2, 4, ... up to the cores, single-text and 32-text
   requests at 64 connections (requests/s, p50, p99), and p50/p99 at 1, 16, 64 and 128
   connections for each.

    python benchmarks/bench_workers.py [--duration 10] [--rounds 4] [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_service import Service, body, wrk  # noqa: E402
from benchmarks.report import publish  # noqa: E402

CONNECTIONS = (1, 16, 64, 128)


def access_log_cost(duration: int, rounds: int) -> tuple[list[tuple[float, float]], float]:
    """(requests/s with the log on, off) per round, and the median cost of the log (1 - on/off)."""
    pairs = []
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(rounds):
            rates = {}
            # On first in even rounds, off first in odd ones: the second server of a pair tends to
            # run faster on this machine, whatever it is.
            for level in ("info", "warning") if round_ % 2 == 0 else ("warning", "info"):
                service = Service(log=Path(scratch) / f"{level}-{round_}.log", RNNSERVE_LOG_LEVEL=level)
                wrk(f"{service.url}/predict", body(1), 64, 2)  # warm-up
                rates[level] = wrk(f"{service.url}/predict", body(1), 64, duration)["rps"]
                service.stop()
            pairs.append((rates["info"], rates["warning"]))
    return pairs, statistics.median(1 - on / off for on, off in pairs)


def worker_counts() -> list[int]:
    cores = os.cpu_count() or 1
    counts, n = [], 1
    while n <= cores:
        counts.append(n)
        n *= 2
    return counts if counts[-1] == cores else [*counts, cores]


def scaling(duration: int) -> dict[int, dict[str, dict]]:
    results = {}
    for workers in worker_counts():
        print(f"{workers} worker(s)...", flush=True)
        with tempfile.TemporaryDirectory() as scratch:
            service = Service(log=Path(scratch) / "log", RNNSERVE_LOG_LEVEL="info", RNNSERVE_WORKERS=str(workers))
            wrk(f"{service.url}/predict", body(1), 64, 2)  # warm-up: every worker's first requests
            runs = {"single": wrk(f"{service.url}/predict", body(1), 64, duration)}
            runs["multi"] = wrk(f"{service.url}/predict", body(32), 64, duration)
            for connections in CONNECTIONS:
                runs[f"c{connections}"] = wrk(f"{service.url}/predict", body(1), connections, max(3, duration // 2))
            service.stop()
        results[workers] = runs
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=4, help="access log on/off pairs, alternating order")
    parser.add_argument("--write", type=Path, help="append the report to this Markdown file")
    args = parser.parse_args()

    print("access log on / off...", flush=True)
    pairs, cost = access_log_cost(args.duration, args.rounds)
    results = scaling(args.duration)
    base = results[1]
    lines = [
        f"### Workers and access log, run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, CPU "
        f"execution provider; wrk 1 thread on the same machine; {args.duration} s per run; default sentiment model.",
        f"Command: `python benchmarks/bench_workers.py --duration {args.duration} --rounds {args.rounds}`",
        "",
        "| access log (single text, 64 connections) | on, requests/s | off, requests/s | on / off |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| round {i + 1} | {on:,.0f} | {off:,.0f} | {on / off:.3f} |" for i, (on, off) in enumerate(pairs)]
    lines += [
        "",
        f"Median cost of the access log: {cost * 100:.1f}% of single-text throughput (goal: under 5%).",
        "",
        "| workers | 1 text: requests/s | p50 ms | p99 ms | × 1 worker | 32 texts: requests/s | sequences/s "
        "| p50 ms | p99 ms | × 1 worker |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for workers, runs in results.items():
        single, multi = runs["single"], runs["multi"]
        lines.append(
            f"| {workers} | {single['rps']:,.0f} | {single['p50_ms']:.1f} | {single['p99_ms']:.1f} | "
            f"{single['rps'] / base['single']['rps']:.2f} | {multi['rps']:,.0f} | {multi['rps'] * 32:,.0f} | "
            f"{multi['p50_ms']:.1f} | {multi['p99_ms']:.1f} | {multi['rps'] / base['multi']['rps']:.2f} |"
        )
    lines += [
        "",
        "| workers | " + " | ".join(f"{c} conn. p50 / p99 ms" for c in CONNECTIONS) + " |",
        "| --- | " + " | ".join("---" for _ in CONNECTIONS) + " |",
    ]
    for workers, runs in results.items():
        cells = [f"{runs[f'c{c}']['p50_ms']:.1f} / {runs[f'c{c}']['p99_ms']:.1f}" for c in CONNECTIONS]
        lines.append(f"| {workers} | " + " | ".join(cells) + " |")
    errors = sum(run["errors"] for runs in results.values() for run in runs.values())
    lines.append(f"\nErrors over all runs: {errors}.")
    publish("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
