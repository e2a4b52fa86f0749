"""What a new bundle costs against the one it replaces: two bundles of one task side by side.

1. ONNX Runtime alone: ms per sequence at batch 1 and 64 (`bench_models.latency_ms`), the size of
   `model.onnx` and the resident memory a session adds once it has run (`session_memory_mb`);
2. the tokenizer alone, as the service builds it (`TextEncoder`): microseconds to encode one text and
   32 texts (the load's texts), medians of 7 alternating rounds;
3. the service serving both as versions 1 and 2 of one model, loaded with wrk in alternating runs
   (1, 2, 1, 2, ...): one text per request with 1 and 64 connections, 32 texts with 64.

Only ratios between adjacent runs mean anything on a shared machine.

    python benchmarks/bench_versions.py OLD_BUNDLE NEW_BUNDLE [--rounds 2] [--duration 8] [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_models import latency_ms, session_memory_mb  # noqa: E402
from benchmarks.bench_service import Service, body, wrk  # noqa: E402
from benchmarks.report import publish  # noqa: E402
from rnnserve_bundle.config import MODEL_FILE, TOKENIZER_FILE, BundleConfig  # noqa: E402
from rnnserve_bundle.encoder import TextEncoder  # noqa: E402

LOADS = [("1 text, 1 connection", 1, 1), ("1 text, 64 connections", 1, 64), ("32 texts, 64 connections", 32, 64)]


def latency(results: list[dict]) -> str:
    """Median p50 / p99 over the rounds."""
    p50 = statistics.median(r["p50_ms"] for r in results)
    p99 = statistics.median(r["p99_ms"] for r in results)
    return f"{p50:.2f} / {p99:.2f}"


def encode_us(
    bundle: Path,
    count: int,
    repeats: int = 300,
    windows: bool | None = None,
    spelling: bool | None = None,
    texts: list[str] | None = None,
) -> float:
    """Microseconds per call encoding `count` of the load's texts (or `texts`), with the service's
    encoder (`windows`: whether a classifier reads long texts in windows, `spelling` whether it
    reads typing slips as the words meant; None: as the service's default)."""
    config = BundleConfig.load(bundle)
    classifier = config.task.is_classifier
    encoder = TextEncoder.from_file(
        bundle / TOKENIZER_FILE,
        config.max_sequence_length,
        keep_tail=not classifier,
        windows=classifier if windows is None else windows,
        spelling=classifier if spelling is None else spelling,
    )
    texts = texts if texts is not None else body(count)["inputs"]
    for _ in range(repeats // 10):  # warm-up: the first calls also start the tokenizer's thread pool
        encoder.encode(texts)
    started = time.perf_counter()
    for _ in range(repeats):
        encoder.encode(texts)
    return (time.perf_counter() - started) / repeats * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundles", type=Path, nargs=2, help="the old and the new bundle directory")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--write", type=Path, help="append the report to this Markdown file")
    args = parser.parse_args()

    model_rows = [
        f"| {bundle} | {latency_ms(bundle, 1):.3f} | {latency_ms(bundle, 64):.3f} |"
        for _ in range(args.rounds)
        for bundle in args.bundles
    ]
    # Short and noisy: medians of 7 alternating rounds (old, new, old, new, ...).
    encodes = {(bundle, n): [] for bundle in args.bundles for n in (1, 32)}
    for _ in range(7):
        for bundle in args.bundles:
            for n in (1, 32):
                encodes[bundle, n].append(encode_us(bundle, n))
    encode_rows = [
        f"| {b} | {statistics.median(encodes[b, 1]):.1f} | {statistics.median(encodes[b, 32]):.0f} |"
        for b in args.bundles
    ]
    memory_rows = [
        f"| {bundle} | {(bundle / MODEL_FILE).stat().st_size / 1e6:.1f} | {session_memory_mb(bundle):.1f} |"
        for bundle in args.bundles
    ]
    with tempfile.TemporaryDirectory() as repository:
        for version, bundle in enumerate(args.bundles, start=1):
            shutil.copytree(bundle, Path(repository) / "m" / str(version))
        service = Service(RNNSERVE_MODEL_REPOSITORY=repository)
        try:
            runs: dict[tuple[str, int], list[dict]] = {}
            for _ in range(args.rounds):
                for label, texts, connections in LOADS:
                    for version in (1, 2):
                        request = {**body(texts, "m"), "version": str(version)}
                        wrk(f"{service.url}/predict", request, connections, 2)  # warm-up
                        result = wrk(f"{service.url}/predict", request, connections, args.duration)
                        runs.setdefault((label, version), []).append(result)
        finally:
            service.stop()

    lines = [
        f"### Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Command: `python benchmarks/bench_versions.py {' '.join(map(str, args.bundles))} --rounds {args.rounds} "
        f"--duration {args.duration}`; CPU execution provider, wrk 1 thread on the same machine.",
        "",
        "| bundle | ms per sequence, batch 1 | ms per sequence, batch 64 |",
        "| --- | --- | --- |",
        *model_rows,
        "",
        "| bundle | tokenizer: us to encode 1 text (median of 7) | tokenizer: us to encode 32 texts (median of 7) |",
        "| --- | --- | --- |",
        *encode_rows,
        "",
        "| bundle | model.onnx MB | resident MB a session adds after one batch of 64 |",
        "| --- | --- | --- |",
        *memory_rows,
        "",
        "| load | old: requests/s | new: requests/s | new / old (per round) | old: p50 / p99 ms | new: p50 / p99 ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, _, _ in LOADS:
        old, new = runs[label, 1], runs[label, 2]
        ratios = ", ".join(f"{n['rps'] / o['rps']:.2f}" for o, n in zip(old, new, strict=True))
        rates = [f"{statistics.median(r['rps'] for r in results):.0f}" for results in (old, new)]
        lines.append(f"| {label} | {rates[0]} | {rates[1]} | {ratios} | {latency(old)} | {latency(new)} |")
    lines.append("\n(requests/s and latencies: medians over the rounds)")
    publish("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
