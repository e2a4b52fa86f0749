"""Long texts for a classifier: its first `max_sequence_length` tokens against the whole text read
in windows of whole sentences (what the service answers: the mean of the windows' probabilities).

No corpus in `../shared` has long reviews, so they are built from the default sentiment bundle's
held-out sentences (its sentence-grouped SST-2 validation split, rebuilt as training carved it, each
written as typed): per label, the sentences are shuffled and joined `--sentences` at a time into
one review of that label, over `--shuffles` shuffles. A review made of sentences of one label is
the easy case for reading the whole: a real review mixes praise and complaint, and its label is the
writer's verdict. What this measures is how much of a long text truncation throws away.

Then what windows cost: encoding texts that fit one window, and with `--service SECONDS` one long
review per request through two services, one reading it whole and one cutting it.

    python benchmarks/long_texts.py [--bundles BUNDLE ...] [--sentences 3 6 10] [--shuffles 5]
                                    [--service SECONDS] [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_service import newest_bundle, setting_against  # noqa: E402
from benchmarks.bench_versions import encode_us  # noqa: E402
from benchmarks.raw_text import sentiment_validation, sst_as_typed  # noqa: E402
from benchmarks.report import publish  # noqa: E402
from rnnserve_bundle.config import TOKENIZER_FILE, BundleConfig  # noqa: E402
from rnnserve_bundle.encoder import TextEncoder  # noqa: E402
from rnnserve_bundle.tensors import softmax  # noqa: E402
from training.data import Example  # noqa: E402
from training.evaluate import classifier_logits, classifier_probabilities  # noqa: E402


def held_out_sentences(bundle: Path) -> list[Example]:
    return [Example(sst_as_typed(e.text), e.label) for e in sentiment_validation(bundle)]


def reviews(sentences: list[Example], per_review: int, seed: int) -> list[Example]:
    rng = random.Random(seed)
    built = []
    for label in sorted({e.label for e in sentences}, key=str):
        texts = [e.text for e in sentences if e.label == label]
        rng.shuffle(texts)
        built += [
            Example(" ".join(texts[i : i + per_review]), label)
            for i in range(0, len(texts) - per_review + 1, per_review)
        ]
    return built


def short_text_cost(bundle: Path) -> list[str]:
    """What windows cost a text that fits one: encoding the service benchmark's 32 texts (all
    shorter than a window) with and without them, medians of 7 alternating rounds."""
    rounds = [{windows: encode_us(bundle, 32, windows=windows) for windows in (False, True)} for _ in range(7)]
    cut, whole = (statistics.median(r[w] for r in rounds) for w in (False, True))
    return [
        "",
        f"Texts that fit one window (the service benchmark's 32 texts, `{_name(bundle)}`): {cut:.0f} us to encode "
        f"them cutting long texts, {whole:.0f} us reading long texts in windows (medians of 7 alternating rounds).",
    ]


def service_cost(review: str, seconds: int, rounds: int = 2) -> list[str]:
    """One long review per request through the service, read whole (the default) against cut to its
    first window (`RNNSERVE_LONG_TEXTS=truncate`), with 1 and 16 connections."""
    request = {"model": "sentiment", "inputs": [review]}
    modes = {"cut to the first window": "truncate", "read whole": "windows"}
    return [
        "",
        f"Through the service, one review of {len(review.split())} words per request (`--service {seconds}`: "
        f"{rounds} alternating rounds of {seconds} s; requests/s and latencies, medians over the rounds):",
        "",
        *setting_against("RNNSERVE_LONG_TEXTS", modes, request, seconds, rounds),
    ]


def _name(bundle: Path) -> str:
    return str(bundle.resolve().relative_to(ROOT)) if bundle.resolve().is_relative_to(ROOT) else str(bundle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", nargs="+", type=Path, default=[newest_bundle("sentiment")])
    parser.add_argument("--sentences", nargs="+", type=int, default=[3, 6, 10])
    parser.add_argument("--shuffles", type=int, default=5)
    parser.add_argument("--service", type=int, default=0, help="seconds per wrk run; 0: no service runs")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    sentences = held_out_sentences(args.bundles[0])
    lines = [
        "### Long texts: the first window against the whole text in windows",
        "",
        f"Command: `python benchmarks/long_texts.py --sentences {' '.join(map(str, args.sentences))} "
        f"--shuffles {args.shuffles}`. Reviews of one label built from the {len(sentences)} held-out sentences "
        "(typed) of the default sentiment bundle's validation split; accuracy, mean over the shuffles.",
        "",
        "| bundle | sentences per review | reviews | mean tokens | longer than the window | first window: accuracy "
        "| whole, in windows: accuracy | windows per long review |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for bundle in args.bundles:
        config = BundleConfig.load(bundle)
        encoder = TextEncoder.from_file(bundle / TOKENIZER_FILE, config.max_sequence_length, False, windows=True)
        for per_review in args.sentences:
            first, whole, tokens, long_share, windows = [], [], [], [], []
            for seed in range(args.shuffles):
                built = reviews(sentences, per_review, seed)
                texts = [e.text for e in built]
                truth = np.array([config.labels.index(e.label) for e in built])
                encoded = encoder.encode(texts)
                tokens.append(statistics.mean(e.tokens for e in encoded))
                long_share.append(statistics.mean(bool(e.more) for e in encoded))
                windows += [len(e.windows) for e in encoded if e.more]
                start = softmax(classifier_logits(bundle, config, texts) / config.temperature)
                first.append(float((start.argmax(1) == truth).mean()))
                read = classifier_probabilities(bundle, config, texts)
                whole.append(float((read.argmax(1) == truth).mean()))
            lines.append(
                f"| `{_name(bundle)}` | {per_review} | {len(built)} | {statistics.mean(tokens):.0f} | "
                f"{statistics.mean(long_share):.0%} | {statistics.mean(first):.3f} | {statistics.mean(whole):.3f} | "
                f"{statistics.mean(windows) if windows else 1:.1f} |"
            )
    lines += short_text_cost(args.bundles[0])
    if args.service:
        lines += service_cost(reviews(sentences, max(args.sentences), 0)[0].text, args.service)
    publish("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
