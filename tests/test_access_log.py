"""The access line: one per request, written by its thread, valid JSON whatever the path holds."""

from __future__ import annotations

import io
import json
import logging

from service.access_log import LOGGER, AccessLog


def test_lines_are_json_with_every_field_and_hostile_paths_escaped() -> None:
    logging.getLogger(LOGGER).setLevel(logging.INFO)
    stream = io.StringIO()
    access = AccessLog("json", stream)
    access.start()
    hostile = '/predict?q="}\n{"level": "ERROR"\u2028\udc80'
    access.record("POST", hostile, "/predict", 200, 0.012345, "req-1")
    access.record("gRPC", "/inference.GRPCInferenceService/ModelInfer", "ModelInfer", "NOT_FOUND", 0.5, "r2")
    access.stop()  # writes what is pending
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert first["path"] == hostile and first["status"] == 200 and first["duration_ms"] == 12.35
    assert first["logger"] == LOGGER and first["request_id"] == "req-1" and isinstance(first["process"], int)
    assert second["status"] == "NOT_FOUND" and second["route"] == "ModelInfer"
    access.record("POST", "/predict", "/predict", 200, 0.1, "late")  # after stop: not kept
    assert len(stream.getvalue().splitlines()) == 2


def test_off_below_info() -> None:
    logging.getLogger(LOGGER).setLevel(logging.WARNING)
    try:
        stream = io.StringIO()
        access = AccessLog("text", stream)
        access.start()
        access.record("POST", "/predict", "/predict", 200, 0.1, "r")
        access.stop()
        assert stream.getvalue() == ""
    finally:
        logging.getLogger(LOGGER).setLevel(logging.NOTSET)
