"""ONNX Runtime CPU latency per sequence of model bundles, at batch 1 and batch 64.

python benchmarks/bench_models.py models/sentiment/2 models/intent/2 ...
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_service import TEXTS, sequences_per_second  # noqa: E402
from rnnserve_bundle.config import INPUT_IDS, LENGTHS, MODEL_FILE, TOKENIZER_FILE, BundleConfig  # noqa: E402
from rnnserve_bundle.encoder import TextEncoder  # noqa: E402
from rnnserve_bundle.sessions import CPU, create_session  # noqa: E402
from rnnserve_bundle.tensors import pad_batch  # noqa: E402


def _batch(bundle: Path, size: int) -> dict[str, np.ndarray]:
    """The graph's inputs for `size` of the benchmark texts (repeated as needed), padded."""
    config = BundleConfig.load(bundle)
    encoder = TextEncoder.from_file(bundle / TOKENIZER_FILE, config.max_sequence_length, not config.task.is_classifier)
    ids = [e.ids for e in encoder.encode(TEXTS)]
    padded, lengths = pad_batch([ids[i % len(ids)] for i in range(size)])
    return {INPUT_IDS: padded, LENGTHS: lengths}


def latency_ms(bundle: Path, batch: int, seconds: float = 1.5) -> float:
    session = create_session(bundle / MODEL_FILE, [CPU])
    return 1000 / sequences_per_second(session, _batch(bundle, batch), batch, seconds)


def _resident_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _session_memory_here(directory: str) -> float:
    bundle = Path(directory)
    feeds = _batch(bundle, 64)
    before = _resident_mb()
    create_session(bundle / MODEL_FILE, [CPU]).run(None, feeds)
    return _resident_mb() - before


def session_memory_mb(bundle: Path) -> float:
    """Resident memory an ONNX Runtime session adds to a process once it has run a batch of 64
    (what each service worker pays per loaded model), measured in a fresh interpreter."""
    code = "import sys; from benchmarks.bench_models import _session_memory_here as m; print(m(sys.argv[1]))"
    result = subprocess.run([sys.executable, "-c", code, str(bundle)], cwd=ROOT, check=True, capture_output=True)
    return float(result.stdout.split()[-1])


def main() -> None:
    print("| bundle | cell | ms per sequence, batch 1 | ms per sequence, batch 64 |")
    print("| --- | --- | --- | --- |")
    for argument in sys.argv[1:]:
        bundle = Path(argument)
        cell = BundleConfig.load(bundle).architecture.cell
        print(f"| {argument} | {cell} | {latency_ms(bundle, 1):.3f} | {latency_ms(bundle, 64):.3f} |")


if __name__ == "__main__":
    main()
