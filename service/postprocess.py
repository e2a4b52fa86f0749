"""Model outputs → answers: softmax probabilities, labels, top-k words (numpy, vectorised)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rnnserve_bundle.config import SPECIAL_TOKENS, AbstainRule

if TYPE_CHECKING:
    from service.decoding import Hypothesis

# Answers are plain dicts shaped as `service.schemas.ClassifierOutput` / `NextWordOutput` (which
# document them): built once and serialised once, with no model validation on the hot path.
Output = dict


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first."""
    k = min(k, scores.shape[-1])
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


# An out-of-scope answer carries this many in-scope guesses unless `top_k` asks for another number.
OUT_OF_SCOPE_GUESSES = 3


def classifier_output(
    probabilities: np.ndarray,
    labels: list[str],
    top_k: int | None,
    truncated: bool,
    out_of_scope: AbstainRule | None = None,
) -> Output:
    """One classifier answer. An out-of-scope answer (`out_of_scope.decide`) has the fallback label,
    `score` = 1 - the best in-scope intent's probability, and the best in-scope intents with their
    probabilities as `alternatives`, so a chatbot can still offer them."""
    if out_of_scope is not None:
        best_rows, confidence, abstain = out_of_scope.decide(probabilities[None, :])
        if abstain[0]:
            in_scope = [i for i in top_indices(probabilities, len(labels)) if labels[i] != out_of_scope.label]
            return {
                "label": out_of_scope.label,
                "score": 1.0 - float(confidence[0]),
                "out_of_scope": True,
                "alternatives": [
                    {"label": labels[i], "score": float(probabilities[i])}
                    for i in in_scope[: top_k or OUT_OF_SCOPE_GUESSES]
                ],
                "truncated": truncated,
            }
        best = int(best_rows[0])
    else:
        best = int(probabilities.argmax())
    output: Output = {"label": labels[best], "score": float(probabilities[best]), "truncated": truncated}
    if top_k is not None:
        output["alternatives"] = [
            {"label": labels[i], "score": float(probabilities[i])} for i in top_indices(probabilities, top_k)
        ]
    return output


def next_word_output(
    probabilities: np.ndarray,
    vocabulary: list[str],
    top_k: int,
    truncated: bool,
    placeholders: dict[str, str] | None = None,
) -> Output:
    """Best next words; special tokens (`<pad>`, `<unk>`, `<bos>`, `<eos>`) are never suggestions. A
    word that stands for others (the corpus's number token) says so: `"placeholder": "number"`."""
    candidates = top_indices(probabilities, top_k + len(SPECIAL_TOKENS))
    words = [i for i in candidates if vocabulary[i] not in SPECIAL_TOKENS][:top_k]
    suggestions = []
    for i in words:
        suggestion = {"token": vocabulary[i], "score": float(probabilities[i])}
        if placeholders and vocabulary[i] in placeholders:
            suggestion["placeholder"] = placeholders[vocabulary[i]]
        suggestions.append(suggestion)
    return {"next": suggestions, "truncated": truncated}


def completion_outputs(hypotheses: list[Hypothesis], vocabulary: list[str]) -> list[Output]:
    """Completions as `service.schemas.Completion`: words, their text, log-probability, whether finished."""
    outputs = []
    for hypothesis in hypotheses:
        words = [vocabulary[t] for t in hypothesis.tokens]
        outputs.append(
            {"text": " ".join(words), "tokens": words, "logprob": hypothesis.logprob, "finished": hypothesis.finished}
        )
    return outputs
