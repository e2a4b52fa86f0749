"""Pure ASGI middleware: observability (request ids, metrics, access logs) and the request-body limit."""

from __future__ import annotations

import json
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.access_log import AccessLog
from service.errors import PayloadTooLarge, ServiceError, error_body
from service.logs import request_id, request_id_from
from service.metrics import Metrics


def _route(scope: Scope) -> str:
    return getattr(scope.get("route"), "path", None) or "unmatched"


class ObservabilityMiddleware:
    """Per request: takes the caller's `X-Request-ID` (or makes one) and returns it, counts and
    times the request by route template (bounded labels), and logs one access line.

    Outermost, so requests answered by the other middleware (413 for oversized bodies) are counted
    too. The log line never holds request bodies, so texts stay out of logs.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: AccessLog) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = request_id_from(incoming)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route(scope)
            self.metrics.http_requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.http_latency.labels(route).observe(elapsed)
            self.access_log.record(scope["method"], scope["path"], route, status, elapsed, rid)
            request_id.reset(token)


async def send_error(scope: Scope, send: Send, error: ServiceError) -> None:
    """An error answer from middleware, in the shape the routes' errors have."""
    payload = json.dumps(error_body(scope["path"], error.error_type, error.message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class BodyLimitMiddleware:
    """Answers 413 for bodies over the limit, by Content-Length or by what actually arrives."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, scope: Scope, send: Send) -> None:
        await send_error(scope, send, PayloadTooLarge(f"request body exceeds {self.max_bytes} bytes"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, send)
            return
        received = 0
        started = too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if too_large:  # the app answered the interrupted read its own way: answer 413 instead
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._reject(scope, send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(scope, send)


class _TooLarge(Exception):
    pass
