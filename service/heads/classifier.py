"""Sentiment and intent: one label per text, with calibrated probabilities and, for intent models
that abstain by threshold, an out-of-scope answer."""

from __future__ import annotations

import numpy as np

from rnnserve_bundle.config import BundleConfig
from rnnserve_bundle.encoder import Encoded
from rnnserve_bundle.tensors import mean_per_text
from service.errors import InvalidInput
from service.heads.base import Runner
from service.postprocess import Output, classifier_output
from service.schemas import PredictParams


class ClassifierHead:
    def __init__(self, config: BundleConfig) -> None:
        self.labels = config.labels
        self.out_of_scope = config.out_of_scope
        # Bound to the labels once: the request path only applies it.
        self._rule = config.out_of_scope.rule(config.labels) if config.out_of_scope is not None else None
        self.task = config.task.value
        self.output_names = frozenset(o["name"] for o in self.metadata()[0])  # once, not per request

    def check(self, params: PredictParams) -> None:
        if params.max_words is not None:
            raise InvalidInput("params.max_words: completion is for next-word models")

    async def predict(self, encoded: list[Encoded], params: PredictParams, runner: Runner) -> list[Output]:
        rows = await self._probabilities(encoded, runner)
        return [
            classifier_output(row, self.labels, params.top_k, e.truncated, self._rule, len(e.windows))
            for row, e in zip(rows, encoded, strict=True)
        ]

    async def infer(self, encoded: list[Encoded], params: PredictParams, runner: Runner) -> list[dict]:
        # Every label's probability, in the metadata's label order: `top_k` does not apply.
        rows = await self._probabilities(encoded, runner)
        answers = [
            classifier_output(row, self.labels, None, e.truncated, self._rule)
            for row, e in zip(rows, encoded, strict=True)
        ]
        n = len(rows)
        probabilities = np.stack(rows).astype(np.float32)
        return [
            {"name": "label", "datatype": "BYTES", "shape": [n], "data": [a["label"] for a in answers]},
            {"name": "score", "datatype": "FP32", "shape": [n], "data": [a["score"] for a in answers]},
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [n, len(self.labels)],
                "data": probabilities.ravel().tolist(),
            },
        ]

    @staticmethod
    async def _probabilities(encoded: list[Encoded], runner: Runner) -> list[np.ndarray]:
        """One row per text; a long text's windows go through the batcher with the other texts."""
        rows = await runner.batch([w for e in encoded for w in e.windows])
        return mean_per_text(rows, [len(e.windows) for e in encoded])

    def metadata(self) -> tuple[list[dict], dict]:
        outputs = [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "score", "datatype": "FP32", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(self.labels)]},
        ]
        parameters: dict = {"task": self.task, "labels": self.labels}
        if self.out_of_scope is not None:
            parameters["out_of_scope_label"] = self.out_of_scope.label
        return outputs, parameters
