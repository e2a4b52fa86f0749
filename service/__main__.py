"""`python -m service`: start uvicorn on the configured host and port."""

from __future__ import annotations

import logging
import os
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from service.listener import ReusePortListener, reuse_port_supported
from service.logs import configure_logging
from service.process_group import shared_by_workers, worker_count
from service.settings import Settings

log = logging.getLogger("service")  # not "__main__" under `python -m service`


def main() -> None:
    # The tokenizer's own thread pool would fight ONNX Runtime's threads and the event loop for the
    # same cores (1.45 times the CPU to encode a 32-text request on 2 cores); a request's texts are
    # encoded on one thread unless the operator sets the library's variable.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format, settings.access_log)
    # Resolved once, here: the workers (and the thread split) see the number, not "auto".
    os.environ["RNNSERVE_WORKERS"] = str(worker_count(settings))
    settings = Settings()
    options = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "timeout_graceful_shutdown": 30,
        "log_config": None,  # keep the service's structured logging
    }
    if settings.workers == 1:
        from service.app import create_app  # imported here: a parent of workers does not serve

        uvicorn.run(create_app(settings), **options)
        return
    with shared_by_workers(settings):
        if not (settings.reuse_port and reuse_port_supported()):
            uvicorn.run("service.app:worker_app", factory=True, workers=settings.workers, **options)
            return
        # uvicorn's supervisor, with a socket of its own for each worker (`service.listener`).
        config = uvicorn.Config("service.app:worker_app", factory=True, workers=settings.workers, **options)
        try:
            listener = ReusePortListener(settings.host, settings.port)
        except OSError as error:  # as uvicorn says it when it binds: the address, not a traceback
            log.error("cannot listen on %s:%d: %s", settings.host, settings.port, error)
            sys.exit(STARTUP_FAILURE)
        host, port = listener.address
        log.info("listening on http://%s:%d, one SO_REUSEPORT socket per worker", host, port)
        try:
            Multiprocess(config, sockets=[listener]).run()  # type: ignore[list-item]
        except KeyboardInterrupt:
            pass
        finally:
            listener.close()


if __name__ == "__main__":
    main()
