"""Structured logging: JSON lines (python-json-logger) carrying the request id of the current request."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

request_id: ContextVar[str] = ContextVar("request_id", default="-")

_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_from(incoming: str) -> str:
    """The caller's request id (header or gRPC metadata) when it is a safe token, else a new one."""
    return incoming if _VALID_ID.fullmatch(incoming) else uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def configure_logging(level: str, fmt: str, uvicorn_access: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(process)d",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn writes its own access line whenever its logger has somewhere to go (it asks
    # `hasHandlers()`), so it reaches the root handler only when asked for: the service writes its
    # own line (`service.access_log`), and a second one per request cost about a tenth of the
    # throughput of each worker process, where logging is configured after uvicorn's.
    logging.getLogger("uvicorn.access").propagate = uvicorn_access
