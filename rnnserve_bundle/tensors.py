"""The numeric side of the bundle contract: how sequences are padded for the graphs, how their
logits become the probabilities a bundle promises (softmax of logits over the calibrated
temperature), and how a classifier's text read in several windows answers (their mean)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rnnserve_bundle.config import PAD_ID


def pad_batch(sequences: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Padded ids [batch, longest] and lengths [batch], as the exported graphs take them."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    ids = np.full((len(sequences), int(lengths.max())), PAD_ID, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
    return ids, lengths


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def mean_per_text(rows: Sequence[np.ndarray], counts: Sequence[int]) -> list[np.ndarray]:
    """One row per text from the rows of its windows (`counts[i]` consecutive rows for text i,
    `Encoded.windows`): the mean of their probabilities; a text of one window keeps its row."""
    answers, start = [], 0
    for count in counts:
        answers.append(rows[start] if count == 1 else np.mean(rows[start : start + count], axis=0))
        start += count
    return answers
