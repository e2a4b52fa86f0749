"""API-key authentication: `X-API-Key: KEY` or `Authorization: Bearer KEY`, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request

from service.errors import Unauthorized


def _presented(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _check(request: Request) -> None:
    keys: list[bytes] = request.app.state.api_keys
    if not keys:
        return
    presented = _presented(request)
    if presented is None:
        raise Unauthorized("an API key is required", headers={"WWW-Authenticate": "Bearer"})
    candidate = presented.encode()
    # Compare with every key so that the time taken does not depend on which one matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key)
    if not matched:
        raise Unauthorized("invalid API key", headers={"WWW-Authenticate": "Bearer"})


async def require_api_key(request: Request) -> None:
    _check(request)


async def require_api_key_for_health(request: Request) -> None:
    if request.app.state.settings.auth_health:
        _check(request)


async def require_api_key_for_metrics(request: Request) -> None:
    if request.app.state.settings.auth_metrics:
        _check(request)
