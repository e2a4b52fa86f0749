"""Compressed request bodies (`Content-Encoding: gzip` or `deflate`), as Triton's HTTP endpoint
takes them: tritonclient's `request_compression_algorithm` sends them, and KServe v2's binary
framing (`Inference-Header-Content-Length`) counts the bytes after decompression.

Pure ASGI, inside the body limit: the limit holds for the bytes on the wire, and the same limit
holds again for what they inflate to, so that a small body cannot expand without bound (a
"zip bomb"). Any other coding is answered 415, since the routes would read it as JSON.
"""

from __future__ import annotations

import zlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import MalformedRequest, PayloadTooLarge, UnsupportedMediaType
from service.middleware import send_error

# zlib's window bits: a gzip member (RFC 1952), or HTTP's "deflate", a zlib stream (RFC 9110 8.4.1.2).
_WINDOW_BITS = {b"gzip": 16 + zlib.MAX_WBITS, b"x-gzip": 16 + zlib.MAX_WBITS, b"deflate": zlib.MAX_WBITS}


def inflate(data: bytes, coding: bytes, max_bytes: int) -> bytes:
    """The decompressed body: `MalformedRequest` for data that is not one whole stream,
    `PayloadTooLarge` past `max_bytes`."""
    name = coding.decode("latin-1")
    inflater = zlib.decompressobj(_WINDOW_BITS[coding])
    try:
        # One byte over the limit is enough to know it is over: the rest is never inflated.
        body = inflater.decompress(data, max_bytes + 1)
        if len(body) <= max_bytes:  # all the input was read: what zlib still holds is small
            body += inflater.flush()
    except zlib.error as error:
        raise MalformedRequest(f"request body is not valid {name} data ({error})") from None
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"request body exceeds {max_bytes} bytes once decompressed")
    if not inflater.eof or inflater.unused_data:
        problem = "is truncated" if not inflater.eof else "has bytes after its end"
        raise MalformedRequest(f"the {name} stream of the request body {problem}")
    return body


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the request declares a body: a chunked one, or a Content-Length above 0."""
    for key, value in headers:
        if key == b"transfer-encoding" or (key == b"content-length" and value.strip() not in (b"0", b"")):
            return True
    return False


def _replay(first: Message, receive: Receive) -> Receive:
    """A receive that gives `first`, then what `receive` gives."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if not given:
            given = True
            return first
        return await receive()

    return replayed


class RequestDecompressionMiddleware:
    """Inflates gzip and deflate request bodies before the routes read them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        codings = [
            value.strip().lower()
            for key, value in scope["headers"]
            if key == b"content-encoding"
            for value in value.split(b",")
            if value.strip() and value.strip().lower() != b"identity"
        ]
        if not codings or not _has_body(scope["headers"]):  # a GET's or an empty body: nothing to decode
            await self.app(scope, receive, send)
            return
        if len(codings) > 1 or codings[0] not in _WINDOW_BITS:
            listed = ", ".join(c.decode("latin-1") for c in codings)
            refusal = f"Content-Encoding {listed!r} is not supported (gzip, deflate or identity)"
            await send_error(scope, send, UnsupportedMediaType(refusal))
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away before the body ended: the app sees the disconnect itself.
                await self.app(scope, _replay(message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        try:
            body = inflate(b"".join(chunks), codings[0], self.max_bytes)
        except (MalformedRequest, PayloadTooLarge) as error:
            await send_error(scope, send, error)
            return
        dropped = (b"content-encoding", b"content-length", b"transfer-encoding")
        headers = [(k, v) for k, v in scope["headers"] if k not in dropped]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        # After the body, what the server sends next (the disconnect).
        inflated = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay(inflated, receive), send)
