"""The model bundle contract: `models/<name>/<version>/{model.onnx, tokenizer.json, config.json}`.

Training writes bundles with these types; the service reads them. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

CONFIG_FILE = "config.json"
MODEL_FILE = "model.onnx"
STEP_MODEL_FILE = "step.onnx"
TOKENIZER_FILE = "tokenizer.json"

# Tensor names of the exported graphs.
INPUT_IDS = "input_ids"  # int64 [batch, sequence]
LENGTHS = "lengths"  # int64 [batch]
LOGITS = "logits"  # float32 [batch, classes] or [batch, vocabulary]

PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN)
PAD_ID = 0


class Task(StrEnum):
    SENTIMENT = "sentiment"
    INTENT = "intent"
    NEXT_WORD = "next-word"

    @property
    def is_classifier(self) -> bool:
        return self is not Task.NEXT_WORD


class Architecture(BaseModel):
    cell: str = Field(pattern="^(lstm|gru)$")
    embedding_dim: int
    hidden_size: int
    num_layers: int
    bidirectional: bool
    dropout: float
    tied_embeddings: bool = False
    parameters: int = 0
    # Classifiers trained apart and served as one graph (their mean probability); parameters counts all.
    members: int = Field(default=1, ge=1)
    # Of those, how many are bags of word and hashed word-bigram vectors (no recurrence), and the
    # number of bigram vectors each holds.
    bag_members: int = Field(default=0, ge=0)
    bigram_buckets: int = Field(default=0, ge=0)
    # Character n-gram vectors the word vectors were trained with (--subwords; 0: none). Folded
    # into the word table on export: the graph does not read them.
    ngram_buckets: int = Field(default=0, ge=0)


class ServingOptions(BaseModel):
    """Per-model overrides of the server-wide batching defaults."""

    max_batch_size: int | None = Field(default=None, ge=1)
    max_batch_delay_ms: float | None = Field(default=None, ge=0)


class Calibration(BaseModel):
    """Temperature scaling: served probabilities are softmax(logits / temperature)."""

    temperature: float = Field(gt=0)
    ece_before: float | None = None
    ece_after: float | None = None
    fitted_on: str = "validation"


class OutOfScope(BaseModel):
    """When a classifier answers its fallback `label` instead of an intent.

    The rule (`decide`): out of scope when the best in-scope intent's calibrated probability falls
    below `threshold`, or, for a model trained with out-of-scope examples as a class of its own
    (`method` "class+threshold", `label` among the model's labels), when that class is the most
    probable. The threshold is chosen on validation data holding out-of-scope examples, at the
    `operating_point` asked for; `curve` keeps the validation trade-off it was chosen from.
    """

    label: str = "oos"
    threshold: float = Field(ge=0, le=1)
    method: str = Field(default="threshold", pattern="^(threshold|class\\+threshold)$")
    operating_point: str = "balanced"
    validation: dict[str, float] = Field(default_factory=dict)
    curve: list[tuple[float, float, float]] = Field(
        default_factory=list, description="(threshold, in-scope accuracy, out-of-scope recall) on validation"
    )

    def rule(self, labels: list[str]) -> AbstainRule:
        """The rule bound to a model's labels (built once per model, applied per request)."""
        columns = np.array([i for i, label in enumerate(labels) if label != self.label])
        class_index = labels.index(self.label) if self.label in labels else None
        return AbstainRule(self.label, self.threshold, columns, class_index)

    def decide(self, probabilities: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.rule(labels).decide(probabilities)


@dataclass(frozen=True)
class AbstainRule:
    """`OutOfScope` bound to a model's labels: the in-scope columns and the out-of-scope class."""

    label: str
    threshold: float
    columns: np.ndarray  # indices of the in-scope labels
    class_index: int | None  # the out-of-scope class's index, when the model has one

    def decide(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For rows of calibrated probabilities: the best in-scope label's index, its probability,
        and whether the answer is out of scope."""
        in_scope = probabilities[:, self.columns]
        position = in_scope.argmax(axis=1)
        confidence = in_scope[np.arange(len(in_scope)), position]
        abstain = confidence < self.threshold
        if self.class_index is not None:
            abstain |= probabilities.argmax(axis=1) == self.class_index
        return self.columns[position], confidence, abstain


class BundleConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    version: str
    task: Task
    architecture: Architecture
    labels: list[str] = Field(default_factory=list)
    max_sequence_length: int = Field(ge=1)
    vocab_size: int = Field(ge=len(SPECIAL_TOKENS))
    metrics: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    export: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    serving: ServingOptions = Field(default_factory=ServingOptions)
    calibration: Calibration | None = None
    out_of_scope: OutOfScope | None = None
    quantization: dict[str, Any] | None = None
    text_conventions: dict[str, Any] | None = Field(
        default=None,
        description="how raw text is brought to the corpus's tokens (next-word); `number_token` stands for any number",
    )
    embeddings: dict[str, Any] | None = Field(
        default=None, description="pretrained word vectors used to initialise the embeddings, with their coverage"
    )

    @model_validator(mode="after")
    def _labels_match_task(self) -> BundleConfig:
        if self.task.is_classifier and len(self.labels) < 2:
            raise ValueError("a classifier needs at least two labels")
        return self

    @property
    def temperature(self) -> float:
        """Divide logits by this before the softmax (1 when the model is not calibrated)."""
        return self.calibration.temperature if self.calibration else 1.0

    @property
    def answer_labels(self) -> list[str]:
        """The labels the model can answer: its own, plus the out-of-scope label when it abstains by
        threshold alone (a model with an out-of-scope class has it among its own labels)."""
        extra = self.out_of_scope is not None and self.out_of_scope.label not in self.labels
        return self.labels + ([self.out_of_scope.label] if extra else [])  # type: ignore[union-attr]

    def predict_indices(self, probabilities: np.ndarray) -> np.ndarray:
        """Answers as indices into `answer_labels`, for rows of calibrated probabilities, exactly as
        the service answers: the argmax, or the out-of-scope label by `out_of_scope.decide`."""
        if self.out_of_scope is None:
            return probabilities.argmax(axis=1)
        best, _, abstain = self.out_of_scope.decide(probabilities, self.labels)
        return np.where(abstain, self.answer_labels.index(self.out_of_scope.label), best)

    @classmethod
    def load(cls, directory: Path) -> BundleConfig:
        return cls.model_validate_json((directory / CONFIG_FILE).read_text(encoding="utf-8"))

    def save(self, directory: Path) -> None:
        text = self.model_dump_json(indent=2)
        (directory / CONFIG_FILE).write_text(text + "\n", encoding="utf-8")
