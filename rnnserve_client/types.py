"""Typed results of `POST /predict`."""

from __future__ import annotations

from dataclasses import dataclass, field


class RnnServeError(Exception):
    """The service answered with an error (after any retries), or could not be reached."""

    def __init__(self, status: int | None, error_type: str, message: str) -> None:
        super().__init__(f"{status or 'no answer'} {error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class Scored:
    label: str
    score: float


@dataclass(frozen=True)
class Word(Scored):
    """A next word: `placeholder` says what a token such as PTB's number token stands for; `joins`,
    that it is written onto the text's last word without a space (a contraction: we + 're)."""

    placeholder: str | None = None
    joins: bool = False


@dataclass(frozen=True)
class ClassifierResult:
    label: str
    score: float
    alternatives: list[Scored] = field(default_factory=list)
    truncated: bool = False
    out_of_scope: bool = False  # no intent was confident enough: `label` is the fallback
    windows: int = 1  # a long text read whole in this many windows, their probabilities averaged


@dataclass(frozen=True)
class Completion:
    text: str
    tokens: list[str]
    logprob: float
    finished: bool  # the model ended the sentence before max_words
    joins: bool = False  # the first word is written onto the text's last word without a space


@dataclass(frozen=True)
class NextWordResult:
    next: list[Word]
    truncated: bool = False
    completions: list[Completion] = field(default_factory=list)


@dataclass(frozen=True)
class Suggestion:
    """`POST /suggest`: next words (those starting with `pending` while a word is being typed)."""

    next: list[Word]
    pending: str
    read: int  # tokens the service read for this request
    state: str  # where the reading stopped: send it with the next text typed


@dataclass(frozen=True)
class Prediction:
    model: str
    version: str
    outputs: list[ClassifierResult | NextWordResult]


def parse_prediction(body: dict) -> Prediction:
    outputs: list[ClassifierResult | NextWordResult] = []
    for output in body["outputs"]:
        if "next" in output:
            words = [_word(w) for w in output["next"]]
            completions = [
                Completion(c["text"], c["tokens"], c["logprob"], c["finished"], c.get("joins", False))
                for c in output.get("completions", [])
            ]
            outputs.append(NextWordResult(words, output.get("truncated", False), completions))
        else:
            alternatives = [Scored(a["label"], a["score"]) for a in output.get("alternatives", [])]
            outputs.append(
                ClassifierResult(
                    output["label"],
                    output["score"],
                    alternatives,
                    output.get("truncated", False),
                    output.get("out_of_scope", False),
                    output.get("windows", 1),
                )
            )
    return Prediction(body["model"], body["version"], outputs)


def parse_results(body: dict) -> dict[str, Prediction]:
    """The answer to a several-model request, by model name."""
    return {result["model"]: parse_prediction(result) for result in body["results"]}


def parse_suggestion(body: dict) -> Suggestion:
    return Suggestion([_word(w) for w in body["next"]], body["pending"], body["read"], body["state"])


def _word(answer: dict) -> Word:
    return Word(answer["token"], answer["score"], answer.get("placeholder"), answer.get("joins", False))
