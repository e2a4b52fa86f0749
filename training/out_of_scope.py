"""Choosing how an intent model answers out of scope, on validation data holding out-of-scope
examples: the threshold on the best in-scope intent's calibrated probability (with, for a model
trained with an out-of-scope class, that class winning as well), at a stated operating point.

Operating points:
- `in-scope-cost=X` (the default, X = 0.005): the highest out-of-scope recall that costs at most X
  of the in-scope accuracy the model has with no threshold; among equal recalls, the highest
  threshold. The budget is stated in in-scope accuracy, which validation measures on many
  examples, because users' files hold few `oos` examples (CLINC150: 100 against 15,000): a rule
  that weighs recall against accuracy, like `balanced`, then prices each validation `oos`
  example at a whole share of recall and can either give up many points of in-scope accuracy
  for one of them or, when the `oos` class catches the few there are, set no threshold at all.
- `in-scope-accuracy=X`: the highest out-of-scope recall that keeps in-scope accuracy at X or
  more; among equal recalls, the highest threshold.
- `oos-recall=X`: the highest in-scope accuracy that keeps out-of-scope recall at X or more.
- `balanced`: the mean of in-scope accuracy and out-of-scope recall is highest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnserve_bundle.config import OutOfScope
from training.data import DataError

CURVE_POINTS = 41
DEFAULT_OPERATING_POINT = "in-scope-cost=0.005"


@dataclass(frozen=True)
class OperatingPoint:
    kind: str  # in-scope-cost, in-scope-accuracy, oos-recall, balanced
    value: float = 0.0

    @classmethod
    def parse(cls, text: str) -> OperatingPoint:
        if text == "balanced":
            return cls("balanced")
        kind, _, value = text.partition("=")
        if kind not in ("in-scope-cost", "in-scope-accuracy", "oos-recall") or not value:
            raise DataError(f"operating point {text!r}: in-scope-cost=X, in-scope-accuracy=X, oos-recall=X or balanced")
        try:
            number = float(value)
        except ValueError:
            raise DataError(f"operating point {text!r}: X must be a number") from None
        if kind == "in-scope-cost" and not 0 <= number < 1:
            raise DataError(f"operating point {text!r}: X must lie in [0, 1)")
        if kind != "in-scope-cost" and not 0 < number <= 1:
            raise DataError(f"operating point {text!r}: X must lie in (0, 1]")
        return cls(kind, number)

    def __str__(self) -> str:
        return self.kind if self.kind == "balanced" else f"{self.kind}={self.value:g}"


def trade_off(
    probabilities: np.ndarray, labels: list[str], truth: np.ndarray, oos_index: int, method: str
) -> np.ndarray:
    """Rows of (threshold, in-scope accuracy, out-of-scope recall) over every useful threshold.
    `truth` indexes `labels`, plus `oos_index` for out-of-scope examples."""
    rule = OutOfScope(threshold=0.0, method=method)
    best, confidence, class_says_oos = rule.decide(probabilities, labels)
    in_scope, out_scope = truth != oos_index, truth == oos_index
    correct = best == truth
    thresholds = np.unique(np.concatenate([np.linspace(0, 1, 201), confidence, confidence + 1e-7]))
    thresholds = thresholds[thresholds <= 1]
    rows = []
    for threshold in thresholds:
        abstain = class_says_oos | (confidence < threshold)
        accuracy = float((correct & ~abstain)[in_scope].mean()) if in_scope.any() else 0.0
        recall = float(abstain[out_scope].mean()) if out_scope.any() else 0.0
        rows.append((float(threshold), accuracy, recall))
    return np.array(rows)


def choose(curve: np.ndarray, point: OperatingPoint) -> int:
    """The row of the curve at the operating point (rows in increasing threshold order).

    Ties go to the lower threshold, except at `in-scope-accuracy=X` and `in-scope-cost=X`: when
    several thresholds give the same, highest out-of-scope recall, the highest of them that keeps
    the in-scope accuracy asked for is taken. That happens when an out-of-scope class catches every
    validation example: those come from the same sources as the class's training examples, so
    validation cannot tell the thresholds apart, while out-of-scope requests of kinds that no
    example shows are caught only by the threshold. The accuracy the operator accepted is spent on
    it.
    """
    accuracy, recall = curve[:, 1], curve[:, 2]
    if point.kind == "in-scope-cost":  # the first row has the lowest threshold: no rejections by it
        point = OperatingPoint("in-scope-accuracy", float(accuracy[0]) - point.value)
    if point.kind == "balanced":
        return int(np.argmax(accuracy + recall))
    primary, secondary = (accuracy, recall) if point.kind == "in-scope-accuracy" else (recall, accuracy)
    allowed = np.flatnonzero(primary >= point.value - 1e-12)
    if not len(allowed):  # unreachable on validation: the closest the model gets
        return int(np.argmax(primary))
    best = allowed[secondary[allowed] == secondary[allowed].max()]
    return int(best[-1] if point.kind == "in-scope-accuracy" else best[0])


def choose_rule(
    probabilities: np.ndarray, labels: list[str], truth: np.ndarray, oos_index: int, method: str, point: OperatingPoint
) -> OutOfScope:
    curve = trade_off(probabilities, labels, truth, oos_index, method)
    row = choose(curve, point)
    threshold, accuracy, recall = curve[row]
    kept = np.unique(np.append(np.linspace(0, len(curve) - 1, CURVE_POINTS).round().astype(int), row))
    return OutOfScope(
        threshold=float(threshold),
        method=method,
        operating_point=str(point),
        validation={"in_scope_accuracy": float(accuracy), "oos_recall": float(recall)},
        curve=[(round(float(t), 6), round(float(a), 6), round(float(r), 6)) for t, a, r in curve[kept]],
    )
