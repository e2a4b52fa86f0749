"""How BANKING77 accuracy grows with the training file, default flags: the slope that says how
far our held-out figure sits from one trained on more data.

`benchmarks/own_intents.py` holds out a tenth of BANKING77's training file as its test split, so
its models train on 90% of the file, where a user training on the whole file (and testing on the
official test split, not in `../shared`) has a ninth more. This trains the same default-flags
model on stratified shares of that 90% (seed 13 draws them) and scores each on the same held-out
tenth; a share of 1.0 is own_intents.py's "BANKING77 alone" model (trained here if its work
directory does not already hold it).

    python benchmarks/learning_curve.py [--fractions 0.8 0.9 1.0] [--seeds 13 1 2] [--work runs/own-intents]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.own_intents import SEED, prepare, run  # noqa: E402
from benchmarks.report import mean_std, publish  # noqa: E402
from training.data import carve_validation, read_dataset, write_csv  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "own-intents")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.8, 0.9, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[SEED], help="training seeds (the shares stay)")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    if any(not 0 < f <= 1 for f in args.fractions):
        parser.error("--fractions are shares of the training file in (0, 1]")
    train_in_scope, _, _, test_in_scope, _, _ = prepare(args.work)
    everything = read_dataset("csv", train_in_scope)

    rows, by_fraction = [], {}
    for fraction in args.fractions:
        if fraction == 1.0:
            share, data, name = everything, train_in_scope, "banking77"  # own_intents.py's model of the whole file
        else:
            share, _ = carve_validation(everything, 1 - fraction, SEED)
            data = write_csv(args.work / "data" / f"train_in_scope_{fraction:g}.csv", share)
            name = f"banking77-{fraction:g}"
        for seed in args.seeds:
            out = args.work / "models" / f"{name}-seed{seed}" / "1"
            if not (out / "config.json").exists():
                run("train", "--task", "intent", "--format", "csv", "--data", str(data), "--out", str(out),
                    "--run-dir", str(args.work / "runs" / f"{name}-seed{seed}"), "--seed", str(seed))  # fmt: skip
            config = json.loads((out / "config.json").read_text())
            test = json.loads(run("evaluate", "--model", str(out), "--format", "csv", "--data", str(test_in_scope)))
            by_fraction.setdefault(fraction, []).append(test["accuracy"])
            rows.append(
                f"| {fraction:g} | {len(share):,} ({config['data']['train_examples']:,} trained on) | {seed} | "
                f"{config['metrics']['validation']['accuracy']:.3f} | {test['accuracy']:.3f} |"
            )
    lines = [
        "### BANKING77 accuracy against the size of the training file",
        "",
        f"Command: `python benchmarks/learning_curve.py --fractions {' '.join(f'{f:g}' for f in args.fractions)} "
        f"--seeds {' '.join(map(str, args.seeds))}`. Test: the same held-out tenth for every row.",
        "",
        "| share of the training file | messages | seed | validation accuracy | test accuracy |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        *(f"- share {f:g}: test accuracy {mean_std(values)}" for f, values in by_fraction.items()),
    ]
    publish("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
