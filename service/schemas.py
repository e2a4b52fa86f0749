"""Request and response bodies of `POST /predict`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class PredictParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    top_k: int | None = Field(
        default=None, ge=1, le=1000, description="alternatives per input (next-word default 5)"
    )


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(pattern=NAME_PATTERN, description="model name, e.g. sentiment")
    version: str | None = Field(default=None, pattern=NAME_PATTERN, description="default: newest")
    inputs: list[str] = Field(min_length=1, description="texts, answered in order")
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
    alternatives: list[Scored] | None = None
    truncated: bool = False


class NextWordOutput(BaseModel):
    next: list[ScoredToken]
    truncated: bool = False


class PredictResponse(BaseModel):
    model: str
    version: str
    outputs: list[ClassifierOutput | NextWordOutput]
