"""Metrics of a bundle on a dataset split, computed with ONNX Runtime on the exported graphs and
the bundle's own tokenizer: the numbers describe exactly what the service runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from rnnserve_bundle.config import (
    EOS_TOKEN,
    INPUT_IDS,
    LENGTHS,
    LOGITS,
    MODEL_FILE,
    STEP_MODEL_FILE,
    TOKENIZER_FILE,
    BundleConfig,
)
from rnnserve_bundle.encoder import TextEncoder
from rnnserve_bundle.sessions import CPU, create_session
from rnnserve_bundle.tensors import mean_per_text, softmax
from training.batching import bucket_batches, pad
from training.calibration import expected_calibration_error
from training.data import OUT_OF_SCOPE, DataError, Example
from training.metrics import LanguageModelScore, classification_metrics, log_softmax, out_of_scope_metrics

BATCH = 128


def evaluate_bundle(
    directory: Path, examples: list[Example], config: BundleConfig | None = None, spelling: bool = True
) -> dict:
    """Held-out metrics of the exported graph; `config` when the caller holds a newer one than the file.
    A classifier reads typing slips as the service does by default (`spelling`; off: as typed)."""
    config = config or BundleConfig.load(directory)
    if config.task.is_classifier:
        return _evaluate_classifier(directory, config, examples, spelling)
    return _evaluate_language_model(directory, config, examples)


def label_indices(names: list[str], examples: list[Example]) -> np.ndarray:
    index = {label: i for i, label in enumerate(names)}
    unknown = sorted({e.label for e in examples if e.label not in index}, key=str)
    if unknown:
        raise DataError(f"labels not known to the model: {', '.join(map(str, unknown[:10]))}")
    return np.array([index[e.label] for e in examples], dtype=np.int64)


def classifier_logits(directory: Path, config: BundleConfig, texts: list[str], spelling: bool = True) -> np.ndarray:
    """Logits of the exported graph [n, classes], on each text's first `max_sequence_length` tokens
    (what calibration and the out-of-scope rule are fitted on), typing slips read as the service
    reads them by default."""
    encoder = TextEncoder.from_file(directory / TOKENIZER_FILE, config.max_sequence_length, False, spelling=spelling)
    return _logits(directory, config, [e.ids for e in encoder.encode(texts)])


def classifier_probabilities(
    directory: Path, config: BundleConfig, texts: list[str], spelling: bool = True
) -> np.ndarray:
    """Calibrated probabilities [n, classes] as the service answers them: a text longer than
    `max_sequence_length` tokens is read in windows and answers the mean of their probabilities."""
    encoder = TextEncoder.from_file(
        directory / TOKENIZER_FILE, config.max_sequence_length, False, windows=True, spelling=spelling
    )
    encoded = encoder.encode(texts)
    windows = softmax(_logits(directory, config, [w for e in encoded for w in e.windows]) / config.temperature)
    return np.stack(mean_per_text(list(windows), [len(e.windows) for e in encoded]))


def _logits(directory: Path, config: BundleConfig, ids: list[list[int]]) -> np.ndarray:
    logits = np.zeros((len(ids), len(config.labels)), dtype=np.float32)
    session = create_session(directory / MODEL_FILE, [CPU])
    for batch in bucket_batches([len(s) for s in ids], BATCH, shuffle=False):
        padded, lengths = pad([ids[i] for i in batch])
        logits[batch] = session.run([LOGITS], {INPUT_IDS: padded, LENGTHS: lengths})[0]
    return logits


def _evaluate_classifier(directory: Path, config: BundleConfig, examples: list[Example], spelling: bool) -> dict:
    names = config.answer_labels
    truth = label_indices(names, examples)
    probabilities = classifier_probabilities(directory, config, [e.text for e in examples], spelling)
    predicted = config.predict_indices(probabilities)
    metrics = classification_metrics(truth, predicted, len(names))
    if OUT_OF_SCOPE in names:
        metrics |= out_of_scope_metrics(truth, predicted, names.index(OUT_OF_SCOPE))
    in_scope = truth < len(config.labels)  # calibration speaks of the model's own labels
    if in_scope.any():
        metrics["expected_calibration_error"] = expected_calibration_error(probabilities[in_scope], truth[in_scope])
    return metrics


def _evaluate_language_model(directory: Path, config: BundleConfig, examples: list[Example]) -> dict:
    """Per-sentence perplexity: each line read from `<bos>` with a zero state (the step graph's
    sentence start), `<eos>` predicted."""
    encoder = TextEncoder.from_file(directory / TOKENIZER_FILE, max_length=1 << 30, keep_tail=False)
    return language_model_score(directory, config, [e.ids for e in encoder.encode([e.text for e in examples])])


def language_model_score(
    directory: Path, config: BundleConfig, ids: list[list[int]], targets: list[list[int]] | None = None
) -> dict:
    """Perplexity and top-k of the step graph on sentences of `ids`, each read from a zero state:
    at each position the next token of `targets` (default: `ids` itself; the same lengths), and
    `<eos>` after the last."""
    targets = ids if targets is None else targets
    eos = Tokenizer.from_file(str(directory / TOKENIZER_FILE)).token_to_id(EOS_TOKEN)
    session = create_session(directory / STEP_MODEL_FILE, [CPU])
    state_inputs = [i for i in session.get_inputs() if i.name != INPUT_IDS]
    layers, hidden = config.architecture.num_layers, config.architecture.hidden_size
    score = LanguageModelScore()
    for batch in bucket_batches([len(s) for s in ids], BATCH, shuffle=False):
        padded, lengths = pad([ids[i] for i in batch])
        feeds = {INPUT_IDS: padded}
        for state in state_inputs:
            feeds[state.name] = np.zeros((layers, len(batch), hidden), dtype=np.float32)
        logits = session.run([LOGITS], feeds)[0]
        following = np.zeros_like(padded)
        following[:, :-1] = pad([targets[i] for i in batch])[0][:, 1:]
        following[np.arange(len(batch)), lengths - 1] = eos
        real = np.arange(padded.shape[1])[None, :] < lengths[:, None]
        score.add(log_softmax(logits[real]), following[real])
    return score.result()
