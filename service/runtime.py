"""ONNX Runtime sessions: execution-provider choice (CUDA when present, CPU otherwise) and threads."""

from __future__ import annotations

import logging

import onnxruntime as ort

from rnnserve_bundle.sessions import CPU, CUDA, create_session

__all__ = ["CPU", "CUDA", "active_provider", "choose_providers", "create_session", "output_device"]

log = logging.getLogger(__name__)


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


def active_provider(session: ort.InferenceSession) -> str:
    return session.get_providers()[0]


def output_device(session: ort.InferenceSession) -> tuple[str, int]:
    """Where the session computes: outputs bound there stay there (no copy to the host)."""
    if active_provider(session) == CUDA:
        options = session.get_provider_options().get(CUDA, {})
        return "cuda", int(options.get("device_id", 0))
    return "cpu", 0
