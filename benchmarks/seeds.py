"""Seed-to-seed variation of a training command: the same `python -m training train` arguments
trained once per seed, each run's held-out metrics read from its bundle's `config.json`, and their
mean ± sample standard deviation. The seed sets the carved validation split (when there is one),
the initialisation, the batch order and the dropout draws.

    python benchmarks/seeds.py --seeds 13 1 2 --work runs/seeds/sentiment -- \\
        --task sentiment --format sst2 --data ../shared/datasets/sst2/train.tsv

Pass everything after `--` to `python -m training train` except `--seed`, `--out` and `--run-dir`,
which this script sets per seed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.report import mean_std, publish  # noqa: E402

OWN_OPTIONS = ("--seed", "--out", "--run-dir")


def train(arguments: list[str], seed: int, work: Path) -> dict:
    """Train one seed (or reuse its finished bundle) and return its config.json."""
    bundle = work / f"seed-{seed}" / "model" / "1"
    config = bundle / "config.json"
    if not config.exists():
        command = [sys.executable, "-m", "training", "train", *arguments, "--seed", str(seed)]
        command += ["--out", str(bundle), "--run-dir", str(work / f"seed-{seed}" / "run")]
        print("$", " ".join(command), flush=True)
        subprocess.run(command, cwd=ROOT, check=True)
    return json.loads(config.read_text(encoding="utf-8"))


def summary(runs: dict[int, dict]) -> str:
    validation = {seed: config["metrics"]["validation"] for seed, config in runs.items()}
    names = [
        name
        for name, value in next(iter(validation.values())).items()
        if isinstance(value, float) and name != "expected_calibration_error"
    ]
    lines = [
        "| seed | " + " | ".join(names) + " | best epoch / run | training time |",
        "| --- | " + " | ".join("---" for _ in names) + " | --- | --- |",
    ]
    for seed, config in runs.items():
        training = config["training"]
        cells = [f"{validation[seed][name]:.4f}" for name in names]
        fits = training.get("members", [training])  # an ensemble records each member's run
        epochs = ", ".join(f"{fit['best_epoch']} / {fit['epochs_run']}" for fit in fits)
        lines.append(f"| {seed} | " + " | ".join(cells) + f" | {epochs} | {training['duration_s']:.0f} s |")
    spread = [mean_std([v[name] for v in validation.values()], digits=4) for name in names]
    lines.append("| mean ± std | " + " | ".join(spread) + " | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 1, 2])
    parser.add_argument("--work", type=Path, required=True, help="one bundle per seed goes here; reused if present")
    parser.add_argument("--write", type=Path, help="append the table to this Markdown file")
    parser.add_argument("training", nargs=argparse.REMAINDER, help="-- then the training arguments")
    args = parser.parse_args()
    arguments = [a for a in args.training if a != "--"]
    if not arguments or any(a in OWN_OPTIONS for a in arguments):
        parser.error(f"give the training arguments after --, without {', '.join(OWN_OPTIONS)}")
    if len(args.seeds) < 2:
        parser.error("a standard deviation needs at least two seeds")
    started = time.perf_counter()
    runs = {seed: train(arguments, seed, args.work) for seed in args.seeds}
    command = "python -m training train " + " ".join(arguments)
    report = f"`{command}`, seeds {' '.join(map(str, args.seeds))} (held-out validation split of each run):\n\n"
    publish(report + summary(runs) + f"\n\n({time.perf_counter() - started:.0f} s in all)", args.write)


if __name__ == "__main__":
    main()
