"""Dynamic batching: concurrent requests for one model become few, well-filled ONNX Runtime calls.

Each input sequence is a queue item, so a request with many inputs is split across batches and
small requests are merged; every request is answered exactly once, through one future, when all its
items are done.

Batches are formed on the event loop, without a scheduler task: on each arrival, on a timer and
when a batch finishes, a batch is handed to a free instance (one worker thread each, with its own
ONNX Runtime session) if the queue holds `max_batch_size` items or the oldest has waited
`max_delay`. While batches run the next one gathers, so under load batches fill without any added
delay. The worker answers a whole batch with one call back into the loop. Formation is
length-aware: when the queue holds more than a batch, the batch is the oldest item and those of
the nearest lengths (`LengthQueue`; the oldest therefore never starves), and the worker cuts a
batch into runs of similar length when their lengths differ widely, so little work goes to padding.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from rnnserve_bundle.tensors import pad_batch
from service.errors import InferenceFailed
from service.length_queue import LengthQueue
from service.workers import Capacity, Inbox, Stopped, Workers

# A run over padded ids [batch, seq] and lengths [batch] giving one output row per sequence.
RunFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

# Cut a batch where a sequence is this many times longer than the shortest of its run.
SPLIT_RATIO = 2.0
MIN_RUN = 8


class BatchObserver(Protocol):
    def batch_done(self, size: int, padded_fraction: float, queue_s: list[float], run_s: float) -> None:
        """A batch of `size` inputs ran for `run_s`; `queue_s`: how long each request with inputs in
        it had waited."""

    def queue_depth(self, depth: int) -> None: ...


class _Request:
    """One caller's sequences and the single future that answers all of them."""

    __slots__ = ("cancelled", "enqueued", "future", "remaining", "rows")

    def __init__(self, future: asyncio.Future, count: int) -> None:
        self.future = future
        self.rows: list[np.ndarray | None] = [None] * count
        self.remaining = count
        self.enqueued = time.perf_counter()
        self.cancelled = False


class _Item:
    __slots__ = ("ids", "index", "request")

    def __init__(self, request: _Request, index: int, ids: Sequence[int]) -> None:
        self.request = request
        self.index = index
        self.ids = ids


