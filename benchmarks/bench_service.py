"""Service benchmark, all figures from one run on one machine (ratios are what to read):

1. in-process ceiling: ONNX Runtime alone on the default sentiment model, sequences/s by batch size;
2. HTTP ceiling: the same server stack answering `POST /echo` (parsing, validation, JSON) with no model;
3. the service under wrk with 64 connections, single-text and 32-text requests: throughput, p50, p99;
4. the same with batching off (maximum batch size 1), and with two instances (sessions) per model;
5. a concurrency sweep (plot), resident memory with the three default models, time to ready.

    python benchmarks/bench_service.py [--duration 10] [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.report import publish  # noqa: E402
from rnnserve_bundle.config import INPUT_IDS, LENGTHS, LOGITS, MODEL_FILE, TOKENIZER_FILE, BundleConfig  # noqa: E402
from rnnserve_bundle.encoder import TextEncoder  # noqa: E402
from rnnserve_bundle.sessions import CPU, create_session  # noqa: E402
from rnnserve_bundle.tensors import pad_batch  # noqa: E402

TEXTS = [
    "a gripping , beautifully acted film that stays with you long after the credits",
    "dull , predictable and far too long for what it has to say",
    "the performances are fine but the script never finds its footing",
    "one of the funniest movies of the year",
    "an ambitious mess that is never boring",
    "the director has a sharp eye for the small details of everyday life",
    "i wanted to like it , but it left me cold",
    "a charming , warm and surprisingly moving story",
]

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BENCH_BODY")
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout
  local shape = 'WRKJSON {"requests": %d, "seconds": %f, "errors": %d, "p50_ms": %f, "p99_ms": %f}\\n'
  io.write(string.format(shape,
    summary.requests, summary.duration / 1e6, errors, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000))
end
"""


def newest_bundle(name: str) -> Path:
    """The default model's newest version directory, as the service serves it by default."""
    return max((ROOT / "models" / name).iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1)


