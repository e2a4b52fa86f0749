"""Run-directory plots: loss and validation metric per epoch, and the confusion matrix of a classifier.

matplotlib is optional: without it the JSON records are written and the plots skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot_curves(run_dir: Path, history: list[dict], key: str) -> None:
    plt = _pyplot()
    if plt is None:
        return
    epochs = [h["epoch"] for h in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, [h["train_loss"] for h in history], marker="o")
    left.set(title="training loss", xlabel="epoch")
    right.plot(epochs, [h["validation"][key] for h in history], marker="o", color="C1")
    right.set(title=f"validation {key}", xlabel="epoch")
    figure.tight_layout()
    figure.savefig(run_dir / "curves.png", dpi=100)
    plt.close(figure)


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Counts [true class, predicted class]."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def plot_confusion(run_dir: Path, labels: list[str], matrix: np.ndarray) -> None:
    plt = _pyplot()
    if plt is None:
        return
    size = max(4.0, 0.45 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    rates = matrix / np.maximum(1, matrix.sum(axis=1, keepdims=True))
    axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(labels))
    axes.set_xticks(ticks, labels, rotation=90)
    axes.set_yticks(ticks, labels)
    axes.set(xlabel="predicted", ylabel="true", title="validation confusion (row-normalised)")
    if len(labels) <= 30:
        for i in ticks:
            for j in ticks:
                if matrix[i, j]:
                    color = "white" if rates[i, j] > 0.5 else "black"
                    axes.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7, color=color)
    figure.tight_layout()
    figure.savefig(run_dir / "confusion.png", dpi=100)
    plt.close(figure)
