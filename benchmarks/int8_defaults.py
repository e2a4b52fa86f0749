"""INT8 dynamic quantization of the default classifiers: the metric change on their own held-out splits.

For each default classifier bundle, the validation split it was trained with is rebuilt from the
data and seed recorded in its `config.json` (the same carving code), the bundle is copied and
quantized with `training.quantize.quantize_bundle`, and both are evaluated with ONNX Runtime.
Needs `../shared/datasets` and the training extra (`pip install -e '.[train]'`).

    python benchmarks/int8_defaults.py [--write training/REPORT.md]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_service import newest_bundle  # noqa: E402
from benchmarks.report import publish  # noqa: E402
from rnnserve_bundle.config import MODEL_FILE, TOKENIZER_FILE, BundleConfig  # noqa: E402
from rnnserve_bundle.encoder import TextEncoder  # noqa: E402
from training.evaluate import evaluate_bundle  # noqa: E402
from training.export import mixed_length_sample  # noqa: E402
from training.pipeline import TrainOptions, load_splits  # noqa: E402
from training.quantize import quantize_bundle  # noqa: E402

# The commands the defaults were trained with (README, "Training").
DEFAULTS = {
    "sentiment": {"data_format": "sst2", "data": "../shared/datasets/sst2/train.tsv"},
    # Trained by benchmarks/intent_oos.py (run it first: it writes these files).
    "intent": {
        "data_format": "csv",
        "data": "runs/intent-oos/data/train_with_background.csv",
        "valid_data": "runs/intent-oos/data/valid_background.csv",
    },
}


def measure(name: str) -> dict:
    bundle = newest_bundle(name)
    config = BundleConfig.load(bundle)
    spec = DEFAULTS[name]
    options = TrainOptions(
        task=config.task,
        data_format=spec["data_format"],
        data=(ROOT / spec["data"]).resolve(),
        out=bundle,
        oos_data=[(ROOT / spec["oos_data"]).resolve()] if "oos_data" in spec else [],
        oos_threshold=bool(spec.get("oos_threshold")),
        valid_data=(ROOT / spec["valid_data"]).resolve() if "valid_data" in spec else None,
    )
    seed = config.training["hyperparameters"].get("seed", 13)
    _, validation, _ = load_splits(options, seed)
    if len(validation) != config.metrics["validation"]["examples"]:
        raise RuntimeError(f"{name}: rebuilt validation split differs from the one in config.json")
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / name / bundle.name
        shutil.copytree(bundle, copy)
        encoder = TextEncoder.from_file(copy / TOKENIZER_FILE, config.max_sequence_length, keep_tail=False)
        sample = mixed_length_sample([e.ids for e in encoder.encode([x.text for x in validation[:512]])])
        fp32 = evaluate_bundle(copy, validation)
        report = quantize_bundle(copy, sample)
        int8 = evaluate_bundle(copy, validation)
        size = (copy / MODEL_FILE).stat().st_size
    return {
        "bundle": f"{name}/{bundle.name}",
        "examples": len(validation),
        "fp32": fp32,
        "int8": int8,
        "size_mb": (bundle / MODEL_FILE).stat().st_size / 1e6,
        "int8_size_mb": size / 1e6,
        "graphs": report,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", type=Path, help="append the report to this Markdown file")
    args = parser.parse_args()
    keys = ("accuracy", "macro_f1", "in_scope_accuracy", "oos_recall")
    lines = [
        f"### INT8 on the defaults' held-out splits ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        "Command: `python benchmarks/int8_defaults.py`.",
        "",
        "| bundle | validation examples | metric | float32 | int8 | change | model.onnx float32 / int8 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in DEFAULTS:
        result = measure(name)
        for key in keys:
            if key in result["fp32"] and key in result["int8"]:
                before, after = result["fp32"][key], result["int8"][key]
                lines.append(
                    f"| {result['bundle']} | {result['examples']} | {key} | {before:.4f} | {after:.4f} | "
                    f"{after - before:+.4f} | {result['size_mb']:.1f} / {result['int8_size_mb']:.1f} MB |"
                )
    report = "\n".join(lines) + "\n"
    publish(report, args.write)


if __name__ == "__main__":
    main()
