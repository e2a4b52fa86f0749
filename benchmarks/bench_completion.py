"""Completion benchmark: the cost of a generated word does not grow with the prefix.

On the default next-word model, in one run:

1. through the service (HTTP, one request at a time): the time per generated word, from the latency
   of 33-word and 1-word greedy completions, for prefixes of 2 to 64 tokens;
2. the alternative without carried state: re-reading prefix + words with `model.onnx` for every
   word (ONNX Runtime alone, no HTTP), whose cost per word grows with the prefix;
3. concurrent completions (1 to 32 clients): generated words per second, showing that requests
   share batched steps.

    python benchmarks/bench_completion.py [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_service import Service, newest_bundle  # noqa: E402
from benchmarks.report import publish  # noqa: E402
from rnnserve_bundle.config import INPUT_IDS, LENGTHS, LOGITS, MODEL_FILE, TOKENIZER_FILE  # noqa: E402
from rnnserve_bundle.encoder import TextEncoder  # noqa: E402
from rnnserve_bundle.sessions import CPU, create_session  # noqa: E402

SENTENCE = "the company said it expects earnings to rise in the next quarter as sales of its new products grow"
WORDS = SENTENCE.split(" ")
PREFIX_TOKENS = (2, 8, 16, 32, 64)  # with <bos>; 64 is the model's maximum
LONG, SHORT = 33, 1


def prefix_of(tokens: int) -> str:
    """A text that encodes to `tokens` tokens, `<bos>` included."""
    return " ".join(WORDS[i % len(WORDS)] for i in range(tokens - 1))


def latency(client: httpx.Client, text: str, words: int, repeats: int) -> float:
    """Median seconds of a greedy completion of `words` words (the first runs are warm-up)."""
    body = {"model": "next-word", "inputs": [text], "params": {"max_words": words, "stop_at_sentence_end": False}}
    times = []
    for attempt in range(repeats + 2):
        started = time.perf_counter()
        response = client.post("/predict", json=body)
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        assert len(response.json()["outputs"][0]["completions"][0]["tokens"]) == words
        if attempt >= 2:
            times.append(elapsed)
    return statistics.median(times)


def rereading_per_word(tokens: int, words: int = 16) -> float:
    """Seconds per word when every word re-reads the whole text with `model.onnx`."""
    bundle = newest_bundle("next-word")
    session = create_session(bundle / MODEL_FILE, [CPU])
    ids = list(range(4, 4 + tokens))
    session.run([LOGITS], {INPUT_IDS: np.array([ids]), LENGTHS: np.array([len(ids)])})
    started = time.perf_counter()
    for _ in range(words):
        (logits,) = session.run([LOGITS], {INPUT_IDS: np.array([ids]), LENGTHS: np.array([len(ids)])})
        ids.append(int(logits[0].argmax()))
    return (time.perf_counter() - started) / words


def concurrent_words_per_second(url: str, clients: int, seconds: float = 4.0) -> float:
    body = {
        "model": "next-word",
        "inputs": [prefix_of(16)],
        "params": {"max_words": 16, "strategy": "sample", "stop_at_sentence_end": False},
    }
    deadline = time.perf_counter() + seconds

    def worker(_: int) -> int:
        words = 0
        with httpx.Client(base_url=url, timeout=30) as client:
            while time.perf_counter() < deadline:
                response = client.post("/predict", json=body)
                response.raise_for_status()
                words += len(response.json()["outputs"][0]["completions"][0]["tokens"])
        return words

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(worker, range(clients)))
    return total / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--write", type=Path, help="append the report to this Markdown file")
    args = parser.parse_args()

    bundle = newest_bundle("next-word")
    encoder = TextEncoder.from_file(bundle / TOKENIZER_FILE, 10_000, keep_tail=True)
    service = Service()
    rows = []
    try:
        with httpx.Client(base_url=service.url, timeout=30) as client:
            for tokens in PREFIX_TOKENS:
                text = prefix_of(tokens)
                assert len(encoder.encode([text])[0].ids) == tokens, text
                long = latency(client, text, LONG, args.repeats)
                short = latency(client, text, SHORT, args.repeats)
                rows.append((tokens, short, (long - short) / (LONG - SHORT), rereading_per_word(tokens)))
        concurrency = {c: concurrent_words_per_second(service.url, c) for c in (1, 4, 16, 32)}
    finally:
        service.stop()

    lines = [
        f"### Completion run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"CPU execution provider. Command: `python benchmarks/bench_completion.py --repeats {args.repeats}`. "
        f"Greedy completions of the default next-word model; medians of {args.repeats} requests.",
        "",
        "| prefix tokens | 1-word request ms (HTTP) | ms per further word, step model (HTTP) "
        "| ms per word re-reading with model.onnx (no HTTP) |",
        "| --- | --- | --- | --- |",
    ]
    for tokens, short, per_word, reread in rows:
        lines.append(f"| {tokens} | {short * 1e3:.2f} | {per_word * 1e3:.3f} | {reread * 1e3:.3f} |")
    flat = [r[2] for r in rows]
    lines += [
        "",
        f"Per generated word on the step model: {min(flat) * 1e3:.3f} to {max(flat) * 1e3:.3f} ms across "
        f"prefixes of {PREFIX_TOKENS[0]} to {PREFIX_TOKENS[-1]} tokens (ratio longest/shortest prefix "
        f"{flat[-1] / flat[0]:.2f}); re-reading grows {rows[-1][3] / rows[0][3]:.1f}x over the same range.",
        "",
        "| concurrent clients (16-word samples) | " + " | ".join(str(c) for c in concurrency) + " |",
        "| --- | " + " | ".join("---" for _ in concurrency) + " |",
        "| generated words/s | " + " | ".join(f"{w:,.0f}" for w in concurrency.values()) + " |",
    ]
    report = "\n".join(lines) + "\n"
    publish(report, args.write)


if __name__ == "__main__":
    main()
