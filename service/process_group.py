"""`RNNSERVE_WORKERS=N`: N server processes on one port, past what one event loop can do.

uvicorn's supervisor runs them (it starts each worker with its listening socket, restarts a
worker that dies, forwards SIGTERM to all and waits for each to drain, and on SIGHUP replaces them
one by one, each replacement ready before the old worker stops); on Linux each worker listens on a
socket of its own, so that connections spread evenly (`service.listener`). Every worker loads
the models and runs its own batchers and sessions. What they must share, the parent sets up here
before they start, through the environment they inherit:

- a directory (`RNNSERVE_SHARED_DIR`) for Prometheus's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`:
  `/metrics` on any worker answers for all of them) and for `/reload` (`service.reload_broadcast`);
- one continuation key, so a `/suggest` token from one worker holds on the others when no
  `RNNSERVE_CONTINUATION_SECRETS` is configured;
and each worker, knowing the worker count (the parent resolves auto before they start), shares
the cores out between every session of every worker (`Settings.session_threads`), so that N
processes do not each start one thread per core.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.runtime import CPU, choose_providers
from service.settings import Settings, available_cores

log = logging.getLogger(__name__)

METRICS_DIR = "metrics"
RELOAD_DIR = "reload"
MAX_AUTO_WORKERS = 8  # each worker holds every model: memory grows with the count


def worker_count(settings: Settings) -> int:
    """`RNNSERVE_WORKERS`, or for 0 (auto): one process with the CUDA execution provider, whose
    batches fill best in one process and whose every process would hold a CUDA context of its own;
    on CPU one per available core, up to MAX_AUTO_WORKERS, as one event loop is a core's worth of
    Python (BENCHMARKS.md, workers)."""
    if settings.workers:
        return settings.workers
    if choose_providers(settings.execution_provider)[0] != CPU:
        return 1
    return min(available_cores(), MAX_AUTO_WORKERS)


@contextmanager
def shared_by_workers(settings: Settings) -> Iterator[Path]:
    """The environment every worker inherits, for as long as the group runs; the directory is
    removed afterwards (the metrics of the run go with it, as with a single process)."""
    directory = Path(tempfile.mkdtemp(prefix="rnnserve-"))
    (directory / METRICS_DIR).mkdir()
    (directory / RELOAD_DIR).mkdir()
    os.environ["RNNSERVE_SHARED_DIR"] = str(directory)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory / METRICS_DIR)
    if not settings.continuation_secrets.get_secret_value():
        log.warning(
            "RNNSERVE_CONTINUATION_SECRETS is not set: the %d workers share a key made at start-up, so "
            "continuation tokens hold until the service restarts (clients then resend the text)",
            settings.workers,
        )
        os.environ["RNNSERVE_CONTINUATION_SECRETS"] = secrets.token_hex(32)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def metrics_directory() -> Path | None:
    """prometheus_client's own variable decides: it picks how values are stored when imported."""
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


def reload_directory(settings: Settings) -> Path | None:
    return settings.shared_dir / RELOAD_DIR if settings.shared_dir is not None else None
