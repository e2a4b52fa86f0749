"""A small client for rnnserve's `POST /predict`, depending only on httpx.

from rnnserve_client import Client
with Client("http://127.0.0.1:8000") as client:
    [result] = client.classify("intent", ["will it rain tomorrow"])
    print(result.label, result.score)
"""

from rnnserve_client.client import AsyncClient, Client, Typing
from rnnserve_client.types import (
    ClassifierResult,
    Completion,
    NextWordResult,
    Prediction,
    RnnServeError,
    Scored,
    Suggestion,
    Word,
)

__all__ = [
    "AsyncClient",
    "ClassifierResult",
    "Client",
    "Completion",
    "NextWordResult",
    "Prediction",
    "RnnServeError",
    "Scored",
    "Suggestion",
    "Typing",
    "Word",
]
