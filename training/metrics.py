"""Held-out metrics. Macro-F1 is computed here from a confusion matrix (a few lines of numpy)
rather than pulling scikit-learn into the training dependencies for one function."""

from __future__ import annotations

import math

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict:
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    true_positive = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    actual = matrix.sum(axis=1).astype(float)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros_like(true_positive), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    present = actual > 0  # classes absent from the split do not drag the macro average down
    return {
        "accuracy": float(true_positive.sum() / max(1, len(y_true))),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "examples": len(y_true),
    }


def out_of_scope_metrics(y_true: np.ndarray, y_pred: np.ndarray, oos_index: int) -> dict:
    """The two CLINC150 numbers: accuracy on in-scope inputs, and recall of the out-of-scope class
    (each only when the split has such inputs: no number beats a misleading 0)."""
    in_scope = y_true != oos_index
    out_scope = ~in_scope
    metrics = {}
    if in_scope.any():
        metrics["in_scope_accuracy"] = float((y_pred[in_scope] == y_true[in_scope]).mean())
    if out_scope.any():
        metrics["oos_recall"] = float((y_pred[out_scope] == oos_index).mean())
    return metrics


class LanguageModelScore:
    """Accumulates token-level negative log-likelihood and top-k hits."""

    def __init__(self) -> None:
        self.nll = 0.0
        self.tokens = 0
        self.top1 = 0
        self.top5 = 0

    def add(self, log_probs: np.ndarray, targets: np.ndarray) -> None:
        """`log_probs` [n, vocab] and `targets` [n] for the real (unpadded) positions only."""
        rows = np.arange(len(targets))
        target_scores = log_probs[rows, targets]
        self.nll -= float(target_scores.sum())
        self.tokens += len(targets)
        better = (log_probs > target_scores[:, None]).sum(axis=1)
        self.top1 += int((better < 1).sum())
        self.top5 += int((better < 5).sum())

    def result(self) -> dict:
        tokens = max(1, self.tokens)
        return {
            "perplexity": math.exp(self.nll / tokens),
            "top1_accuracy": self.top1 / tokens,
            "top5_accuracy": self.top5 / tokens,
            "tokens": self.tokens,
        }


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
