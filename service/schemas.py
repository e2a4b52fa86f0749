"""Request and response bodies of `POST /predict`."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rnnserve_bundle.layout import NAME_PATTERN

# The largest integer a JSON number carries exactly (a client's encoder may write a larger one as
# a float, which would then no longer be the integer it meant).
MAX_SEED = 2**53 - 1


class PredictParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    top_k: int | None = Field(default=None, ge=1, le=1000, description="alternatives per input (next-word default 5)")

    # Completion (next-word models with a step model).
    max_words: int | None = Field(default=None, ge=1, le=64, description="complete each input with up to N words")
    strategy: Literal["greedy", "beam", "sample"] = Field(default="greedy", description="how completions are chosen")
    beam_width: int = Field(default=4, ge=1, le=16, description="beam: hypotheses kept per step")
    completions: int = Field(
        default=1,
        ge=1,
        le=16,
        description="completions per input: sample draws this many, beam returns its best (at most beam_width), "
        "greedy always one",
    )
    temperature: float = Field(default=1.0, gt=0, le=10, allow_inf_nan=False, description="sample: divides the logits")
    top_p: float = Field(default=1.0, gt=0, le=1, allow_inf_nan=False, description="sample: nucleus mass")
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, description="sample: for reproducible draws")
    stop_at_sentence_end: bool = Field(
        default=True, description="a completion may end with the sentence before max_words; false: always max_words"
    )


class ModelQuery(BaseModel):
    """One of several models asked about the same inputs."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(pattern=NAME_PATTERN, description="model name, e.g. intent")
    version: str | None = Field(default=None, pattern=NAME_PATTERN, description="default: newest")
    params: PredictParams | None = Field(default=None, description="default: the request's `params`")


MAX_MODELS_PER_REQUEST = 8


class PredictRequest(BaseModel):
    # Exactly one of `model` and `models`; `version` only with `model` (stated in the schema too).
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["model"], "properties": {"model": {"type": "string"}, "models": {"type": "null"}}},
                {
                    "required": ["models"],
                    "properties": {"models": {"type": "array"}, "model": {"type": "null"}, "version": {"type": "null"}},
                },
            ]
        },
    )

    model: str | None = Field(default=None, pattern=NAME_PATTERN, description="model name, e.g. sentiment")
    version: str | None = Field(default=None, pattern=NAME_PATTERN, description="default: newest")
    inputs: list[str] = Field(min_length=1, description="texts, answered in order (rules: `service.query`)")
    params: PredictParams = Field(default_factory=PredictParams)
    models: list[ModelQuery] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_MODELS_PER_REQUEST,
        description="instead of `model`: ask several models about the same inputs, answered together in order",
    )

    @model_validator(mode="after")
    def _one_way_to_name_models(self) -> Self:
        if (self.model is None) == (self.models is None):
            raise ValueError("give either `model` or `models`")
        if self.models is not None and self.version is not None:
            raise ValueError("with `models`, give `version` per model")
        return self


class Scored(BaseModel):
    label: str
    score: float


class ScoredToken(BaseModel):
    token: str
    score: float
    placeholder: str | None = Field(
        default=None,
        description="set when the token stands for a class of words: `number` for the corpus's number token "
        "(PTB writes every number as N), which an editor shows as a number slot",
    )
    joins: bool | None = Field(
        default=None,
        description="true when the word is written onto the text's last word without a space: a contraction "
        "after a word (`we` + `'re`: `we're`) or a number after a currency sign, where the model's corpus splits them",
    )


class ClassifierOutput(BaseModel):
    label: str
    score: float = Field(
        description="the label's calibrated probability; for an out-of-scope answer, 1 - the probability of "
        "the best in-scope intent"
    )
    out_of_scope: bool | None = Field(
        default=None,
        description="true when the model answers its fallback label: no intent was confident enough, or its "
        "out-of-scope class won",
    )
    alternatives: list[Scored] | None = Field(
        default=None,
        description="the `top_k` best labels; on an out-of-scope answer, the best in-scope intents (3 unless "
        "`top_k` says otherwise)",
    )
    truncated: bool = False
    windows: int | None = Field(
        default=None,
        ge=2,
        description="present when the text was longer than the model's max_sequence_length tokens: it was read "
        "whole, in this many windows of whole sentences, and the answer is the mean of their probabilities",
    )


class Completion(BaseModel):
    text: str = Field(
        description="the generated words as text: space-separated, with contractions written onto the word before "
        "them and numbers onto a currency sign where the model's corpus splits them (`isn't`, `$n`)"
    )
    tokens: list[str] = Field(description="the generated words as the model's tokens")
    joins: bool | None = Field(
        default=None, description="true when the first word is written onto the text's last word without a space"
    )
    logprob: float = Field(description="natural log-probability of the generated words (and end of sentence)")
    finished: bool = Field(description="true when the model ended the sentence before max_words")


class NextWordOutput(BaseModel):
    next: list[ScoredToken]
    completions: list[Completion] | None = Field(default=None, description="present when params.max_words is set")
    truncated: bool = False


class SuggestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(pattern=NAME_PATTERN, description="a next-word model with a step model")
    version: str | None = Field(default=None, pattern=NAME_PATTERN, description="default: newest")
    text: str = Field(
        description="the text typed since the answer whose `state` is sent (may be empty or a space); "
        "without `state`, the whole text (empty: the words a text starts with)"
    )
    state: str | None = Field(default=None, description="the `state` of the previous answer, to continue from it")
    top_k: int = Field(default=5, ge=1, le=1000, description="suggestions")


class SuggestResponse(BaseModel):
    model: str
    version: str
    next: list[ScoredToken] = Field(
        description="the likeliest next words; while a word is being typed (`pending`), the likeliest words "
        "that start with it"
    )
    pending: str = Field(description="the word being typed: read once a space ends it")
    read: int = Field(description="tokens this request read (its cost)")
    state: str = Field(description="send it back with the next text typed; signed, opaque, a few kilobytes")


class PredictResponse(BaseModel):
    model: str
    version: str
    outputs: list[ClassifierOutput | NextWordOutput]


class MultiPredictResponse(BaseModel):
    """The answer to a request with `models`: one result per model, in the order asked."""

    results: list[PredictResponse]


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "the body is not a JSON object (or not a whole gzip or deflate stream)",
        401: "a valid API key is required",
        404: "unknown model or version",
        409: "the continuation `state` belongs to another model version: resend the whole text",
        413: "the body is too large (as sent, or once decompressed)",
        415: "the body's Content-Encoding is not gzip, deflate or identity",
        422: "invalid fields or limits exceeded",
        500: "inference failed for the batch holding this request",
        503: "the model's queue is full (see Retry-After)",
        504: "no answer within the inference deadline",
    }.items()
}


class ProtocolError(BaseModel):
    """The KServe v2 protocol's error body."""

    error: str


V2_ERROR_RESPONSES: dict[int | str, dict] = {
    status: {"model": ProtocolError, "description": ERROR_RESPONSES[status]["description"]}
    for status in (400, 401, 404, 413, 415, 422, 500, 503, 504)
}
