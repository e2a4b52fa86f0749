"""INT8 dynamic quantization for CPU serving (ONNX Runtime's quantizer).

Weights of the embedding lookups and matrix products become int8; ONNX Runtime's dynamic quantizer
leaves these LSTM/GRU nodes in float. The gain is mainly size. A lookup table that another node
also uses (tied input/output embeddings) is left in float: the quantizer corrupts shared tables.
Every quantized graph is run against its float version on a real padded batch before it ships
(`training/graph_rewrite.py`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from training.graph_rewrite import rewrite_verified

MIN_TOP1_AGREEMENT = 0.9


def _shared_lookups(model: onnx.ModelProto) -> list[str]:
    """Gather nodes whose table is also read by another node."""
    initializers = {i.name for i in model.graph.initializer}
    uses = Counter(name for node in model.graph.node for name in node.input if name in initializers)
    return [n.name for n in model.graph.node if n.op_type == "Gather" and uses[n.input[0]] > 1]


def quantize_bundle(directory: Path, sample: list[list[int]]) -> dict:
    """Replace each of the bundle's graphs by a verified INT8 version; a graph the quantizer cannot
    handle correctly stays float32, with the reason recorded. Returns what was done per file."""

    def quantize(float_path: Path, out: Path) -> dict:
        model = onnx.load(str(float_path))
        del model.graph.value_info[:]  # stale shapes from the exporter trip the quantizer's inference
        quantize_dynamic(model, str(out), weight_type=QuantType.QInt8, nodes_to_exclude=_shared_lookups(model))
        return {}

    files = rewrite_verified(directory, sample, quantize, MIN_TOP1_AGREEMENT)
    for record in files.values():
        if "bytes" in record:
            record["int8_bytes"] = record.pop("bytes")
    return {"method": "onnxruntime dynamic quantization, int8 weights; recurrent cells stay float32", "files": files}
