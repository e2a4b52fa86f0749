"""Replacing a bundle's exported graphs by smaller versions that must answer as the float32 ones do.

Both INT8 methods (`training/quantize.py`, `training/lookup_tables.py`) go through `rewrite_verified`:
each graph is rewritten, run against its float32 version on a real padded batch, and ships only
if its top-1 answers agree often enough; otherwise the float32 graph stays, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from rnnserve_bundle.config import INPUT_IDS, LENGTHS, LOGITS, MODEL_FILE, STEP_MODEL_FILE
from rnnserve_bundle.sessions import CPU, create_session
from rnnserve_bundle.tensors import pad_batch

# Writes the rewritten graph (second path) from the float32 one (first path); returns what to
# record beside the sizes and the agreement. Raises `NothingToRewrite` to leave the graph as it is.
Transform = Callable[[Path, Path], dict]


class NothingToRewrite(Exception):
    """The graph holds nothing the rewrite applies to."""


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


def rewrite_verified(
    directory: Path, sample: list[list[int]], transform: Transform, min_agreement: float
) -> dict[str, dict]:
    """Rewrite each of the bundle's graphs in place; returns what was done per file."""
    files: dict[str, dict] = {}
    for name in (MODEL_FILE, STEP_MODEL_FILE):
        path = directory / name
        if not path.is_file():
            continue
        float_copy = directory / f".{name}.fp32"
        path.replace(float_copy)
        try:
            extra = transform(float_copy, path)
            want, got = graph_logits(float_copy, sample), graph_logits(path, sample)
            agreement = float((want.argmax(axis=-1) == got.argmax(axis=-1)).mean())
            if agreement < min_agreement:
                raise ValueError(f"top-1 agrees with float32 on {agreement:.1%} of a real batch")
        except Exception as error:  # a graph that does not run, disagrees or needs nothing: keep float32
            float_copy.replace(path)
            reason = str(error) if isinstance(error, NothingToRewrite) else f"{type(error).__name__}: {error}"
            files[name] = {"kept": "float32", "reason": reason[:200]}
            continue
        files[name] = {
            **extra,
            "fp32_bytes": float_copy.stat().st_size,
            "bytes": path.stat().st_size,
            "top1_agreement": agreement,
            "max_abs_change": float(np.abs(want - got).max()),
        }
        float_copy.unlink()
    return files
