"""Sync and async clients with timeouts and retries on 429/503 that honour `Retry-After`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from rnnserve_client.types import (
    ClassifierResult,
    NextWordResult,
    Prediction,
    RnnServeError,
    Suggestion,
    parse_prediction,
    parse_results,
    parse_suggestion,
)

RETRY_STATUSES = frozenset({429, 503})
# A continuation state the service cannot resume: send the whole text instead.
STATE_ERRORS = frozenset({"invalid_state", "stale_state"})


def _body(model: str, inputs: list[str], version: str | None, params: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "inputs": list(inputs)}
    if version is not None:
        body["version"] = version
    params = {k: v for k, v in params.items() if v is not None}
    if params:
        body["params"] = params
    return body


def _suggest_body(model: str, text: str, state: str | None, top_k: int, version: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "text": text, "top_k": top_k}
    if state is not None:
        body["state"] = state
    if version is not None:
        body["version"] = version
    return body


def _ask_body(inputs: list[str], models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"inputs": list(inputs), "models": [{"model": name, "params": params} for name, params in models.items()]}


def _completion_params(max_words: int, strategy: str, **options: Any) -> dict[str, Any]:
    return {"max_words": max_words, "strategy": strategy, **options}


def _error(response: httpx.Response) -> RnnServeError:
    try:
        error = response.json()["error"]
        if isinstance(error, dict):
            return RnnServeError(response.status_code, error.get("type", "error"), error.get("message", ""))
        return RnnServeError(response.status_code, "error", str(error))
    except (ValueError, KeyError, TypeError):
        return RnnServeError(response.status_code, "error", response.text[:200])


class _Policy:
    def __init__(self, retries: int, backoff_s: float, max_wait_s: float) -> None:
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s

    def wait_s(self, attempt: int, response: httpx.Response | None) -> float:
        """Retry-After when the service gives one (seconds), else exponential backoff."""
        if response is not None:
            retry_after = response.headers.get("retry-after", "")
            if retry_after.replace(".", "", 1).isdigit():
                return min(float(retry_after), self.max_wait_s)
        return min(self.backoff_s * (2**attempt), self.max_wait_s)


def _options(
    *,
    api_key: str | None = None,
    timeout_s: float = 10.0,
    retries: int = 3,
    backoff_s: float = 0.1,
    max_wait_s: float = 10.0,
) -> tuple[float, dict[str, str], _Policy]:
    headers = {"x-api-key": api_key} if api_key else {}
    return timeout_s, headers, _Policy(retries, backoff_s, max_wait_s)


class Client:
    def __init__(self, base_url: str = "http://127.0.0.1:8000", **options: Any) -> None:
        """Options: api_key, timeout_s (10), retries (3), backoff_s (0.1), max_wait_s (10)."""
        timeout_s, headers, self._policy = _options(**options)
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, headers=headers)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _post(self, body: dict[str, Any], path: str = "/predict") -> dict[str, Any]:
        for attempt in range(self._policy.retries + 1):
            try:
                response = self._http.post(path, json=body)
            except httpx.TransportError as error:
                if attempt == self._policy.retries:
                    raise RnnServeError(None, "unreachable", str(error)) from error
                time.sleep(self._policy.wait_s(attempt, None))
                continue
            if response.status_code == 200:
                return response.json()
            if response.status_code not in RETRY_STATUSES or attempt == self._policy.retries:
                raise _error(response)
            time.sleep(self._policy.wait_s(attempt, response))
        raise AssertionError("unreachable")

    def predict(self, model: str, inputs: list[str], *, version: str | None = None, **params: Any) -> Prediction:
        """`params` as the service takes them: top_k, max_words, strategy, ..."""
        return parse_prediction(self._post(_body(model, inputs, version, params)))

    def ask(self, inputs: list[str], models: dict[str, dict[str, Any]]) -> dict[str, Prediction]:
        """Several models about the same inputs in one request: {model name: its params}."""
        return parse_results(self._post(_ask_body(inputs, models)))

    def classify(self, model: str, texts: list[str], *, top_k: int | None = None) -> list[ClassifierResult]:
        outputs = self.predict(model, texts, top_k=top_k).outputs
        return [o for o in outputs if isinstance(o, ClassifierResult)]

    def next_words(self, model: str, prefixes: list[str], *, top_k: int = 5) -> list[NextWordResult]:
        outputs = self.predict(model, prefixes, top_k=top_k).outputs
        return [o for o in outputs if isinstance(o, NextWordResult)]

    def complete(
        self, model: str, prefixes: list[str], *, max_words: int = 5, strategy: str = "greedy", **options: Any
    ) -> list[NextWordResult]:
        """Completions of each prefix; options: beam_width, completions, temperature, top_p, seed, top_k."""
        params = _completion_params(max_words, strategy, **options)
        return [o for o in self.predict(model, prefixes, **params).outputs if isinstance(o, NextWordResult)]

    def suggest(
        self, model: str, text: str, *, state: str | None = None, top_k: int = 5, version: str | None = None
    ) -> Suggestion:
        """Next words after `text`, or after the text so far and `text` when `state` (a previous
        suggestion's) is given. `typing` keeps the state for you."""
        return parse_suggestion(self._post(_suggest_body(model, text, state, top_k, version), "/suggest"))

    def typing(self, model: str, *, top_k: int = 5, version: str | None = None) -> Typing:
        """Suggestions for a text as it is typed: see `Typing`."""
        return Typing(self, model, top_k, version)


class Typing:
    """One text being typed: `update(text)` with the whole text after each keystroke sends only
    what was added since the last call, with the last answer's state. After a deletion or an edit
    in the middle, or when the service cannot continue the state (restarted with another key, a
    new model version), it sends the whole text once and continues from there."""

    def __init__(self, client: Client, model: str, top_k: int, version: str | None) -> None:
        self._client, self._model, self._top_k, self._version = client, model, top_k, version
        self.text = ""
        self._state: str | None = None

    def update(self, text: str) -> Suggestion:
        suggest = self._client.suggest
        options: dict[str, Any] = {"top_k": self._top_k, "version": self._version}
        result = None
        if self._state is not None and text.startswith(self.text):
            try:
                result = suggest(self._model, text[len(self.text) :], state=self._state, **options)
            except RnnServeError as error:
                if error.error_type not in STATE_ERRORS:
                    raise
        if result is None:
            result = suggest(self._model, text, **options)
        self.text, self._state = text, result.state
        return result


class AsyncClient:
    def __init__(self, base_url: str = "http://127.0.0.1:8000", **options: Any) -> None:
        """Options as for `Client`."""
        timeout_s, headers, self._policy = _options(**options)
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, headers=headers)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _post(self, body: dict[str, Any], path: str = "/predict") -> dict[str, Any]:
        for attempt in range(self._policy.retries + 1):
            try:
                response = await self._http.post(path, json=body)
            except httpx.TransportError as error:
                if attempt == self._policy.retries:
                    raise RnnServeError(None, "unreachable", str(error)) from error
                await asyncio.sleep(self._policy.wait_s(attempt, None))
                continue
            if response.status_code == 200:
                return response.json()
            if response.status_code not in RETRY_STATUSES or attempt == self._policy.retries:
                raise _error(response)
            await asyncio.sleep(self._policy.wait_s(attempt, response))
        raise AssertionError("unreachable")

    async def predict(self, model: str, inputs: list[str], *, version: str | None = None, **params: Any) -> Prediction:
        return parse_prediction(await self._post(_body(model, inputs, version, params)))

    async def ask(self, inputs: list[str], models: dict[str, dict[str, Any]]) -> dict[str, Prediction]:
        return parse_results(await self._post(_ask_body(inputs, models)))

    async def suggest(
        self, model: str, text: str, *, state: str | None = None, top_k: int = 5, version: str | None = None
    ) -> Suggestion:
        """As `Client.suggest`."""
        return parse_suggestion(await self._post(_suggest_body(model, text, state, top_k, version), "/suggest"))

    async def classify(self, model: str, texts: list[str], *, top_k: int | None = None) -> list[ClassifierResult]:
        outputs = (await self.predict(model, texts, top_k=top_k)).outputs
        return [o for o in outputs if isinstance(o, ClassifierResult)]

    async def next_words(self, model: str, prefixes: list[str], *, top_k: int = 5) -> list[NextWordResult]:
        outputs = (await self.predict(model, prefixes, top_k=top_k)).outputs
        return [o for o in outputs if isinstance(o, NextWordResult)]

    async def complete(
        self, model: str, prefixes: list[str], *, max_words: int = 5, strategy: str = "greedy", **options: Any
    ) -> list[NextWordResult]:
        params = _completion_params(max_words, strategy, **options)
        outputs = (await self.predict(model, prefixes, **params)).outputs
        return [o for o in outputs if isinstance(o, NextWordResult)]
