"""API-key authentication: `X-API-Key: KEY` or `Authorization: Bearer KEY`, compared in constant
time. The same rule for HTTP headers and gRPC metadata (lower-case keys on both)."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Request

from service.errors import Unauthorized

CHALLENGE = {"WWW-Authenticate": "Bearer"}


def presented_key(header: Callable[[str], str | None]) -> str | None:
    """The key a caller presents; `header` looks a lower-case header (metadata) name up."""
    key = header("x-api-key")
    if key:
        return key
    scheme, _, token = (header("authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def check_key(keys: list[bytes], presented: str | None) -> None:
    """Raise `Unauthorized` unless `presented` is one of `keys` (no keys: no authentication)."""
    if not keys:
        return
    if presented is None:
        raise Unauthorized("an API key is required", headers=CHALLENGE)
    candidate = presented.encode()
    # Compare with every key so that the time taken does not depend on which one matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key)
    if not matched:
        raise Unauthorized("invalid API key", headers=CHALLENGE)


def _check(request: Request) -> None:
    keys: list[bytes] = request.app.state.api_keys
    if keys:
        check_key(keys, presented_key(request.headers.get))


async def require_api_key(request: Request) -> None:
    _check(request)


async def require_api_key_for_health(request: Request) -> None:
    if request.app.state.settings.auth_health:
        _check(request)


async def require_api_key_for_metrics(request: Request) -> None:
    if request.app.state.settings.auth_metrics:
        _check(request)
