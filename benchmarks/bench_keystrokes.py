"""Cost of a keystroke for an editor, by length of the text before it, all in one run:

- `/suggest` continuing from the previous answer's state (only the new characters sent);
- `/suggest` re-sending the whole text each keystroke (the model re-reads all of it);
- `/predict` re-sending the whole text (the model reads its last 64 tokens: the bundle's maximum).

For each context length, the next five words of the text are typed one character at a time
(one request per character, one connection, sequential); medians and p90 over those keystrokes.
The context is real text: PTB validation sentences when `../shared` is there, else a built-in one.

A second table types, after the 100-word context, words as a person types them, whose half-typed
forms the model reads as more than one of its words ("didn" -> "didn't": did + n't; "$5": $ + N;
`service.typed_word`), against the same number of plain words of the corpus.

    python benchmarks/bench_keystrokes.py [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_service import Service  # noqa: E402
from benchmarks.report import publish  # noqa: E402

CONTEXT_WORDS = (10, 100, 1000)
TYPED_WORDS = 5
PTB_VALID = ROOT.parent / "shared" / "datasets" / "ptb" / "valid.txt"
# Typed as people type: contractions, a currency amount, a number.
RAW_TYPED = "they didn't say it's worth $50 million but we're sure it won't fall 5% "
FALLBACK = "the company said it expects earnings to rise in the next quarter as sales of its new products grow"


def corpus_words() -> list[str]:
    text = PTB_VALID.read_text(encoding="utf-8") if PTB_VALID.exists() else FALLBACK
    words = text.replace("<unk>", "thing").split()
    needed = max(CONTEXT_WORDS) + TYPED_WORDS
    return (words * (needed // len(words) + 1))[:needed]


def keystrokes(client: httpx.Client, context: str, typed: str, mode: str) -> tuple[list[float], int]:
    """Seconds per keystroke while `typed` is typed after `context`, and tokens read in all."""
    times, read = [], 0
    state = None
    if mode == "continue":
        answer = client.post("/suggest", json={"model": "next-word", "text": context})
        state = answer.json()["state"]
    for end in range(1, len(typed) + 1):
        text = context + typed[:end]
        if mode == "continue":
            body = {"model": "next-word", "text": typed[end - 1], "state": state}
            path = "/suggest"
        elif mode == "resend-suggest":
            body, path = {"model": "next-word", "text": text}, "/suggest"
        else:
            body, path = {"model": "next-word", "inputs": [text]}, "/predict"
        started = time.perf_counter()
        response = client.post(path, json=body)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
        if path == "/suggest":
            state = response.json()["state"]
            read += response.json()["read"]
    return times, read


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", type=Path, help="append the report to this Markdown file")
    args = parser.parse_args()
    words = corpus_words()
    modes = ("continue", "resend-suggest", "resend-predict")
    service = Service(RNNSERVE_MAX_CHARS_PER_INPUT="100000")
    rows = []
    try:
        with httpx.Client(base_url=service.url, timeout=60) as client:
            keystrokes(client, " ".join(words[:50]) + " ", "warm up ", "continue")  # first-run costs
            for count in CONTEXT_WORDS:
                context = " ".join(words[:count]) + " "
                typed = " ".join(words[count : count + TYPED_WORDS]) + " "
                row = [count, len(context), len(typed)]
                for mode in modes:
                    times, read = keystrokes(client, context, typed, mode)
                    ordered = sorted(times)
                    row += [statistics.median(times), ordered[int(0.9 * (len(ordered) - 1))], read / len(times)]
                rows.append(row)
            context = " ".join(words[:100]) + " "
            plain = " ".join(words[100 : 100 + len(RAW_TYPED.split())]) + " "
            typed_rows = [
                (label, *keystrokes(client, context, typed, "continue"))
                for label, typed in (
                    ("plain words of the corpus", plain),
                    ("raw typed words (contractions, $50, 5%)", RAW_TYPED),
                )
            ]
    finally:
        service.stop()

    lines = [
        f"### Keystroke run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, CPU "
        "execution provider. Command: `python benchmarks/bench_keystrokes.py`. The default next-word model; "
        f"{TYPED_WORDS} words typed one character per request after a context of PTB validation text; one "
        "connection, sequential; latency seen by the client (HTTP included).",
        "",
        "| context words (chars) | continue: p50 / p90 ms | tokens read per keystroke "
        "| re-send to /suggest: p50 / p90 ms | tokens read per keystroke | re-send to /predict: p50 / p90 ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for count, chars, _, c50, c90, cread, s50, s90, sread, p50, p90, _ in rows:
        lines.append(
            f"| {count} ({chars:,}) | {c50 * 1e3:.2f} / {c90 * 1e3:.2f} | {cread:.2f} | {s50 * 1e3:.2f} / "
            f"{s90 * 1e3:.2f} | {sread:.0f} | {p50 * 1e3:.2f} / {p90 * 1e3:.2f} |"
        )
    first, last = rows[0], rows[-1]
    lines += [
        "",
        f"Continuing: p50 {first[3] * 1e3:.2f} ms at {first[0]} words, {last[3] * 1e3:.2f} ms at {last[0]} "
        f"(ratio {last[3] / first[3]:.2f}). Re-sending to /suggest: {first[6] * 1e3:.2f} to "
        f"{last[6] * 1e3:.2f} ms (ratio {last[6] / first[6]:.2f}); to /predict, which reads only the last 64 "
        f"tokens but still sends, parses and tokenizes the whole text: {first[9] * 1e3:.2f} to "
        f"{last[9] * 1e3:.2f} ms (ratio {last[9] / first[9]:.2f}).",
    ]
    lines += [
        "",
        f"Words as people type them, after the 100-word context, continuing from the state (one request per "
        f"character; the raw text is `{RAW_TYPED.strip()}`):",
        "",
        "| typed | keystrokes | p50 / p90 ms | tokens read per keystroke |",
        "| --- | --- | --- | --- |",
    ]
    for label, times, read in typed_rows:
        ordered = sorted(times)
        lines.append(
            f"| {label} | {len(times)} | {statistics.median(times) * 1e3:.2f} / "
            f"{ordered[int(0.9 * (len(ordered) - 1))] * 1e3:.2f} | {read / len(times):.2f} |"
        )
    publish("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
