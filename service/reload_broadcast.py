"""`POST /reload` for every worker process (`RNNSERVE_WORKERS`), not only the one that got it.

The workers share a directory (`service.process_group`). It holds a reload counter, `epoch`, and
one file per worker naming the last epoch that worker has applied. The worker answering
`/reload` raises the epoch (under a file lock), reloads its own repository, then waits until
every live worker has applied it: each follows the counter (a read of a few bytes every quarter
second) and reloads when it moves. The answer says how many processes reloaded, so a caller knows
that every process serves the new set. Files, not signals: uvicorn's supervisor keeps SIGHUP for
replacing the workers, and a file survives a worker that starts in the middle of a reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

log = logging.getLogger(__name__)

POLL_S = 0.25
WAIT_S = 120.0  # a peer may be loading several bundles


class ReloadBroadcast:
    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._epoch_file = directory / "epoch"
        self._mine = directory / f"worker-{os.getpid()}"
        self._applied = self._read_epoch()  # what this process loaded at start-up is current

    def register(self) -> None:
        self._write(self._mine, self._applied)

    def unregister(self) -> None:
        self._mine.unlink(missing_ok=True)

    def announce(self) -> int:
        """A new epoch, which this process applies itself (the caller reloads)."""
        with open(self._directory / "lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            epoch = self._read_epoch() + 1
            self._write(self._epoch_file, epoch)
        self._applied = epoch
        self._write(self._mine, epoch)
        return epoch

    async def wait_for_peers(self, epoch: int, timeout_s: float = WAIT_S) -> tuple[int, int]:
        """(processes that applied `epoch`, live processes), once all have or the time is up."""
        deadline = time.monotonic() + timeout_s
        while True:
            applied, live = self._census(epoch)
            if applied == live or time.monotonic() > deadline:
                return applied, live
            await asyncio.sleep(POLL_S / 5)

    async def follow(self, reload: Callable[[], Awaitable[object]]) -> None:
        """Reload whenever another process raises the epoch (runs for the life of the process)."""
        while True:
            await asyncio.sleep(POLL_S)
            epoch = self._read_epoch()
            if epoch <= self._applied:
                continue
            try:
                await reload()
            except Exception:  # keep following; the next reload may succeed
                log.exception("reload announced by another worker failed")
            self._applied = max(self._applied, epoch)
            self._write(self._mine, self._applied)

    def _census(self, epoch: int) -> tuple[int, int]:
        applied = live = 0
        for path in self._directory.glob("worker-*"):
            pid = int(path.name.removeprefix("worker-"))
            try:
                os.kill(pid, 0)
            except ProcessLookupError:  # a worker that died without unregistering
                path.unlink(missing_ok=True)
                continue
            except PermissionError:
                pass
            live += 1
            with contextlib.suppress(FileNotFoundError, ValueError):
                applied += int(path.read_text() or 0) >= epoch
        return applied, live

    def _read_epoch(self) -> int:
        try:
            return int(self._epoch_file.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    @staticmethod
    def _write(path: Path, value: int) -> None:
        """Readers see the old value or the new one, never a half-written file."""
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(str(value))
        os.replace(partial, path)
