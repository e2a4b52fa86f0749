"""Typed errors and the one place where they become HTTP responses or gRPC statuses.

Every HTTP error answer has the shape `{"error": {"type": ..., "message": ...}}` (KServe v2 routes:
`{"error": message}`); a gRPC call ends with the status code standing for the HTTP status (as
gRPC's own HTTP mapping pairs them) and the message as its details.
"""

from __future__ import annotations

import logging

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ServiceError(Exception):
    status_code = 500
    error_type = "internal_error"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class InvalidInput(ServiceError):
    status_code = 422
    error_type = "invalid_input"


class InvalidState(InvalidInput):
    """A continuation token this service did not issue (tampered, truncated, another key)."""

    error_type = "invalid_state"


class MalformedRequest(ServiceError):
    """The body's framing is broken (e.g. binary tensor lengths), before its content is read."""

    status_code = 400
    error_type = "malformed_request"


class ModelNotFound(ServiceError):
    status_code = 404
    error_type = "model_not_found"


class StaleState(ServiceError):
    """A genuine continuation token that this model version cannot resume (another version)."""

    status_code = 409
    error_type = "stale_state"


class Overloaded(ServiceError):
    status_code = 503
    error_type = "overloaded"


class Unauthorized(ServiceError):
    status_code = 401
    error_type = "unauthorized"


class PayloadTooLarge(ServiceError):
    status_code = 413
    error_type = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    """A request body in a coding the service cannot read (a Content-Encoding other than gzip or deflate)."""

    status_code = 415
    error_type = "unsupported_media_type"


class DeadlineExceeded(ServiceError):
    status_code = 504
    error_type = "deadline_exceeded"


class InferenceFailed(ServiceError):
    status_code = 500
    error_type = "inference_failed"


GRPC_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def grpc_code(error: ServiceError) -> grpc.StatusCode:
    return GRPC_CODES.get(error.status_code, grpc.StatusCode.INTERNAL)


def error_body(path: str, error_type: str, message: str) -> dict:
    """`{"error": {"type", "message"}}`; KServe v2 routes use that protocol's `{"error": message}`."""
    if path.startswith("/v2"):
        return {"error": message}
    return {"error": {"type": error_type, "message": message}}


PATTERN_MESSAGES = {
    "inputs": "a text must hold a visible character and no NUL characters",
    "model": "a name of up to 128 letters, digits, '.', '_' or '-'",
    "version": "a name of up to 128 letters, digits, '.', '_' or '-'",
}


def _describe(errors: list[dict]) -> tuple[str, str]:
    """A readable message from pydantic's error list; non-JSON bodies get their own type."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return "invalid_json", "request body is not valid JSON"
    if any(tuple(e.get("loc", ())) == ("body",) and e.get("type") != "value_error" for e in errors):
        return "invalid_json", "request body must be a JSON object (Content-Type: application/json)"
    parts = []
    for error in errors[:5]:
        location = [str(p) for p in error.get("loc", ()) if p != "body"]
        where = ".".join(location)
        message = error.get("msg", "invalid").removeprefix("Value error, ")
        if error.get("type") == "string_pattern_mismatch":
            message = PATTERN_MESSAGES.get(location[0] if location else "", message)
        parts.append(f"{where or 'body'}: {message}")
    return "invalid_request", "; ".join(parts)


def log_server_fault(error: ServiceError) -> None:
    """The service's own failures are logged; a caller's mistakes are only answered."""
    if error.status_code >= 500:
        log.warning("%s: %s", error.error_type, error.message)


async def _service_error(request: Request, error: ServiceError) -> JSONResponse:
    log_server_fault(error)
    return JSONResponse(error_body(request.url.path, error.error_type, error.message), error.status_code, error.headers)


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    error_type, message = _describe(list(error.errors()))
    status = 400 if error_type == "invalid_json" else 422
    return JSONResponse(error_body(request.url.path, error_type, message), status)


def _unreadable_body(cause: BaseException | None) -> str | None:
    """What FastAPI's "There was an error parsing the body" stands for, where JSON's own error
    (a 400 `invalid_json` above) does not say: the cause it raised it from."""
    if isinstance(cause, UnicodeDecodeError):
        # json.loads reads a BOM or NUL pattern as UTF-16 or -32: the encoding names the attempt.
        return f"request body is not valid JSON: its bytes are not UTF-8 text ({cause.encoding}: {cause.reason})"
    if isinstance(cause, RecursionError):
        return "request body is not valid JSON here: it nests arrays or objects too deeply"
    return None


async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    if error.status_code == 400 and (message := _unreadable_body(error.__cause__)) is not None:
        return JSONResponse(error_body(request.url.path, "invalid_json", message), 400)
    error_type = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    return JSONResponse(error_body(request.url.path, error_type, str(error.detail)), error.status_code, error.headers)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error")
    return JSONResponse(error_body(request.url.path, "internal_error", "internal server error"), 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
