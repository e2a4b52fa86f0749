"""INT8 dynamic quantization for CPU serving (ONNX Runtime's quantizer).

Weights of the embedding lookups and matrix products become int8; ONNX Runtime's dynamic quantizer
leaves these LSTM/GRU nodes in float. The gain is mainly size. A lookup table that another node
also uses (tied input/output embeddings) is left in float: the quantizer corrupts shared tables.
Every quantized graph is run against its float version on a real padded batch before it ships.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from rnnserve_bundle.config import INPUT_IDS, LENGTHS, LOGITS, MODEL_FILE, STEP_MODEL_FILE
from rnnserve_bundle.sessions import CPU, create_session
from rnnserve_bundle.tensors import pad_batch

MIN_TOP1_AGREEMENT = 0.9


class QuantizationError(RuntimeError):
    """The quantized graph disagrees with the float one."""


def _shared_lookups(model: onnx.ModelProto) -> list[str]:
    """Gather nodes whose table is also read by another node."""
    initializers = {i.name for i in model.graph.initializer}
    uses = Counter(name for node in model.graph.node for name in node.input if name in initializers)
    return [n.name for n in model.graph.node if n.op_type == "Gather" and uses[n.input[0]] > 1]


def _zero_state_feeds(session, ids: np.ndarray, lengths: np.ndarray) -> dict:
    """Inputs for a graph: the ids, their lengths if it takes them, and zero recurrent states."""
    feeds = {INPUT_IDS: ids}
    for tensor in session.get_inputs():
        if tensor.name == LENGTHS:
            feeds[LENGTHS] = lengths
        elif tensor.name != INPUT_IDS:  # recurrent state [layers, batch, hidden]
            layers, hidden = tensor.shape[0], tensor.shape[2]
            feeds[tensor.name] = np.zeros((layers, len(ids), hidden), dtype=np.float32)
    return feeds


def graph_logits(path: Path, sample: list[list[int]]) -> np.ndarray:
    """A graph's logits for a padded batch of the sample, from zero recurrent states."""
    ids, lengths = pad_batch(sample)
    session = create_session(path, [CPU])
    return session.run([LOGITS], _zero_state_feeds(session, ids, lengths))[0]


def _agreement(float_path: Path, int8_path: Path, sample: list[list[int]]) -> float:
    want, got = graph_logits(float_path, sample), graph_logits(int8_path, sample)
    return float((want.argmax(axis=-1) == got.argmax(axis=-1)).mean())


def quantize_bundle(directory: Path, sample: list[list[int]]) -> dict:
    """Replace each of the bundle's graphs by a verified INT8 version; a graph the quantizer cannot
    handle correctly stays float32, with the reason recorded. Returns what was done per file."""
    files: dict[str, dict] = {}
    for name in (MODEL_FILE, STEP_MODEL_FILE):
        path = directory / name
        if not path.is_file():
            continue
        model = onnx.load(str(path))
        del model.graph.value_info[:]  # stale shapes from the exporter trip the quantizer's inference
        float_copy = directory / f".{name}.fp32"
        onnx.save(model, str(float_copy))
        before = path.stat().st_size
        try:
            quantize_dynamic(
                str(float_copy), str(path), weight_type=QuantType.QInt8, nodes_to_exclude=_shared_lookups(model)
            )
            agreement = _agreement(float_copy, path, sample)
            if agreement < MIN_TOP1_AGREEMENT:
                raise QuantizationError(f"int8 top-1 agrees with float32 on {agreement:.0%} of a real batch")
        except Exception as error:  # the quantizer produced a wrong or unrunnable graph: keep float32
            float_copy.replace(path)
            files[name] = {"kept": "float32", "reason": f"{type(error).__name__}: {str(error)[:200]}"}
            continue
        finally:
            float_copy.unlink(missing_ok=True)
        files[name] = {"fp32_bytes": before, "int8_bytes": path.stat().st_size, "top1_agreement": agreement}
    return {"method": "onnxruntime dynamic quantization, int8 weights; recurrent cells stay float32", "files": files}
