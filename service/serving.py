"""What every protocol's inference handlers share, built once by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from service.access_log import AccessLog
from service.continuation import ContinuationKeys
from service.metrics import Metrics
from service.query import QueryRules
from service.repository import ModelRepository
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class Serving:
    """What an inference route needs, as one dependency: FastAPI resolves every dependency on
    every request (its solver was the largest single item in a profile of `/predict`), so hot
    routes take this instead of three."""

    repository: ModelRepository
    metrics: Metrics
    settings: Settings
    rules: QueryRules
    continuations: ContinuationKeys
    access_log: AccessLog
