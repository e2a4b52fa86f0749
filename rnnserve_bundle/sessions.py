"""ONNX Runtime sessions over a bundle's graphs, with the options both training (export parity,
evaluation, quantization checks) and serving use."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def create_session(
    path: Path,
    providers: list,
    intra_op_threads: int = 0,
    inter_op_threads: int = 1,
    allow_spinning: bool = True,
) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # Spinning threads answer faster between back-to-back runs but burn cores that the event loop
    # and tokenizer need when CPU cores are few.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)
