"""Raw typed text against the corpus's tokenized text, on the same sentences.

Next-word: the held-out sentences (PTB validation) are written back the way a person types them:
contractions joined (`did n't` -> `didn't`, `it 's` -> `it's`), numbers as digits (`N` -> `12`,
`1,500`, `3.5`, `1990`, seeded; `$ N` -> `$12`, `N N` -> `12%`), a comma before "but", "which",
"although" and "while" (the corpus dropped every comma), the first letter capitalised and a final
period. Words the corpus replaced by `<unk>` become a made-up word, which is as unknown
to the model as the rare word a person would have typed. Each bundle is scored on both versions
with `evaluate` (per-sentence perplexity and next-word accuracy, ONNX Runtime on the exported graph).
Then the same sentences three at a time, as an editor's paragraph: the corpus's lines joined by the
boundary its stream training read between them (`<eos> <bos>`), against the typed sentences joined
by a space, so that a sentence end inside a text is measured too.

Then the typed sentences that hold an apostrophe (a contraction or a possessive) with it left
out, as people type in a hurry (`didnt`, `Im`, `its`); and all of them as a phone's keyboard writes
them: typographic apostrophes (`didn’t`) and the sentence trailing off in an ellipsis (`…`) instead
of its period; and as pasted from a web page, with characters that show nothing (a byte-order
mark, soft hyphens inside long words, zero-width spaces after commas).

Sentiment: the default bundle's own held-out sentences (the sentence-grouped SST-2 validation split,
rebuilt exactly as training carved it) are written back the same way (contractions joined, no
space before punctuation, quotes as typed, first letter capitalised) and scored for accuracy, and
the typed ones again without apostrophes, on a phone, pasted and as a web page's HTML holds them
(scraped: references for quotes and apostrophes, line breaks, a paragraph).

Intent: the SNIPS validation requests of `benchmarks/intent_oos.py`'s split as written, on a phone,
pasted and scraped, scored for in-scope accuracy with each bundle's out-of-scope rule.

An empty `--sentiment` or `--intent` leaves that task out.

    python benchmarks/raw_text.py [--models BUNDLE ...] [--sentiment BUNDLE ...] [--intent BUNDLE ...]
                                  [--write training/REPORT.md]
"""

from __future__ import annotations

import argparse
import html
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tokenizers import Tokenizer  # noqa: E402

from benchmarks.bench_service import newest_bundle  # noqa: E402
from benchmarks.report import publish  # noqa: E402
from rnnserve_bundle.config import (  # noqa: E402
    BOS_TOKEN,
    EOS_TOKEN,
    SPECIAL_TOKENS,
    TOKENIZER_FILE,
    UNK_TOKEN,
    BundleConfig,
)
from training.data import Example, read_dataset  # noqa: E402
from training.evaluate import evaluate_bundle  # noqa: E402

PTB_VALID = ROOT.parent / "shared" / "datasets" / "ptb" / "valid.txt"
SST_TRAIN = ROOT.parent / "shared" / "datasets" / "sst2" / "train.tsv"
NUMBERS = ("12", "1,500", "3.5", "1990", "250", "7", "40", "2.25")
SEED = 13
PARAGRAPH = 3  # sentences


def as_typed(sentence: str, rng: random.Random) -> str:
    """A treebank-tokenized PTB sentence as a person would type it."""
    text = " " + " ".join(sentence.split()) + " "
    text = text.replace(" <unk> ", " blorfed ")
    text = text.replace(" <unk> ", " blorfed ")  # overlapping matches
    text = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)(?= )", r"\1", text)
    text = re.sub(r" N N(?= )", lambda _: f" {rng.choice(NUMBERS)}%", text)
    text = re.sub(r" \$ N(?= )", lambda _: f" ${rng.choice(NUMBERS)}", text)
    text = re.sub(r" N(?= )", lambda _: f" {rng.choice(NUMBERS)}", text)
    # The corpus dropped the commas; a writer puts them before these words at least.
    text = re.sub(r" (but|which|although|while) ", r", \1 ", text)
    text = text.strip()
    return (text[:1].upper() + text[1:] + ".") if text else text


