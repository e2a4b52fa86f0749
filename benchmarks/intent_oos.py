"""Out-of-scope detection for a chatbot's intent model: which method, at which operating point,
measured on requests the model never saw.

Data (all from `../shared/datasets`, split with a fixed seed; nothing here is tuned on a test split):
- in scope: SNIPS 2017 (7 intents), carved into train / validation / test (10% each held out);
- out of scope, request-like: BANKING77's customer messages, which lie outside every SNIPS intent.
  Its 77 categories are split: 20 categories are held out whole as the out-of-scope *test* (kinds
  of request the model never saw), the other 57 train the background class and validate;
- a probe of 71 hand-written requests from other domains (time, recipes, travel, small talk, home,
  work; `benchmarks/data/oos_probe.txt`), reported only, never used for a choice.

Two models are trained with the project's CLI on the same splits: one on the in-scope data alone
(out of scope only by a confidence threshold) and one with the background class. For each, the
methods the field uses are scored on the same held-out texts: threshold on the calibrated top
probability, the background class alone, the class plus a threshold on in-scope confidence, the
energy score (log-sum-exp of the in-scope logits) and the margin between the two best intents.
Each method's threshold is chosen on validation at the asked operating point, then applied to test.

With `--seeds 13 1 7` the background-class model is trained once per seed (initialisation, batch
order, word dropout; the splits stay) and each bundle's own rule, as `config.json` holds it, is
scored on the same test texts: mean ± standard deviation of what the shipped model does. An
ensemble's members take the seeds `seed`, `seed + 1`, ... and here every seed trains on the same
splits, so seeds closer than the member count (1 and 2) share members and understate the spread.

    python benchmarks/intent_oos.py [--work runs/intent-oos] [--seeds 13 1 7] [--ship models/intent/7]
                                    [--write training/REPORT.md]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.report import mean_std, publish  # noqa: E402
from rnnserve_bundle.config import BundleConfig  # noqa: E402
from rnnserve_bundle.tensors import softmax  # noqa: E402
from training.data import OUT_OF_SCOPE, Example, carve_validation, read_dataset, write_csv  # noqa: E402
from training.evaluate import classifier_logits  # noqa: E402
from training.out_of_scope import OperatingPoint, choose  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
PROBE = ROOT / "benchmarks" / "data" / "oos_probe.txt"
SEED = 13
HELD_OUT_CATEGORIES = 20
# The chatbot's requirement is in-scope accuracy >= 0.97 on held-out requests; on these 1,378
# validation requests the models read about a point higher than on test (intent/3: 0.983 against
# 0.973), so validation is held to 0.985.
TARGET_IN_SCOPE = 0.985


def snips_splits() -> tuple[list[Example], list[Example], list[Example]]:
    """SNIPS's train, validation and test requests (80/10/10 of its training files, seed 13)."""
    snips = read_dataset("snips", SHARED / "snips" / "train")
    rest, test = carve_validation(snips, 0.1, SEED)
    train, valid = carve_validation(rest, 1 / 9, SEED)  # 10% of the whole
    return train, valid, test


def prepare(work: Path) -> dict[str, list[Example]]:
    train, valid, test = snips_splits()
    banking = read_dataset("csv", SHARED / "banking77" / "train.csv", label_field="category")
    categories = sorted({e.label for e in banking})
    random.Random(SEED).shuffle(categories)
    unseen = set(categories[:HELD_OUT_CATEGORIES])
    background = [Example(e.text, OUT_OF_SCOPE) for e in banking if e.label not in unseen]
    bg_train, bg_valid = carve_validation(background, 0.1, SEED)
    probe = [line.strip() for line in PROBE.read_text(encoding="utf-8").splitlines() if line.strip()]
    splits = {
        "train": train,
        "valid": valid,
        "test": test,
        "bg_train": bg_train,
        "bg_valid": bg_valid,
        "oos_test": [Example(e.text, OUT_OF_SCOPE) for e in banking if e.label in unseen],
        "probe": [Example(text, OUT_OF_SCOPE) for text in probe],
    }
    for name in ("train", "valid", "bg_valid"):
        write_csv(work / "data" / f"{name}.csv", splits[name])
    write_csv(work / "data" / "train_with_background.csv", [*train, *bg_train])
    (work / "data" / "split.json").write_text(json.dumps({"unseen_categories": sorted(unseen)}, indent=2))
    return splits


