"""Temperature scaling (Guo et al. 2017): one scalar T fitted on validation logits so that
softmax(logits / T) gives calibrated probabilities; accuracy is unchanged (argmax is the same)."""

from __future__ import annotations

import itertools
import logging

import numpy as np

log = logging.getLogger(__name__)

# On validation data the model separates perfectly, the likelihood keeps improving as T → 0 and the
# fit would make every probability 1.0; bounds keep temperatures meaningful.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.5, 20.0


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the negative log-likelihood of `labels` under softmax(logits / T)."""
    import torch  # only fitting needs it; evaluation imports this module for the ECE alone

    x = torch.from_numpy(logits.astype(np.float64))
    y = torch.from_numpy(labels)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    fitted = float(log_t.detach().exp())
    bounded = min(max(fitted, MIN_TEMPERATURE), MAX_TEMPERATURE)
    if bounded != fitted:
        log.warning("temperature %.3g is out of bounds (validation separated perfectly?); using %.3g", fitted, bounded)
    return bounded


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Weighted gap between confidence and accuracy over equal-width confidence bins."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    error = 0.0
    for low, high in itertools.pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            error += in_bin.mean() * abs(confidence[in_bin].mean() - correct[in_bin].mean())
    return float(error)