def wait_ready(url: str, alive: Callable[[], bool] = lambda: True, timeout_s: float = 60) -> None:
    """Poll the readiness probe until the service answers 200 (it has loaded and warmed up every model)."""
    deadline = time.perf_counter() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if not alive() or time.perf_counter() > deadline:
            raise RuntimeError("service did not become ready")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    def __init__(self, log: Path | None = None, **env: str) -> None:
        """`log`: where its output goes (a file, as a container runtime would keep it); default none."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "RNNSERVE_PORT": str(self.port),
            "RNNSERVE_ECHO_ROUTE": "true",
            "RNNSERVE_LOG_LEVEL": "warning",
            **env,
        }
        started = time.perf_counter()
        output = log.open("w") if log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service"],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        )
        wait_ready(self.url, lambda: self.process.poll() is None)
        self.ready_s = time.perf_counter() - started

    def rss_mb(self) -> float:
        """Resident memory of the server and its worker processes, if any."""
        total, pending = 0.0, [self.process.pid]
        while pending:
            pid = pending.pop()
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                pending += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            except FileNotFoundError:
                continue
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024
        return total

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def wrk(url: str, body: dict, connections: int, seconds: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    env = {**os.environ, "BENCH_BODY": json.dumps(body)}
    output = subprocess.run(
        [
            "wrk",
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    os.unlink(script.name)
    result = json.loads(output.split("WRKJSON ", 1)[1].splitlines()[0])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def setting_against(
    variable: str,
    values: dict[str, str],
    request: dict,
    seconds: int,
    rounds: int = 2,
    connections: tuple[int, ...] = (1, 16),
) -> list[str]:
    """Two services that differ by one setting (`values`: column name -> value of `variable`) side
    by side, loaded in alternating wrk runs (1 thread) with each count of `connections`: a table
    of requests/s and latencies, medians over the rounds, the second column's against the first's."""
    servers = {name: Service(**{variable: value}) for name, value in values.items()}
    results: dict[tuple[str, int], list[dict]] = {}
    try:
        for _ in range(rounds):
            for count in connections:
                for name, server in servers.items():
                    results.setdefault((name, count), []).append(wrk(f"{server.url}/predict", request, count, seconds))
    finally:
        for server in servers.values():
            server.stop()
    first, second = values

    def median(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    rows = [
        f"| load | {first}: requests/s | {second}: requests/s | {second} / {first} | {first}: p50 / p99 ms "
        f"| {second}: p50 / p99 ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for count in connections:
        a, b = results[(first, count)], results[(second, count)]
        rows.append(
            f"| {count} connection{'s' if count > 1 else ''} | {median(a, 'rps'):.0f} | {median(b, 'rps'):.0f} | "
            f"{median(b, 'rps') / median(a, 'rps'):.2f} | {median(a, 'p50_ms'):.2f} / {median(a, 'p99_ms'):.2f} | "
            f"{median(b, 'p50_ms'):.2f} / {median(b, 'p99_ms'):.2f} |"
        )
    return rows


def body(count: int, model: str = "sentiment") -> dict:
    return {"model": model, "inputs": [TEXTS[i % len(TEXTS)] for i in range(count)]}


def sequences_per_second(session, feeds: dict, batch: int, seconds: float) -> float:
    """Run one batch repeatedly for `seconds` after a warm-up run."""
    session.run([LOGITS], feeds)
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        session.run([LOGITS], feeds)
        runs += 1
    return runs * batch / (time.perf_counter() - started)


def ort_ceiling(seconds_per_size: float = 1.5) -> dict[int, float]:
    bundle = newest_bundle("sentiment")
    config = BundleConfig.load(bundle)
    encoder = TextEncoder.from_file(bundle / TOKENIZER_FILE, config.max_sequence_length, keep_tail=False)
    session = create_session(bundle / MODEL_FILE, [CPU])
    ids = [e.ids for e in encoder.encode(TEXTS)]
    rates = {}
    for size in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        padded, lengths = pad_batch([ids[i % len(ids)] for i in range(size)])
        rates[size] = sequences_per_second(session, {INPUT_IDS: padded, LENGTHS: lengths}, size, seconds_per_size)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--write", type=Path, help="append the report to this Markdown file")
    args = parser.parse_args()
    d = args.duration

    print("ONNX Runtime in-process ceiling (sentiment)...", flush=True)
    ceiling = ort_ceiling()
    best_size = max(ceiling, key=ceiling.get)

    service = Service()
    ready_s, rss_idle = service.ready_s, service.rss_mb()
    print("HTTP echo ceiling and service, batching on...", flush=True)
    echo = wrk(f"{service.url}/echo", body(1), 64, d)
    single = wrk(f"{service.url}/predict", body(1), 64, d)
    multi = wrk(f"{service.url}/predict", body(32), 64, d)
    sweep = {c: wrk(f"{service.url}/predict", body(1), c, max(3, d // 2)) for c in (1, 4, 16, 64, 128)}
    rss_loaded = service.rss_mb()
    service.stop()

    print("service, batching off...", flush=True)
    service = Service(RNNSERVE_MAX_BATCH_SIZE="1")
    single_off = wrk(f"{service.url}/predict", body(1), 64, d)
    multi_off = wrk(f"{service.url}/predict", body(32), 64, d)
    service.stop()

    print("service, two instances (sessions) per model...", flush=True)
    service = Service(RNNSERVE_INSTANCES="2")
    single_two = wrk(f"{service.url}/predict", body(1), 64, d)
    multi_two = wrk(f"{service.url}/predict", body(32), 64, d)
    service.stop()

    multi_seq = multi["rps"] * 32
    targets = [
        ("single-text throughput / HTTP echo ceiling", single["rps"] / echo["rps"], ">= 0.80"),
        (
            f"32-text sequences/s / in-process ceiling (batch {best_size})",
            multi_seq / ceiling[best_size],
            ">= 0.70",
        ),
        ("batching on / off, single-text", single["rps"] / single_off["rps"], ">= 1.6"),
        ("p99 at 64 connections, single-text (ms)", single["p99_ms"], "< 50"),
        ("resident memory, three default models, after load (MB)", rss_loaded, "< 400"),
        ("time from start to ready (s)", ready_s, "< 3"),
    ]
    lines = [
        f"### Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"CPU execution provider; wrk 1 thread on the same machine; {d} s per run.",
        f"Command: `python benchmarks/bench_service.py --duration {d}`",
        "",
        "| batch size | " + " | ".join(str(s) for s in ceiling) + " |",
        "| --- | " + " | ".join("---" for _ in ceiling) + " |",
        "| ONNX Runtime alone, sequences/s | " + " | ".join(f"{r:,.0f}" for r in ceiling.values()) + " |",
        "",
        "| 64 connections | requests/s | sequences/s | p50 ms | p99 ms | errors |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, result, per in [
        ("HTTP echo ceiling (1 text)", echo, 1),
        ("service, 1 text", single, 1),
        ("service, 32 texts", multi, 32),
        ("batching off, 1 text", single_off, 1),
        ("batching off, 32 texts", multi_off, 32),
        ("two instances, 1 text", single_two, 1),
        ("two instances, 32 texts", multi_two, 32),
    ]:
        lines.append(
            f"| {name} | {result['rps']:,.0f} | {result['rps'] * per:,.0f} | {result['p50_ms']:.1f} | "
            f"{result['p99_ms']:.1f} | {result['errors']} |"
        )
    lines += [
        "",
        "| connections | " + " | ".join(str(c) for c in sweep) + " |",
        "| --- | " + " | ".join("---" for _ in sweep) + " |",
        "| requests/s | " + " | ".join(f"{r['rps']:,.0f}" for r in sweep.values()) + " |",
        "| p99 ms | " + " | ".join(f"{r['p99_ms']:.1f}" for r in sweep.values()) + " |",
        "",
        "| target | measured | goal | met |",
        "| --- | --- | --- | --- |",
    ]
    for name, value, goal in targets:
        op, limit = goal.split()
        met = value >= float(limit) if op == ">=" else value < float(limit)
        lines.append(f"| {name} | {value:.2f} | {goal} | {'yes' if met else 'no'} |")
    lines.append(f"\nResident memory at ready: {rss_idle:.0f} MB.")
    report = "\n".join(lines) + "\n"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, left = plt.subplots(figsize=(6, 3.5))
        connections = list(sweep)
        left.plot(connections, [sweep[c]["rps"] for c in connections], marker="o", label="requests/s")
        left.set(xscale="log", xlabel="concurrent connections", ylabel="requests/s (1 text each)")
        right = left.twinx()
        right.plot(
            connections,
            [sweep[c]["p99_ms"] for c in connections],
            marker="s",
            color="C1",
            label="p99 ms",
        )
        right.set(ylabel="p99 latency (ms)")
        figure.legend(loc="upper left")
        figure.tight_layout()
        figure.savefig(ROOT / "benchmarks" / "concurrency.png", dpi=100)
    except ImportError:
        pass
    publish(report, args.write)


if __name__ == "__main__":
    main()