def length_runs(lengths: Sequence[int]) -> list[list[int]]:
    """Positions (into `lengths`) grouped into runs of similar length, shortest first."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    runs: list[list[int]] = [[]]
    for position in order:
        run = runs[-1]
        if len(run) >= MIN_RUN and lengths[position] > SPLIT_RATIO * lengths[run[0]]:
            runs.append([position])
        else:
            run.append(position)
    # A short tail is cheaper merged back than run on its own.
    if len(runs) > 1 and len(runs[-1]) < MIN_RUN:
        runs[-2].extend(runs.pop())
    return runs


def run_padded(run: RunFn, sequences: Sequence[Sequence[int]]) -> tuple[list[np.ndarray], float]:
    """Run each length run as one padded call; the rows in input order and the padded fraction."""
    outputs: list[np.ndarray] = [np.empty(0)] * len(sequences)
    padded_cells = real_cells = 0
    for positions in length_runs([len(s) for s in sequences]):
        ids, lengths = pad_batch([sequences[i] for i in positions])
        result = run(ids, lengths)
        for row, position in enumerate(positions):
            outputs[position] = result[row]
        padded_cells += ids.size
        real_cells += int(lengths.sum())
    return outputs, 1.0 - real_cells / max(1, padded_cells)


class DynamicBatcher:
    """Batches for one model; `runs` holds one run function per instance (its own session)."""

    def __init__(
        self,
        runs: Sequence[RunFn],
        max_batch_size: int,
        max_delay_s: float,
        max_queue_size: int,
        observer: BatchObserver | None = None,
        name: str = "model",
    ) -> None:
        if not runs:
            raise ValueError("a batcher needs at least one instance")
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.capacity = Capacity(max_queue_size, "queue")
        self._instances = len(runs)
        self._observer = observer
        self._queue: LengthQueue[_Item] = LengthQueue(lambda item: len(item.ids))
        self._free = self._instances
        self._workers: Workers[list[_Item]] = Workers(f"ort-{name}", [self._body(run) for run in runs])
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._idle: asyncio.Event | None = None

    @property
    def instances(self) -> int:
        return self._instances

    @property
    def depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()
        self._workers.start()

    async def stop(self) -> None:
        """Finish everything queued and running, then stop the worker threads."""
        if self._loop is None or self._idle is None:
            return
        while not self._is_idle():
            self._idle.clear()
            self._dispatch(flush=True)  # what waits need not wait for the delay any more
            if not self._is_idle():
                await self._idle.wait()
        await self._workers.stop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop = None

    def _is_idle(self) -> bool:
        return not len(self._queue) and self._free == self._instances

    async def submit(self, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Queue the sequences and wait for one output row each, in order."""
        if self._loop is None:
            raise RuntimeError("the batcher is not started")
        count = len(sequences)
        self.capacity.admit(count)
        request = _Request(self._loop.create_future(), count)
        for index, ids in enumerate(sequences):
            self._queue.push(_Item(request, index, ids))
        self._dispatch()
        try:
            return await request.future
        except asyncio.CancelledError:
            # The caller went away: its items that have not started are skipped when batches form.
            request.cancelled = True
            raise
        finally:
            self.capacity.release(count)

    def _report_depth(self) -> None:
        if self._observer is not None:
            self._observer.queue_depth(len(self._queue))

    def _dispatch(self, flush: bool = False) -> None:
        """Hand batches to free instances while the queue holds a full or overdue batch (any batch
        when flushing), then report the queue depth (once per call: this runs on every arrival)."""
        while self._free and len(self._queue):
            waited = time.perf_counter() - self._queue.oldest().request.enqueued
            if not flush and len(self._queue) < self.max_batch_size and waited < self.max_delay_s:
                if self._timer is None:
                    self._timer = self._loop.call_later(self.max_delay_s - waited, self._on_timer)  # type: ignore[union-attr]
                break
            batch = [item for item in self._queue.take(self.max_batch_size) if not item.request.cancelled]
            if batch:
                self._free -= 1
                self._workers.inbox.put(batch)
        self._report_depth()
        if self._idle is not None and self._is_idle():
            self._idle.set()  # also when the queue held only cancelled items: nothing left to run

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()

    def _body(self, run: RunFn) -> Callable[[Inbox[list[_Item]]], None]:
        def work(inbox: Inbox[list[_Item]]) -> None:
            """Worker thread of one instance: run batches until told to stop."""
            loop = self._loop
            assert loop is not None
            while not isinstance(batch := inbox.get(), Stopped):
                started = time.perf_counter()
                try:
                    result: tuple[list[np.ndarray], float] | Exception = run_padded(run, [item.ids for item in batch])
                except Exception as error:  # one failed batch fails only its own requests
                    result = InferenceFailed(f"inference failed for this batch: {type(error).__name__}: {error}")
                loop.call_soon_threadsafe(self._complete, batch, result, started, time.perf_counter())

        return work

    def _complete(
        self,
        batch: list[_Item],
        result: tuple[list[np.ndarray], float] | Exception,
        started: float,
        finished: float,
    ) -> None:
        """Event loop: answer the batch's requests, free the instance, form the next batch."""
        self._free += 1
        if isinstance(result, Exception):
            for item in batch:
                if not item.request.future.done():
                    item.request.future.set_exception(result)
        else:
            outputs, padded_fraction = result
            for item, row in zip(batch, outputs, strict=True):
                request = item.request
                request.rows[item.index] = row
                request.remaining -= 1
                if request.remaining == 0 and not request.future.done():
                    request.future.set_result(request.rows)
            if self._observer is not None:
                self._observer.batch_done(
                    len(batch),
                    padded_fraction,
                    [started - request.enqueued for request in {item.request for item in batch}],
                    finished - started,
                )
        self._dispatch()
