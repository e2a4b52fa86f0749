"""Model outputs → answers: softmax probabilities, labels, top-k words (numpy, vectorised)."""

from __future__ import annotations

import numpy as np

from service.bundle import SPECIAL_TOKENS
from service.schemas import ClassifierOutput, NextWordOutput, Scored, ScoredToken


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first."""
    k = min(k, scores.shape[-1])
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def classifier_output(
    probabilities: np.ndarray, labels: list[str], top_k: int | None, truncated: bool
) -> ClassifierOutput:
    best = int(probabilities.argmax())
    alternatives = None
    if top_k is not None:
        alternatives = [
            Scored(label=labels[i], score=float(probabilities[i])) for i in top_indices(probabilities, top_k)
        ]
    return ClassifierOutput(
        label=labels[best],
        score=float(probabilities[best]),
        alternatives=alternatives,
        truncated=truncated,
    )


def next_word_output(probabilities: np.ndarray, vocabulary: list[str], top_k: int, truncated: bool) -> NextWordOutput:
    """Best next words; `<pad>` and `<bos>` are never suggestions (`<eos>` and `<unk>` may be)."""
    candidates = top_indices(probabilities, top_k + len(SPECIAL_TOKENS))
    words = [i for i in candidates if vocabulary[i] not in ("<pad>", "<bos>")][:top_k]
    return NextWordOutput(
        next=[ScoredToken(token=vocabulary[i], score=float(probabilities[i])) for i in words],
        truncated=truncated,
    )
