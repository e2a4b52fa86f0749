"""Temperature scaling recovers a known temperature and lowers calibration error."""

from __future__ import annotations

import numpy as np

from rnnserve_bundle.tensors import softmax
from training.calibration import expected_calibration_error, fit_temperature


def test_fit_temperature_recovers_known_temperature() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, size=(20000, 6))
    probabilities = softmax(true_logits)
    labels = np.array([rng.choice(6, p=p) for p in probabilities])
    overconfident = true_logits * 3.0  # a model whose logits are three times too sharp
    temperature = fit_temperature(overconfident, labels)
    assert abs(temperature - 3.0) < 0.15
    before = expected_calibration_error(softmax(overconfident), labels)
    after = expected_calibration_error(softmax(overconfident / temperature), labels)
    assert after < before / 3 and after < 0.02


def test_ece_of_perfect_calibration_is_small_and_of_overconfidence_large() -> None:
    labels = np.array([0, 1] * 500)
    certain = np.tile([[0.99, 0.01]], (1000, 1))  # right half the time at 99% confidence
    assert expected_calibration_error(certain, labels) > 0.45