def train(work: Path, name: str, train_file: str, *extra: str) -> Path:
    out = work / "models" / name / "1"
    if not (out / "config.json").exists():
        data = work / "data"
        # The validation file joins in-scope and background validation texts in one labelled CSV.
        valid = write_csv(
            data / f"valid_{name}.csv",
            [*read_dataset("csv", data / "valid.csv"), *read_dataset("csv", data / "bg_valid.csv")],
        )
        command = [
            sys.executable, "-m", "training", "train", "--task", "intent", "--format", "csv",
            "--data", str(data / train_file), "--valid-data", str(valid), "--out", str(out),
            "--run-dir", str(work / "runs" / name), *extra,
        ]  # fmt: skip
        subprocess.run(command, cwd=ROOT, check=True)
    return out


Score = Callable[[np.ndarray, np.ndarray, list[str]], np.ndarray]  # higher: more in scope


def in_scope_columns(labels: list[str]) -> np.ndarray:
    return np.array([i for i, label in enumerate(labels) if label != OUT_OF_SCOPE])


def max_probability(logits: np.ndarray, probabilities: np.ndarray, labels: list[str]) -> np.ndarray:
    return probabilities[:, in_scope_columns(labels)].max(axis=1)


def energy(logits: np.ndarray, probabilities: np.ndarray, labels: list[str]) -> np.ndarray:
    z = logits[:, in_scope_columns(labels)]
    top = z.max(axis=1)
    return top + np.log(np.exp(z - top[:, None]).sum(axis=1))


def margin(logits: np.ndarray, probabilities: np.ndarray, labels: list[str]) -> np.ndarray:
    ordered = np.sort(probabilities[:, in_scope_columns(labels)], axis=1)
    return ordered[:, -1] - ordered[:, -2]


class Scored:
    """One model's outputs on one split: the best in-scope intent, whether it is right, and
    whether the background class wins."""

    def __init__(self, bundle: Path, examples: list[Example]) -> None:
        config = BundleConfig.load(bundle)
        self.labels = config.labels
        self.logits = classifier_logits(bundle, config, [e.text for e in examples])
        self.probabilities = softmax(self.logits / config.temperature)
        columns = in_scope_columns(self.labels)
        best = columns[self.probabilities[:, columns].argmax(axis=1)]
        self.correct = np.array([self.labels[b] == e.label for b, e in zip(best, examples, strict=True)])
        self.out_scope = np.array([e.label == OUT_OF_SCOPE for e in examples])
        has_class = OUT_OF_SCOPE in self.labels
        self.class_says_oos = (
            self.probabilities.argmax(axis=1) == self.labels.index(OUT_OF_SCOPE)
            if has_class
            else np.zeros(len(examples), dtype=bool)
        )

    def rates(self, score: np.ndarray, threshold: float, use_class: bool) -> tuple[float, float]:
        abstain = score < threshold
        if use_class:
            abstain |= self.class_says_oos
        accuracy = float((self.correct & ~abstain)[~self.out_scope].mean()) if (~self.out_scope).any() else np.nan
        recall = float(abstain[self.out_scope].mean()) if self.out_scope.any() else np.nan
        return accuracy, recall


def sweep(valid: Scored, score: np.ndarray, use_class: bool) -> list[tuple[float, float, float]]:
    candidates = np.unique(np.concatenate([score, [score.min() - 1]]))
    return [(float(t), *valid.rates(score, t, use_class)) for t in candidates]


def pick(curve: list[tuple[float, float, float]], target: float | None) -> float:
    """The threshold training's rule chooses: balanced (target None) or in-scope accuracy >= target."""
    point = OperatingPoint("balanced") if target is None else OperatingPoint("in-scope-accuracy", target)
    return float(curve[choose(np.array(curve), point)][0])


