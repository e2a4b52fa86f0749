"""What a task's head owns: its parameters, its answers on `/predict`, and its tensors and
metadata on KServe v2. The served model runs the graphs; the head decides what to ask of them and
how to answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from rnnserve_bundle.encoder import Encoded
from service.completion import Completed
from service.decoding import Decoder
from service.postprocess import Output
from service.schemas import PredictParams


class Runner(Protocol):
    """The served model's graphs, as a head uses them (deadline and metrics included)."""

    async def batch(self, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Probabilities from `model.onnx`, one row per sequence, through the dynamic batcher."""
        ...

    async def complete(self, prefixes: Sequence[Sequence[int]], decoder: Callable[[], Decoder]) -> list[Completed]:
        """Completions on `step.onnx`, through the completion engine."""
        ...

    async def read(self, prefix: Sequence[int], initial: list[np.ndarray] | None) -> Completed:
        """`step.onnx` reads a prefix from given states: next-word probabilities and the states
        before its last word (`Completed.before_last`)."""
        ...


class Head(Protocol):
    output_names: frozenset[str]  # the v2 output tensors, as `metadata` lists them

    def check(self, params: PredictParams) -> None:
        """Refuse parameters this task cannot honour (`InvalidInput`)."""
        ...

    async def predict(self, encoded: list[Encoded], params: PredictParams, runner: Runner) -> list[Output]:
        """One `/predict` answer per text, in order."""
        ...

    async def infer(self, encoded: list[Encoded], params: PredictParams, runner: Runner) -> list[dict]:
        """The KServe v2 output tensors for the texts."""
        ...

    def metadata(self) -> tuple[list[dict], dict]:
        """KServe v2 model metadata: the output tensors and the task's parameters."""
        ...
