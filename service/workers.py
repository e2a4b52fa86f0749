"""The worker-thread engine under both the dynamic batcher and the completion engine.

ONNX Runtime releases the GIL while it computes, so each model's runs happen on threads of their
own while the event loop keeps serving HTTP. Both users need the same things, with the same
meanings: an inbox, a way to stop that lets the threads finish what they hold, and admission
against a bounded number of pending inputs. They differ in how a thread consumes the inbox (one
batch per `get` for the batcher; a continuous loop that admits new jobs between steps for
completion), so the thread body is theirs.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from service.errors import InvalidInput, Overloaded

J = TypeVar("J")


class Stopped:
    """What `Inbox.get` returns once the workers are told to stop."""


STOPPED = Stopped()


class Inbox(Generic[J]):
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[J | Stopped] = queue.SimpleQueue()

    def put(self, job: J | Stopped) -> None:
        self._queue.put(job)

    def get(self) -> J | Stopped:
        """Block until a job (or the stop signal) arrives."""
        return self._queue.get()

    def poll(self) -> J | Stopped | None:
        """A job if one is waiting, else None."""
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None


class Workers(Generic[J]):
    """`count` threads running `body(inbox)`; each returns when it reads the stop signal."""

    def __init__(self, name: str, bodies: list[Callable[[Inbox[J]], None]]) -> None:
        self.inbox: Inbox[J] = Inbox()
        self._name = name
        self._bodies = bodies
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        return bool(self._threads)

    def start(self) -> None:
        if self._threads:
            return
        for number, body in enumerate(self._bodies):
            thread = threading.Thread(target=body, args=(self.inbox,), name=f"{self._name}-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    async def stop(self) -> None:
        """Signal every thread once and wait, off the event loop, until all have returned."""
        threads, self._threads = self._threads, []
        for _ in threads:
            self.inbox.put(STOPPED)
        if threads:
            await asyncio.get_running_loop().run_in_executor(None, lambda: [t.join() for t in threads])


class Capacity:
    """Admission against a bound on pending inputs (submitted and not yet answered).

    A request that can never fit, however empty the queue, is the caller's error (422): retrying
    cannot help, so it must not get a 503 with Retry-After. One that does not fit now is refused
    with 503 and Retry-After."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.pending = 0
        self._what = what

    def check_fits(self, count: int) -> None:
        if count > self.limit:
            raise InvalidInput(f"inputs: {count} texts exceed this model's {self._what} capacity of {self.limit}")

    def admit(self, count: int) -> None:
        self.check_fits(count)
        if self.pending + count > self.limit:
            raise Overloaded(f"the model's {self._what} is full; retry shortly", headers={"Retry-After": "1"})
        self.pending += count

    def release(self, count: int) -> None:
        self.pending -= count
