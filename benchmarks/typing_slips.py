"""Typing slips: classifiers on held-out text with one-letter slips, read as typed and as the
service reads them by default (a word the vocabulary lacks read as its most frequent word one edit
away: `rnnserve_bundle.spelling`, `RNNSERVE_SPELLING`).

Each word of four letters or more is slipped with probability `--rates` (seeded): a letter replaced
by a neighbour on a QWERTY keyboard, a letter dropped, a neighbour inserted, two letters swapped or
one doubled, the slips people make on a keyboard or a phone. At rate 0 the text is as written,
which shows what the rule does to words it should leave alone (names, rare words).

- Sentiment: the default bundle's held-out SST-2 sentences (rebuilt as its training carved them),
  written as typed.
- Intent: SNIPS's validation requests (`benchmarks/intent_oos.py`'s split), in-scope accuracy with
  the bundle's own out-of-scope rule; and out-of-scope recall on the requests of the BANKING77
  categories its background class never saw and on `benchmarks/data/oos_probe.txt`, so that a
  correction that made an out-of-scope request look in scope would show.
- With `--banking BUNDLE`: a model trained on BANKING77 messages (`--banking-data`, the file it was
  trained on), accuracy on its own validation split.

Then what the rule costs: encoding one text and 32 texts with and without it, as written and
slipped, and with `--service SECONDS` 32 slipped sentences per request through two services, one
correcting and one reading as typed.

    python benchmarks/typing_slips.py [--rates 0 0.1 0.2] [--banking BUNDLE --banking-data CSV]
                                      [--service SECONDS] [--write training/REPORT.md]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_service import newest_bundle, setting_against  # noqa: E402
from benchmarks.bench_versions import encode_us  # noqa: E402
from benchmarks.intent_oos import prepare  # noqa: E402
from benchmarks.raw_text import PTB_VALID, as_typed, sentiment_validation, sst_as_typed, validation_split  # noqa: E402
from benchmarks.report import publish  # noqa: E402
from rnnserve_bundle.config import (  # noqa: E402
    TOKENIZER_FILE,
    BundleConfig,
)
from rnnserve_bundle.encoder import TextEncoder  # noqa: E402
from rnnserve_bundle.spelling import MIN_LETTERS, SEARCHES_PER_REQUEST  # noqa: E402
from training.data import Example, read_dataset  # noqa: E402
from training.evaluate import evaluate_bundle, language_model_score  # noqa: E402

SEED = 13
WORD = re.compile(r"[A-Za-z]+")
KEYBOARD = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict[str, str]:
    near: dict[str, str] = {}
    for row, keys in enumerate(KEYBOARD):
        for column, key in enumerate(keys):
            near[key] = "".join(
                KEYBOARD[r][c]
                for r in range(max(row - 1, 0), min(row + 2, len(KEYBOARD)))
                for c in range(max(column - 1, 0), min(column + 2, len(KEYBOARD[r])))
                if (r, c) != (row, column)
            )
    return near


NEIGHBOURS = _neighbours()


def slip(word: str, rng: random.Random) -> str:
    """One slip in `word`: a neighbour for a letter, a letter dropped, a neighbour added, two letters
    swapped or one doubled."""
    i = rng.randrange(len(word))
    kind = rng.choice(("replace", "drop", "add", "swap", "double"))
    near = NEIGHBOURS.get(word[i].lower())
    if kind == "replace" and near:
        return word[:i] + rng.choice(near) + word[i + 1 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "add" and near:
        return word[:i] + rng.choice(near) + word[i:]
    if kind == "swap" and i < len(word) - 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + word[i] + word[i:]


def with_slips(examples: list[Example], rate: float) -> list[Example]:
    rng = random.Random(SEED)

    def maybe(match: re.Match) -> str:
        word = match.group()
        return slip(word, rng) if len(word) >= MIN_LETTERS and rng.random() < rate else word

    return [Example(WORD.sub(maybe, e.text), e.label) for e in examples]


def with_held_letters(examples: list[Example], rate: float) -> list[Example]:
    """Each word of two letters or more, with probability `rate`, with its last vowel (or last
    letter) held for emphasis, three to five times in all: `soooo`, `goood`, `yesss`."""
    rng = random.Random(SEED)

    def maybe(match: re.Match) -> str:
        word = match.group()
        if len(word) < 2 or rng.random() >= rate:
            return word
        vowels = [i for i, ch in enumerate(word) if ch.lower() in "aeiouy"]
        i = vowels[-1] if vowels else len(word) - 1
        return word[: i + 1] + word[i] * rng.randint(2, 4) + word[i + 1 :]

    return [Example(WORD.sub(maybe, e.text), e.label) for e in examples]


def table(
    title: str,
    bundle: Path,
    sets: dict[str, tuple[list[Example], str]],
    rates: list[float],
    held: tuple[float, ...] | list[float] = (),
) -> list[str]:
    """One row per rate of slips (and of held letters): each set's metric read as typed and as
    corrected."""
    columns = " | ".join(f"{name}: as typed | {name}: corrected" for name in sets)
    rows = [f"{title} (`{bundle.relative_to(ROOT) if bundle.is_relative_to(ROOT) else bundle}`):", ""]
    rows += [f"| text | {columns} |", "| --- |" + " --- | --- |" * len(sets)]
    variants = [(f"{rate:g} slips per word", with_slips, rate) for rate in rates]
    variants += [(f"{rate:g} words with a held letter", with_held_letters, rate) for rate in held]
    for name, change, rate in variants:
        cells = []
        for examples, metric in sets.values():
            changed = change(examples, rate)
            cells += [
                f"{evaluate_bundle(bundle, changed, spelling=spelling)[metric]:.3f}" for spelling in (False, True)
            ]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*rows, ""]


def ptb_as_typed() -> list[Example]:
    rng = random.Random(SEED)
    return [Example(as_typed(e.text, rng), None) for e in read_dataset("text", PTB_VALID) if e.text.strip()]


def next_word_table(bundle: Path, typed: list[Example], rates: list[float]) -> list[str]:
    """Next-word on PTB validation sentences as typed (`raw_text.as_typed`), slipped: each position's
    next word as written scored after the prefix read as typed and as corrected, against the prefix
    as written. (Sentences whose slips change the number of tokens are left out.)"""
    config = BundleConfig.load(bundle)
    plain = TextEncoder.from_file(bundle / TOKENIZER_FILE, 1 << 30, False)
    spelled = TextEncoder.from_file(bundle / TOKENIZER_FILE, 1 << 30, False, spelling=True)

    rows = [
        f"Next-word, PTB validation sentences as typed, the next word as written (`{bundle.relative_to(ROOT)}`):",
        "",
        "| text | sentences | prefix as written: top-1 / top-5 / perplexity | slipped, as typed | slipped, corrected |",
        "| --- | --- | --- | --- | --- |",
    ]
    written = [e.ids for e in plain.encode([e.text for e in typed])]
    for rate in rates:
        slipped = [e.text for e in with_slips(typed, rate)]
        as_typed_ids = [e.ids for e in plain.encode(slipped)]
        corrected = [e.ids for e in spelled.encode(slipped)]
        kept = [i for i, w in enumerate(written) if len(w) == len(as_typed_ids[i]) == len(corrected[i])]
        truth = [written[i] for i in kept]
        cells = [
            language_model_score(bundle, config, prefixes, truth)
            for prefixes in (truth, [as_typed_ids[i] for i in kept], [corrected[i] for i in kept])
        ]
        rows.append(
            f"| {rate:g} slips per word | {len(kept):,} | "
            + " | ".join(f"{c['top1_accuracy']:.3f} / {c['top5_accuracy']:.3f} / {c['perplexity']:.1f}" for c in cells)
            + " |"
        )
    return [*rows, ""]


def cost_rows(bundle: Path, examples: list[Example], rate: float) -> list[str]:
    """Encoding time with and without the rule: one text per call (the mean over 32) and 32 texts."""
    rows = []
    for name, texts in (("as written", examples[:32]), (f"{rate:g} slips per word", with_slips(examples[:32], rate))):
        batch = [e.text for e in texts]
        cells = []
        for spelling in (False, True):
            one = statistics.mean(encode_us(bundle, 1, spelling=spelling, texts=[text]) for text in batch)
            cells.append((one, encode_us(bundle, len(batch), spelling=spelling, texts=batch)))
        (one_typed, all_typed), (one_spelled, all_spelled) = cells
        rows.append(
            f"| `{bundle.parent.name}/{bundle.name}`, {name} | {one_typed:.1f} us | {one_spelled:.1f} us "
            f"| {all_typed:.0f} us | {all_spelled:.0f} us |"
        )
    return rows


def worst_case_rows(bundle: Path, texts: int = 256, words: int = 64) -> list[str]:
    """The most unknown words the default limits let one request hold: `texts` texts of `words`
    random words of 4-8 letters (256 x 64 = RNNSERVE_MAX_TOKENS_PER_REQUEST's 16,384), each one a
    new search; encoded once, then again with every word remembered."""
    rng = random.Random(SEED)
    batch = [
        " ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 8))) for _ in range(words))
        for _ in range(texts)
    ]
    config = BundleConfig.load(bundle)
    cells = []
    for spelling in (False, True):
        encoder = TextEncoder.from_file(
            bundle / TOKENIZER_FILE, config.max_sequence_length, False, windows=True, spelling=spelling
        )
        for _ in range(2):
            started = time.perf_counter()
            encoder.encode(batch, max_searches=SEARCHES_PER_REQUEST)
            cells.append((time.perf_counter() - started) * 1000)
    return [
        "",
        f"The worst case the default limits allow: {texts} texts of {words} random words of 4-8 letters in one "
        f"request ({texts * words:,} tokens, every one unknown), `{bundle.parent.name}/{bundle.name}`: "
        f"{cells[0]:.0f} ms to encode as typed, {cells[2]:.0f} ms corrected (the service looks up at most "
        f"{SEARCHES_PER_REQUEST:,} words it has not seen before per request; past them a word stays unknown), "
        f"{cells[3]:.0f} ms once those are remembered. A request over the token limit is refused before any word "
        "is looked up.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentiment", type=Path, default=newest_bundle("sentiment"))
    parser.add_argument("--intent", type=Path, default=newest_bundle("intent"))
    parser.add_argument("--next-word", type=Path, default=newest_bundle("next-word"))
    parser.add_argument("--banking", type=Path, help="a bundle trained on BANKING77 messages")
    parser.add_argument("--banking-data", type=Path, help="the CSV file it was trained on")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.1, 0.2])
    parser.add_argument("--held", type=float, nargs="*", default=[0.1, 0.2], help="rates of held letters")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "typing-slips")
    parser.add_argument("--service", type=int, default=0, help="seconds per wrk run; 0: no service runs")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # as `python -m service` runs
    sentiment = [Example(sst_as_typed(e.text), e.label) for e in sentiment_validation(args.sentiment)]
    splits = prepare(args.work)
    intent = {
        "in-scope accuracy": (splits["valid"], "in_scope_accuracy"),
        "unseen BANKING77 categories: oos recall": (splits["oos_test"], "oos_recall"),
        "probe: oos recall": (splits["probe"], "oos_recall"),
    }
    lines = [
        "### Typing slips",
        "",
        f"Command: `python benchmarks/typing_slips.py`. Each word of {MIN_LETTERS} letters or more slipped with "
        f"the row's probability (seed {SEED}; example: `{with_slips(splits['valid'][:1], 1.0)[0].text}` for "
        f"`{splits['valid'][0].text}`), or each word of two letters or more given a held letter (its last vowel, "
        f"or last letter, three to five times: `{with_held_letters(splits['valid'][:1], 1.0)[0].text}`); each "
        "metric read as typed (`--spelling as-typed`) and as the service reads it by default (corrected).",
        "",
        *table(
            "Sentiment, held-out SST-2 sentences, accuracy",
            args.sentiment,
            {"accuracy": (sentiment, "accuracy")},
            args.rates,
            args.held,
        ),
        *table(
            "Intent, SNIPS validation requests and out-of-scope requests", args.intent, intent, args.rates, args.held
        ),
    ]
    ptb = ptb_as_typed()
    lines += next_word_table(args.next_word, ptb, args.rates)
    if args.banking is not None:
        banking = validation_split(args.banking, "csv", args.banking_data)
        lines += table(
            "BANKING77, the model's validation split, accuracy",
            args.banking,
            {"accuracy": (banking, "accuracy")},
            args.rates,
        )
    rate = max(args.rates)
    lines += [
        "Encoding cost (`bench_versions.encode_us`: the service's encoder, its tokenizer on one thread as "
        "`python -m service` runs it), per call:",
        "",
        "| bundle, texts | 1 text: as typed | 1 text: corrected | 32 texts: as typed | 32 texts: corrected |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += cost_rows(args.sentiment, sentiment, rate) + cost_rows(args.intent, splits["valid"], rate)
    lines += cost_rows(args.next_word, ptb, rate)
    lines += worst_case_rows(args.intent)
    if args.service:
        slipped = [e.text for e in with_slips(sentiment[:32], rate)]
        spellings = {"as typed": "as-typed", "corrected": "correct"}
        lines += [
            "",
            f"Through the service, the 32 sentences above with {rate:g} slips per word in each request (`--service "
            f"{args.service}`: 2 alternating rounds of {args.service} s; requests/s and latencies, medians over the "
            "rounds):",
            "",
            *setting_against("RNNSERVE_SPELLING", spellings, {"model": "sentiment", "inputs": slipped}, args.service),
        ]
    publish("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
