"""Request and response bodies of `POST /predict`."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
# A text holds at least one visible character and no NUL (the regex engine is linear-time).
Text = Annotated[str, Field(pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")]


class PredictParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    top_k: int | None = Field(default=None, ge=1, le=1000, description="alternatives per input (next-word default 5)")


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(pattern=NAME_PATTERN, description="model name, e.g. sentiment")
    version: str | None = Field(default=None, pattern=NAME_PATTERN, description="default: newest")
    inputs: list[Text] = Field(min_length=1, description="texts, answered in order")
    params: PredictParams = Field(default_factory=PredictParams)


class Scored(BaseModel):
    label: str
    score: float


class ScoredToken(BaseModel):
    token: str
    score: float


class ClassifierOutput(BaseModel):
    label: str
    score: float
    out_of_scope: bool | None = Field(
        default=None, description="true when no intent reached the model's confidence threshold"
    )
    alternatives: list[Scored] | None = None
    truncated: bool = False


class NextWordOutput(BaseModel):
    next: list[ScoredToken]
    truncated: bool = False


class PredictResponse(BaseModel):
    model: str
    version: str
    outputs: list[ClassifierOutput | NextWordOutput]


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "the body is not a JSON object",
        401: "a valid API key is required",
        404: "unknown model or version",
        413: "the body is too large",
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
    for status in (400, 401, 404, 413, 422, 500, 503, 504)
}
