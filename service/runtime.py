"""ONNX Runtime sessions: execution-provider choice (CUDA when present, CPU otherwise) and threads."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def choose_providers(preference: str, device_id: int = 0, gpu_mem_limit: int = 0) -> list:
    """`auto` takes CUDA when this onnxruntime build offers it; `cuda` insists; `cpu` forbids."""
    available = ort.get_available_providers()
    if preference == "cpu":
        return [CPU]
    if CUDA in available:
        options: dict[str, object] = {"device_id": device_id}
        if gpu_mem_limit:
            options["gpu_mem_limit"] = gpu_mem_limit
        return [(CUDA, options), CPU]
    if preference == "cuda":
        raise RuntimeError(f"CUDA execution provider requested but not available: {available}")
    return [CPU]


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
    session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    return session


def active_provider(session: ort.InferenceSession) -> str:
    return session.get_providers()[0]


def output_device(session: ort.InferenceSession) -> tuple[str, int]:
    """Where the session computes: outputs bound there stay there (no copy to the host)."""
    if active_provider(session) == CUDA:
        options = session.get_provider_options().get(CUDA, {})
        return "cuda", int(options.get("device_id", 0))
    return "cpu", 0
