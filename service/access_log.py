"""One access line per request, written off the event loop.

Through `logging`, each line cost the loop a LogRecord, python-json-logger's walk over it, the
handler's lock and a flushed write: about a seventh of single-text throughput (BENCHMARKS.md, access
log). Here the loop appends a tuple to a deque (atomic under the GIL, no lock), and a thread
formats what has gathered and writes it with one call every `FLUSH_S`. The line has the shape of
the service's other log lines (`service.logs`): the same keys in JSON, the same layout in text,
logger `service.access`, written to the same stream (stderr). It is on whenever that logger would
log at INFO (`RNNSERVE_LOG_LEVEL=warning` turns it off). Request bodies never reach it.

Hand-written rather than `logging.handlers.QueueHandler`: that handler still builds and copies a
LogRecord and formats its message on the caller's thread, which is most of the cost removed here.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections import deque
from typing import TextIO

FLUSH_S = 0.05
# A JSON string literal, ASCII only (C-accelerated): a path's newline, U+2028 or lone surrogate can
# neither split a line nor stop the writer.
_quote = json.encoder.encode_basestring_ascii
LOGGER = "service.access"

# when, method (HTTP, or "gRPC"), path, route (or gRPC method), status (or gRPC code), seconds, request id
Entry = tuple[float, str, str, str, int | str, float, str]


class AccessLog:
    def __init__(self, log_format: str, stream: TextIO | None = None) -> None:
        self._on = False  # decided at start, once logging is configured
        self._json = log_format == "json"
        self._stream = stream
        self._pending: deque[Entry] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._process = os.getpid()
        self._second = -1
        self._stamp = ""

    def record(self, method: str, path: str, route: str, status: int | str, seconds: float, request_id: str) -> None:
        """Event loop: note one answered request (a deque append; no formatting, no I/O)."""
        if self._on:
            self._pending.append((time.time(), method, path, route, status, seconds, request_id))

    def start(self) -> None:
        self._on = logging.getLogger(LOGGER).isEnabledFor(logging.INFO)
        if self._on and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Write what is pending, then end the thread."""
        self._on = False
        if self._thread is not None:
            self._stopping = True
            self._wake.set()
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(FLUSH_S)
            self._write()
        self._write()

    def _write(self) -> None:
        if not self._pending:
            return
        lines = []
        pending = self._pending
        while pending:
            lines.append(self._line(pending.popleft()))
        stream = self._stream or sys.stderr  # looked up late: tests and tools replace sys.stderr
        stream.write("".join(lines))
        stream.flush()

    def _line(self, entry: Entry) -> str:
        when, method, path, route, status, seconds, rid = entry
        second = int(when)
        if second != self._second:  # a batch's lines mostly share their second
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        stamp = f"{self._stamp},{int((when - second) * 1000):03d}"
        ms = round(seconds * 1000, 2)
        if not self._json:
            return f"{stamp} INFO {LOGGER} [{rid}] request {method} {_quote(path)} {status} {ms} ms\n"
        # The keys and order of `service.logs`'s JSON lines, written out directly (json.dumps of a
        # dict cost twice as much); every string from the request is quoted and escaped.
        code = status if isinstance(status, int) else _quote(status)
        return (
            f'{{"time": "{stamp}", "level": "INFO", "logger": "{LOGGER}", "message": "request", '
            f'"request_id": {_quote(rid)}, "process": {self._process}, "method": {_quote(method)}, '
            f'"path": {_quote(path)}, "route": {_quote(route)}, "status": {code}, "duration_ms": {ms}}}\n'
        )