def seed_table(
    seeded: dict[int, Path],
    valid_examples: list[Example],
    tests: dict[str, list[Example]],
    scored: Callable[[Path, str, list[Example]], Scored],
) -> list[str]:
    """Each seed's background-class bundle under its own rule (`config.json`), then mean ± std."""
    names = ["valid", *tests]
    lines = [
        "The background-class model over seeds, each under the rule its own `config.json` holds "
        "(in-scope accuracy / out-of-scope recall; SNIPS test in scope in both test columns):",
        "",
        "| seed | threshold | validation | " + " | ".join(f"test: {name}" for name in tests) + " |",
        "| --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for seed, bundle in seeded.items():
        rule = BundleConfig.load(bundle).out_of_scope
        assert rule is not None and rule.method == "class+threshold"
        for name, examples in [("valid", valid_examples), *tests.items()]:
            split = scored(bundle, name, examples)
            score = max_probability(split.logits, split.probabilities, split.labels)
            figures[name].append(split.rates(score, rule.threshold, use_class=True))
        cells = [f"{a:.3f} / {r:.3f}" for a, r in (figures[name][-1] for name in names)]
        lines.append(f"| {seed} | {rule.threshold:.3f} | " + " | ".join(cells) + " |")
    cells = [
        f"**{mean_std([a for a, _ in figures[name]])} / {mean_std([r for _, r in figures[name]])}**" for name in names
    ]
    lines.append("| mean ± std | - | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "intent-oos")
    parser.add_argument("--ship", type=Path, help="also copy the background-class bundle here")
    parser.add_argument("--write", type=Path, help="append the report to this Markdown file")
    parser.add_argument("--seeds", type=int, nargs="+", default=[SEED], help="seeds of the background-class model")
    args = parser.parse_args()
    splits = prepare(args.work)
    seeds = sorted(set(args.seeds))
    if any(b - a < 4 for a, b in pairwise(seeds)):  # 4: the intent default's members
        print("note: seeds closer than 4 share ensemble members here; their spread is understated", file=sys.stderr)
    seeded = {
        seed: train(args.work, "background" if seed == SEED else f"background-seed-{seed}", "train_with_background.csv",
                    "--seed", str(seed), "--oos-operating-point", f"in-scope-accuracy={TARGET_IN_SCOPE}")
        for seed in dict.fromkeys([SEED, *args.seeds])
    }  # fmt: skip
    background = seeded[SEED]
    plain = train(args.work, "threshold-only", "train.csv", "--oos-threshold")

    valid_examples = [*splits["valid"], *splits["bg_valid"]]
    tests = {
        "unseen BANKING77 categories": [*splits["test"], *splits["oos_test"]],
        "hand-written probe": [*splits["test"], *splits["probe"]],
    }
    methods: list[tuple[str, Path, Score, bool]] = [
        ("max probability (no background class)", plain, max_probability, False),
        ("energy (no background class)", plain, energy, False),
        ("margin (no background class)", plain, margin, False),
        ("background class alone", background, max_probability, True),
        ("background class + max probability", background, max_probability, True),
        ("background class + energy", background, energy, True),
    ]
    # The energy score needs one model's raw logits. An ensemble's graph answers the log of its
    # members' mean probability, whose log-sum-exp over the intents is log(1) = 0 without a
    # background class (and log(1 - p(oos)) with one): no energy score to measure.
    ensembles = [b for b in (plain, background) if BundleConfig.load(b).architecture.members > 1]
    methods = [m for m in methods if not (m[2] is energy and m[1] in ensembles)]
    rows, curves = [], {}
    cache: dict[tuple[Path, str], Scored] = {}

    def scored(bundle: Path, name: str, examples: list[Example]) -> Scored:
        if (bundle, name) not in cache:
            cache[bundle, name] = Scored(bundle, examples)
        return cache[bundle, name]

    for name, bundle, score_of, use_class in methods:
        valid = scored(bundle, "valid", valid_examples)
        valid_score = score_of(valid.logits, valid.probabilities, valid.labels)
        curve = sweep(valid, valid_score, use_class)
        for point, target in (("balanced", None), (f"in-scope >= {TARGET_IN_SCOPE}", TARGET_IN_SCOPE)):
            threshold = -np.inf if name == "background class alone" else pick(curve, target)
            figures = [valid.rates(valid_score, threshold, use_class)]
            for test_name, examples in tests.items():
                test = scored(bundle, test_name, examples)
                figures.append(test.rates(score_of(test.logits, test.probabilities, test.labels), threshold, use_class))
            rows.append((name, point, figures))
            if name == "background class alone":
                break
        test = scored(bundle, "unseen BANKING77 categories", tests["unseen BANKING77 categories"])
        test_score = score_of(test.logits, test.probabilities, test.labels)
        curves[name] = [test.rates(test_score, t, use_class) for t, _, _ in curve[:: max(1, len(curve) // 200)]]

    shipped = BundleConfig.load(background)
    lines = [
        "### Out-of-scope detection for the chatbot intent model",
        "",
        "Command: `python benchmarks/intent_oos.py` (splits, seeds and the categories held out are in its "
        "docstring and `runs/intent-oos/data/split.json`). In-scope accuracy counts a request right when it "
        "gets its intent and is not rejected; out-of-scope recall is the share of out-of-scope requests "
        "rejected. Thresholds chosen on validation only.",
        "",
        f"In scope: {len(splits['train'])} SNIPS training, {len(splits['valid'])} validation, "
        f"{len(splits['test'])} test requests. Out of scope: {len(splits['bg_train'])} BANKING77 messages "
        f"train the background class, {len(splits['bg_valid'])} validate, {len(splits['oos_test'])} from "
        f"{HELD_OUT_CATEGORIES} categories never seen test; {len(splits['probe'])} hand-written probe requests.",
        "",
        "| method | operating point (validation) | validation in-scope / oos recall | test: unseen categories | "
        "test: probe |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, point, figures in rows:
        cells = [f"{a:.3f} / {r:.3f}" for a, r in figures]
        lines.append(f"| {name} | {point} | {' | '.join(cells)} |")
    rule = shipped.out_of_scope
    assert rule is not None
    if len(seeded) > 1:
        lines += ["", *seed_table(seeded, valid_examples, tests, scored)]
    if ensembles:
        lines += ["", "No energy rows: the models are ensembles, whose output is a log-probability, not raw logits."]
    lines += [
        "",
        f"The background-class bundle's own rule (`config.json`): method `{rule.method}`, operating point "
        f"`{rule.operating_point}`, threshold {rule.threshold:.4f}, validation in-scope "
        f"{rule.validation['in_scope_accuracy']:.3f}, out-of-scope recall {rule.validation['oos_recall']:.3f}.",
    ]
    plot = ROOT / "training" / "figures" / "intent_oos_tradeoff.png"
    plot.parent.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(6, 4.5))
        for name, points in curves.items():
            if name == "background class alone":
                accuracy, recall = points[0]
                axes.scatter([recall], [accuracy], label=name, zorder=3)
            else:
                axes.plot([r for _, r in points], [a for a, _ in points], label=name)
        axes.set(xlabel="out-of-scope recall (unseen BANKING77 categories)", ylabel="in-scope accuracy (SNIPS test)")
        axes.set_ylim(0.8, 1.0)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7, loc="lower left")
        figure.tight_layout()
        figure.savefig(plot, dpi=110)
        lines.append(f"\nTrade-off curves on test: `{plot.relative_to(ROOT) if plot.is_relative_to(ROOT) else plot}`.")
    except ImportError:
        pass
    if args.ship is not None:
        import shutil

        if args.ship.exists():
            shutil.rmtree(args.ship)
        shutil.copytree(background, args.ship)
        lines.append(f"Shipped as `{args.ship}`.")
    publish("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