def sst_as_typed(sentence: str) -> str:
    """A tokenized SST sentence as typed: `it 's a charming , funny film .` -> `It's a charming, funny film.`"""
    text = " " + " ".join(sentence.split()) + " "
    text = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)(?= )", r"\1", text)
    text = text.replace(" `` ", ' "').replace(" '' ", '" ')
    text = re.sub(r" ([,.!?;:)])(?= )", r"\1", text)
    text = text.replace("( ", "(").strip()
    return text[:1].upper() + text[1:]


def without_apostrophes(text: str) -> str:
    """Typed as many people type in a hurry: `didn't`, `I'm`, `it's` as `didnt`, `Im`, `its`."""
    return re.sub(r"(?<=\w)'(?=(?:t|s|re|ve|ll|d|m)\b)", "", text)


def as_on_a_phone(text: str) -> str:
    """Typed on a phone: `’` for each apostrophe, and an ellipsis character for the final period."""
    text = text.replace("'", "\u2019")
    return text[:-1] + "\u2026" if text.endswith(".") else text


def as_pasted(text: str) -> str:
    """Pasted from a web page: a byte-order mark first, a soft hyphen in the middle of each word of 8
    letters or more (a page's hyphenation points) and a zero-width space after each comma."""
    text = re.sub(r"[^\W\d_]{8,}", lambda m: m[0][: len(m[0]) // 2] + "\u00ad" + m[0][len(m[0]) // 2 :], text)
    return "\ufeff" + text.replace(", ", ",\u200b ")


def as_scraped(text: str) -> str:
    """As a web page's HTML holds it (a review exported from a site): characters escaped as
    references (`&#x27;`, `&quot;`, `&amp;`), a line break after each comma and the text in a
    paragraph followed by two line breaks, as IMDB's reviews run."""
    return "<p>" + html.escape(text).replace(", ", ",<br />") + "</p><br /><br />"


def sentiment_validation(bundle: Path) -> list[Example]:
    """A sentiment bundle's held-out SST-2 sentences, rebuilt exactly as its training carved them."""
    return validation_split(bundle, "sst2", SST_TRAIN)


def validation_split(bundle: Path, data_format: str, data: Path) -> list[Example]:
    """The validation split a classifier's training carved from `data`, rebuilt exactly."""
    from training.pipeline import TrainOptions, load_splits

    config = BundleConfig.load(bundle)
    options = TrainOptions(task=config.task, data_format=data_format, data=data, out=bundle, valid_split="auto")
    _, validation, _ = load_splits(options, config.training["hyperparameters"].get("seed", 13))
    if len(validation) != config.metrics["validation"]["examples"]:
        raise RuntimeError("the rebuilt validation split differs from the one in config.json")
    return validation


def sentiment_rows(bundles: list[Path]) -> list[str]:
    validation = sentiment_validation(bundles[0])
    typed = [Example(sst_as_typed(e.text), e.label) for e in validation]
    bare = [Example(without_apostrophes(e.text), e.label) for e in typed]
    phone = [Example(as_on_a_phone(e.text), e.label) for e in typed]
    pasted = [Example(as_pasted(e.text), e.label) for e in typed]
    scraped = [Example(as_scraped(e.text), e.label) for e in typed]
    rows = [
        "",
        f"Sentiment: the {len(validation)} held-out sentences of the default bundle's validation split, as "
        f"tokenized, as typed (example: `{validation[3].text}` typed as `{typed[3].text}`) and as typed "
        f"without apostrophes ({sum(a.text != b.text for a, b in zip(typed, bare, strict=True))} sentences change), "
        "on a phone and pasted (as the next-word measures above), and scraped: as a web page's HTML holds "
        f"the typed sentence (example: `{scraped[3].text}`).",
        "",
        "| bundle | tokenized: accuracy | typed: accuracy | typed without apostrophes: accuracy "
        "| on a phone: accuracy | pasted: accuracy | scraped: accuracy |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for bundle in bundles:
        splits = (validation, typed, bare, phone, pasted, scraped)
        scores = [evaluate_bundle(bundle, split)["accuracy"] for split in splits]
        rows.append(f"| `{_name(bundle)}` | " + " | ".join(f"{x:.3f}" for x in scores) + " |")
    return rows


def intent_rows(bundles: list[Path]) -> list[str]:
    """In-scope accuracy (the right intent, not `oos`) on SNIPS's validation requests as written, on a
    phone, pasted and scraped, with each bundle's own out-of-scope rule."""
    from benchmarks.intent_oos import snips_splits

    _, valid, _ = snips_splits()
    versions = {
        "as written": valid,
        "on a phone": [Example(as_on_a_phone(e.text), e.label) for e in valid],
        "pasted": [Example(as_pasted(e.text), e.label) for e in valid],
        "scraped": [Example(as_scraped(e.text), e.label) for e in valid],
    }
    rows = [
        "",
        f"Intent: the {len(valid):,} SNIPS validation requests of `benchmarks/intent_oos.py`'s split, as written, "
        f"on a phone, pasted and scraped (example: `{versions['pasted'][0].text!a}`); in-scope accuracy with each "
        "bundle's out-of-scope rule.",
        "",
        "| bundle | " + " | ".join(f"{name}: in-scope accuracy" for name in versions) + " |",
        "| --- |" + " --- |" * len(versions),
    ]
    for bundle in bundles:
        scores = [evaluate_bundle(bundle, split)["in_scope_accuracy"] for split in versions.values()]
        rows.append(f"| `{_name(bundle)}` | " + " | ".join(f"{x:.3f}" for x in scores) + " |")
    return rows


def paragraph_rows(bundles: list[Path], tokenized: list[str], typed: list[str]) -> list[str]:
    """Perplexity over paragraphs of consecutive sentences, tokenized and typed."""
    starts = range(0, len(tokenized) - PARAGRAPH + 1, PARAGRAPH)
    corpus = [Example(f" {EOS_TOKEN} {BOS_TOKEN} ".join(tokenized[i : i + PARAGRAPH]), None) for i in starts]
    written = [Example(" ".join(typed[i : i + PARAGRAPH]), None) for i in starts]
    rows = [
        "",
        f"Paragraphs: the same sentences {PARAGRAPH} at a time ({len(corpus):,} paragraphs), the corpus's joined "
        f"by `{EOS_TOKEN} {BOS_TOKEN}`, the typed ones by a space.",
        "",
    ]
    return rows + perplexity_table(bundles, corpus, written)


def perplexity_table(
    bundles: list[Path],
    tokenized: list[Example],
    typed: list[Example],
    names: tuple[str, str] = ("tokenized", "typed"),
    unknown: bool = False,
) -> list[str]:
    """Each next-word bundle's perplexity and top-1 on two versions of the same texts (by default
    the tokenized and the typed); with `unknown`, also the share of their words read as `<unk>`."""
    x, y = names
    extra = f" {x}: `<unk>` | {y}: `<unk>` |" if unknown else ""
    rows = [
        f"| bundle | {x}: perplexity | {y}: perplexity | {y} / {x} | {x}: top-1 | {y}: top-1 |{extra}",
        "| --- | --- | --- | --- | --- | --- |" + (" --- | --- |" if unknown else ""),
    ]
    for bundle in bundles:
        a, b = evaluate_bundle(bundle, tokenized), evaluate_bundle(bundle, typed)
        shares = f" {unknown_share(bundle, tokenized):.2%} | {unknown_share(bundle, typed):.2%} |" if unknown else ""
        rows.append(
            f"| `{_name(bundle)}` | {a['perplexity']:.1f} | {b['perplexity']:.1f} | "
            f"{b['perplexity'] / a['perplexity']:.3f} | {a['top1_accuracy']:.3f} | {b['top1_accuracy']:.3f} |{shares}"
        )
    return rows


def unknown_share(bundle: Path, texts: list[Example]) -> float:
    """The share of the texts' words (the boundary tokens aside) that the bundle's tokenizer reads as `<unk>`."""
    tokenizer = Tokenizer.from_file(str(bundle / TOKENIZER_FILE))
    boundaries = set(SPECIAL_TOKENS) - {UNK_TOKEN}
    words = [t for e in tokenizer.encode_batch([x.text for x in texts]) for t in e.tokens if t not in boundaries]
    return sum(t == UNK_TOKEN for t in words) / max(len(words), 1)


def _name(bundle: Path) -> str:
    return str(bundle.relative_to(ROOT) if bundle.is_relative_to(ROOT) else bundle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # By default the bundles the service serves: each default model's newest version.
    parser.add_argument("--models", nargs="+", type=Path, default=[newest_bundle("next-word")])
    parser.add_argument("--sentiment", nargs="*", type=Path, default=[newest_bundle("sentiment")])
    parser.add_argument("--intent", nargs="*", type=Path, default=[newest_bundle("intent")])
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    tokenized = [e for e in read_dataset("text", PTB_VALID) if e.text.strip()]
    rng = random.Random(SEED)
    typed = [Example(as_typed(e.text, rng), None) for e in tokenized]
    lines = [
        "### Raw typed text against tokenized text (next-word)",
        "",
        f"Command: `python benchmarks/raw_text.py`. {len(tokenized):,} PTB validation sentences, each scored as "
        "the corpus writes it and as a person types it (example below); per-sentence perplexity and "
        "next-word accuracy from `evaluate` on the exported graph.",
        "",
        f"Example: `{tokenized[5].text.strip()}` typed as `{typed[5].text}`.",
        "",
        *perplexity_table(args.models, tokenized, typed),
    ]
    lines += paragraph_rows(args.models, [e.text for e in tokenized], [e.text for e in typed])
    bare = [Example(without_apostrophes(e.text), None) for e in typed]
    changed = [i for i, (a, b) in enumerate(zip(typed, bare, strict=True)) if a.text != b.text]
    lines += [
        "",
        f"Apostrophes left out: the {len(changed):,} typed sentences that hold one (`didn't` typed `didnt`), "
        f"as typed and without them (example: `{bare[changed[0]].text}`).",
        "",
        *perplexity_table(
            args.models, [typed[i] for i in changed], [bare[i] for i in changed], ("typed", "without apostrophes")
        ),
    ]
    phone = [Example(as_on_a_phone(e.text), None) for e in typed]
    lines += [
        "",
        f"On a phone: the {len(typed):,} typed sentences with typographic apostrophes and a final ellipsis "
        f"(example: `{phone[changed[0]].text}`). Perplexity alone would flatter a tokenizer that reads "
        "the last word as `<unk>` (an unknown word is an easy guess), so the share of the words read "
        "as `<unk>` is given too.",
        "",
        *perplexity_table(args.models, typed, phone, ("typed", "on a phone"), unknown=True),
    ]
    pasted = [Example(as_pasted(e.text), None) for e in typed]
    lines += [
        "",
        f"Pasted from a web page: the {len(typed):,} typed sentences with a byte-order mark first, a soft hyphen "
        "inside each word of 8 letters or more and a zero-width space after each comma (characters that show "
        f"nothing; example: `{pasted[changed[0]].text!a}`).",
        "",
        *perplexity_table(args.models, typed, pasted, ("typed", "pasted"), unknown=True),
    ]
    if args.sentiment:
        lines += sentiment_rows(args.sentiment)
    if args.intent:
        lines += intent_rows(args.intent)
    publish("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
