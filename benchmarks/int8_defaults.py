"""INT8 on the default classifiers: the metric change on their own held-out splits.

For each default classifier bundle, the validation split it was trained with is rebuilt from the
data and seed recorded in its `config.json` (the same carving code), the bundle is copied twice,
once quantized with `training.quantize.quantize_bundle` (ONNX Runtime's dynamic quantizer,
`--quantize int8`) and once with its lookup tables as int8 rows (`training.lookup_tables`,
`--lookup-tables int8`; a bundle trained with them already is left as it is), and all three are
evaluated with ONNX Runtime.
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
from training.lookup_tables import compact_bundle  # noqa: E402
from training.pipeline import TrainOptions, load_splits  # noqa: E402
from training.quantize import quantize_bundle  # noqa: E402

# The commands the defaults were trained with (README, "Training").
DEFAULTS = {
    "sentiment": {"data_format": "sst2", "data": "../shared/datasets/sst2/train.tsv"},
    # Trained by benchmarks/intent_oos.py (run it first: it writes these files).
    "intent": {
        "data_format": "csv",
        "data": "runs/intent-oos-8/data/train_with_background.csv",
        "valid_data": "runs/intent-oos-8/data/valid_background.csv",
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
        copy, rows = Path(scratch) / "int8" / name / bundle.name, Path(scratch) / "rows" / name / bundle.name
        shutil.copytree(bundle, copy)
        shutil.copytree(bundle, rows)
        encoder = TextEncoder.from_file(copy / TOKENIZER_FILE, config.max_sequence_length, keep_tail=False)
        sample = mixed_length_sample([e.ids for e in encoder.encode([x.text for x in validation[:512]])])
        fp32 = evaluate_bundle(copy, validation)
        report = quantize_bundle(copy, sample)
        int8 = evaluate_bundle(copy, validation)
        if "lookup_tables" not in config.export:
            compact_bundle(rows, sample)
        return {
            "bundle": f"{name}/{bundle.name}",
            "examples": len(validation),
            "fp32": fp32,
            "int8": int8,
            "rows": evaluate_bundle(rows, validation),
            "size_mb": (bundle / MODEL_FILE).stat().st_size / 1e6,
            "int8_size_mb": (copy / MODEL_FILE).stat().st_size / 1e6,
            "rows_size_mb": (rows / MODEL_FILE).stat().st_size / 1e6,
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
        "| bundle | validation examples | metric | as shipped | int8 (quantizer) | change | int8 lookup tables "
        "| change | model.onnx as shipped / quantizer / lookup tables |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in DEFAULTS:
        result = measure(name)
        for key in keys:
            if key in result["fp32"] and key in result["int8"]:
                before, after, rows = result["fp32"][key], result["int8"][key], result["rows"][key]
                lines.append(
                    f"| {result['bundle']} | {result['examples']} | {key} | {before:.4f} | {after:.4f} | "
                    f"{after - before:+.4f} | {rows:.4f} | {rows - before:+.4f} | {result['size_mb']:.1f} / "
                    f"{result['int8_size_mb']:.1f} / {result['rows_size_mb']:.1f} MB |"
                )
    report = "\n".join(lines) + "\n"
    publish(report, args.write)


if __name__ == "__main__":
    main()
