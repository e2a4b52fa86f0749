"""Model outputs → answers: softmax probabilities, labels, top-k words (numpy, vectorised)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rnnserve_bundle.config import SPECIAL_TOKENS, AbstainRule
from service.spacing import Spacing

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
    windows: int = 1,
) -> Output:
    """One classifier answer. An out-of-scope answer (`out_of_scope.decide`) has the fallback label,
    `score` = 1 - the best in-scope intent's probability, and the best in-scope intents with their
    probabilities as `alternatives`, so a chatbot can still offer them. A text read in several
    windows says how many."""
    output = _classifier_answer(probabilities, labels, top_k, truncated, out_of_scope)
    if windows > 1:
        output["windows"] = windows
    return output


def _classifier_answer(
    probabilities: np.ndarray,
    labels: list[str],
    top_k: int | None,
    truncated: bool,
    out_of_scope: AbstainRule | None,
) -> Output:
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


@dataclass(frozen=True)
class Words:
    """A next-word model's vocabulary as answers show it: the tokens, the ones that stand for a
    class of words, and how they are written together."""

    vocabulary: list[str]
    placeholders: dict[str, str] = field(default_factory=dict)  # token -> what it stands for ("number")
    spacing: Spacing = field(default_factory=Spacing)

    def previous(self, ids: Sequence[int]) -> str | None:
        """The word a text ends with, which the next one may be written onto; None for none."""
        word = self.vocabulary[ids[-1]] if ids else None
        return None if word in SPECIAL_TOKENS else word

    def suggestion(self, tokens: Sequence[str], score: float, previous: str | None) -> Output:
        """One suggested word: one token, or the tokens a half-typed word is read as, written as
        the one word they came from (the typed characters held no space: "it" + "'s" is "it's")."""
        output: Output = {"token": "".join(tokens), "score": score}
        kinds = [self.placeholders[t] for t in tokens if t in self.placeholders]
        if kinds:
            output["placeholder"] = kinds[0]
        if self.spacing.joins(previous, tokens[0]):
            output["joins"] = True
        return output


def next_word_output(
    probabilities: np.ndarray, words: Words, top_k: int, truncated: bool, previous: str | None
) -> Output:
    """Best next words; special tokens (`<pad>`, `<unk>`, `<bos>`, `<eos>`) are never suggestions. A
    word that stands for others (the corpus's number token) says so: `"placeholder": "number"`; one
    written onto the text's last word without a space (a contraction) says `"joins": true`."""
    vocabulary = words.vocabulary
    candidates = top_indices(probabilities, top_k + len(SPECIAL_TOKENS))
    best = [i for i in candidates if vocabulary[i] not in SPECIAL_TOKENS][:top_k]
    return {
        "next": [words.suggestion([vocabulary[i]], float(probabilities[i]), previous) for i in best],
        "truncated": truncated,
    }


def completion_outputs(hypotheses: list[Hypothesis], words: Words, previous: str | None) -> list[Output]:
    """Completions as `service.schemas.Completion`: the words as text and as tokens, log-probability,
    whether finished, and whether the first is written onto the text without a space."""
    outputs = []
    for hypothesis in hypotheses:
        tokens = [words.vocabulary[t] for t in hypothesis.tokens]
        output: Output = {
            "text": words.spacing.write(tokens),
            "tokens": tokens,
            "logprob": hypothesis.logprob,
            "finished": hypothesis.finished,
        }
        if tokens and words.spacing.joins(previous, tokens[0]):
            output["joins"] = True
        outputs.append(output)
    return outputs
