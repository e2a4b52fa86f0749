"""A user's own intents with out-of-scope examples, trained with default flags: a CLINC150-style
stand-in built from `../shared` (CLINC150 itself is not there).

- In scope: BANKING77's 77 intents. A stratified 10% of its training file (seed 13) is held out as
  the test split and never used for any choice; the rest is the user's training file.
- Out of scope: SNIPS requests (music, weather, restaurants, films, books), which lie outside every
  banking intent. Like CLINC150 (100 out-of-scope training examples against 15,000 in scope), the
  training file gets few: 100 requests labelled `oos`. The test split gets 1,000 others. Those
  come from the same source as the training examples; out-of-scope requests of kinds no example
  shows (CLINC150's are of every kind) are measured on the 71 hand-written requests of
  `benchmarks/data/oos_probe.txt` (time, recipes, travel, small talk, home, work).
- Training: `python -m training train --task intent --format csv --data train.csv` and nothing
  else; the pipeline carves its own validation split (10%) and chooses the out-of-scope threshold
  there (the default operating point, `in-scope-cost=0.005`). Also run at `--oos-operating-point
  oos-recall=0.9` to show the option moving the point.
- Test: `python -m training evaluate` on the held-out file: in-scope accuracy (right intent and not
  rejected) and out-of-scope recall, the CLINC150 protocol's two numbers (Larson et al. 2019:
  Rasa 91.5 / 45.3, MLP on sentence embeddings 93.5 / 47.4, BERT 96.9 / 40.3 on CLINC150 itself),
  and, for a model trained on BANKING77's file alone with default flags, plain accuracy on the 77
  intents (BANKING77's own metric; published 93.4-93.7 with pretrained sentence encoders on its
  official test split, which is not in `../shared`).

    python benchmarks/own_intents.py [--seeds 13 1 2] [--work runs/own-intents] [--write training/REPORT.md]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.intent_oos import Scored, max_probability  # noqa: E402
from benchmarks.report import mean_std, publish  # noqa: E402
from training.data import OUT_OF_SCOPE, Example, carve_validation, read_dataset, write_csv  # noqa: E402
from training.evaluate import label_indices  # noqa: E402
from training.out_of_scope import DEFAULT_OPERATING_POINT, OperatingPoint, choose_rule  # noqa: E402

# Where the default's threshold would sit under each rule: the `oos` class alone (no threshold),
# then the operating points, each chosen on the seed's own validation split.
POINTS = [None, "balanced", DEFAULT_OPERATING_POINT, "in-scope-cost=0.01", "in-scope-cost=0.02"]

SHARED = ROOT.parent / "shared" / "datasets"
SEED = 13
OOS_TRAIN = 100
OOS_TEST = 1000
PROBE = ROOT / "benchmarks" / "data" / "oos_probe.txt"


def prepare(work: Path) -> tuple[Path, Path, Path, Path, Path, dict]:
    banking = read_dataset("csv", SHARED / "banking77" / "train.csv", label_field="category")
    train, test = carve_validation(banking, 0.1, SEED)
    snips = [e.text for e in read_dataset("snips", SHARED / "snips" / "train")]
    random.Random(SEED).shuffle(snips)
    oos_train = [Example(t, OUT_OF_SCOPE) for t in snips[:OOS_TRAIN]]
    oos_test = [Example(t, OUT_OF_SCOPE) for t in snips[OOS_TRAIN : OOS_TRAIN + OOS_TEST]]
    probe = [Example(line.strip(), OUT_OF_SCOPE) for line in PROBE.read_text(encoding="utf-8").splitlines()]
    probe = [e for e in probe if e.text]
    data = work / "data"
    sizes = {
        "train_in_scope": len(train),
        "train_oos": len(oos_train),
        "test_in_scope": len(test),
        "test_oos": len(oos_test),
        "probe": len(probe),
    }
    return (
        write_csv(data / "train_in_scope.csv", train),
        write_csv(data / "train.csv", [*train, *oos_train]),
        write_csv(data / "test.csv", [*test, *oos_test]),
        write_csv(data / "test_in_scope.csv", test),
        write_csv(data / "test_probe.csv", [*test, *probe]),
        sizes,
    )


def operating_points(defaults: dict[int, Path], train: Path, test: Path, test_probe: Path) -> list[str]:
    """The default-flags models under each operating point: thresholds chosen on validation as
    training chooses them, then in-scope accuracy and recall on test and on the probe."""
    thresholds: dict[str | None, list[float]] = {point: [] for point in POINTS}
    figures: dict[str | None, list[tuple[float, float, float]]] = {point: [] for point in POINTS}
    for seed, bundle in defaults.items():
        examples = carve_validation(read_dataset("csv", train), 0.1, seed)[1]
        valid = Scored(bundle, examples)
        truth, oos_index = label_indices(valid.labels, examples), valid.labels.index(OUT_OF_SCOPE)
        tests = [Scored(bundle, read_dataset("csv", path)) for path in (test, test_probe)]
        scores = [max_probability(split.logits, split.probabilities, split.labels) for split in tests]
        for point in POINTS:
            threshold = 0.0
            if point is not None:
                parsed = OperatingPoint.parse(point)
                rule = choose_rule(valid.probabilities, valid.labels, truth, oos_index, "class+threshold", parsed)
                threshold = rule.threshold
            (accuracy, recall), (_, probe_recall) = (
                split.rates(score, threshold, use_class=True) for split, score in zip(tests, scores, strict=True)
            )
            thresholds[point].append(threshold)
            figures[point].append((accuracy, recall, probe_recall))
    lines = [
        f"The default-flags models (seeds {', '.join(map(str, defaults))}) under each operating point, "
        "thresholds chosen on each seed's validation split; test figures, mean ± std over the seeds:",
        "",
        "| operating point | thresholds | test in-scope accuracy | test oos recall | probe oos recall |",
        "| --- | --- | --- | --- | --- |",
    ]
    for point in POINTS:
        name = "the `oos` class alone (no threshold)" if point is None else f"`{point}`"
        name += " (**the default**)" if point == DEFAULT_OPERATING_POINT else ""
        cells = [mean_std([f[i] for f in figures[point]]) for i in range(3)]
        lines.append(f"| {name} | {' / '.join(f'{t:.3f}' for t in thresholds[point])} | {' | '.join(cells)} |")
    return lines


def run(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "training", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "own-intents")
    parser.add_argument("--seeds", type=int, nargs="+", default=[SEED], help="training seeds (the test split stays)")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    train_in_scope, train, test, test_in_scope, test_probe, sizes = prepare(args.work)

    def trained(name: str, data: Path, seed: int, *extra: str) -> tuple[Path, dict]:
        out = args.work / "models" / f"{name}-seed{seed}" / "1"
        if not (out / "config.json").exists():
            run("train", "--task", "intent", "--format", "csv", "--data", str(data), "--out", str(out),
                "--run-dir", str(args.work / "runs" / f"{name}-seed{seed}"), "--seed", str(seed), *extra)  # fmt: skip
        return out, json.loads((out / "config.json").read_text())

    def evaluated(model: Path, data: Path) -> dict:
        return json.loads(run("evaluate", "--model", str(model), "--format", "csv", "--data", str(data)))

    rows, in_scope, recall, probe_recall, alone, alone_f1 = [], [], [], [], [], []
    defaults: dict[int, Path] = {}
    variants = [("default flags", "default", ())]
    variants.append(("--oos-operating-point oos-recall=0.9", "recall", ("--oos-operating-point", "oos-recall=0.9")))
    for seed in args.seeds:
        for label, name, extra in variants if seed == args.seeds[0] else variants[:1]:
            out, config = trained(name, train, seed, *extra)
            metrics, probe = evaluated(out, test), evaluated(out, test_probe)
            rule = config["out_of_scope"]
            rows.append(
                f"| {label} | {seed} | {rule['threshold']:.3f} | {rule['validation']['in_scope_accuracy']:.3f} / "
                f"{rule['validation']['oos_recall']:.3f} | {metrics['in_scope_accuracy']:.3f} | "
                f"{metrics['oos_recall']:.3f} | {probe['oos_recall']:.3f} | {config['training']['duration_s']:.0f} s |"
            )
            if name == "default":
                defaults[seed] = out
                in_scope.append(metrics["in_scope_accuracy"])
                recall.append(metrics["oos_recall"])
                probe_recall.append(probe["oos_recall"])
        out, config = trained("banking77", train_in_scope, seed)
        metrics = evaluated(out, test_in_scope)
        alone.append(metrics["accuracy"])
        alone_f1.append(metrics["macro_f1"])
        rows.append(
            f"| BANKING77 alone (no `oos` examples), default flags | {seed} | - | "
            f"{config['metrics']['validation']['accuracy']:.3f} (accuracy) | {metrics['accuracy']:.3f} (accuracy) | "
            f"- | - | {config['training']['duration_s']:.0f} s |"
        )
    lines = [
        "### A user's own intents with out-of-scope examples (CLINC-style stand-in)",
        "",
        f"Command: `python benchmarks/own_intents.py --seeds {' '.join(map(str, args.seeds))}` (its docstring says "
        f"how the data is built). Training file: {sizes['train_in_scope']:,} BANKING77 messages (77 intents) + "
        f"{sizes['train_oos']} SNIPS requests labelled `oos`; test (never used for a choice): "
        f"{sizes['test_in_scope']:,} held-out BANKING77 messages + {sizes['test_oos']:,} other SNIPS requests; "
        f"{sizes['probe']} hand-written requests of other kinds (`benchmarks/data/oos_probe.txt`).",
        "",
        "| training | seed | threshold | validation in-scope / oos recall | test in-scope accuracy | test oos recall | "
        "probe oos recall | training time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"Default flags over {len(args.seeds)} seed(s), test: in-scope accuracy {mean_std(in_scope)}, out-of-scope "
        f"recall {mean_std(recall)}, on the probe {mean_std(probe_recall)}; BANKING77 alone: accuracy "
        f"{mean_std(alone)}, macro-F1 {mean_std(alone_f1)}.",
        "",
        *operating_points(defaults, train, test, test_probe),
    ]
    publish("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
