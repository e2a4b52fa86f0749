"""Dynamic batching: concurrent requests for one model become few, well-filled ONNX Runtime calls.

Each input sequence is a queue item, so a request with many inputs is split across batches and
small requests are merged, and every item is answered exactly once through its own future.

A batch is formed when a run slot is free (one per model instance), either when the queue holds
`max_batch_size` items or when the oldest item has waited `max_delay`. While a batch runs the next
one gathers, so under load batches fill without any added delay. Formation is length-aware: when
the queue holds more than a batch, the batch is the window of similar lengths around the oldest
item (which therefore never starves), and a batch is cut into runs of similar length when their
lengths differ widely, so little work goes to padding.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from service.bundle import PAD_ID
from service.errors import InferenceFailed, Overloaded

# A run over padded ids [batch, seq] and lengths [batch] giving one output row per sequence.
RunFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

# Cut a batch where a sequence is this many times longer than the shortest of its run.
SPLIT_RATIO = 2.0
MIN_RUN = 8


class BatchObserver(Protocol):
    def batch_done(self, size: int, padded_fraction: float, queue_s: list[float], run_s: float) -> None: ...

    def queue_depth(self, depth: int) -> None: ...


@dataclass(eq=False)
class _Item:
    ids: Sequence[int]
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


def pad_batch(sequences: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    ids = np.full((len(sequences), int(lengths.max())), PAD_ID, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
    return ids, lengths


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


class DynamicBatcher:
    def __init__(
        self,
        run: RunFn,
        executor: Executor,
        max_batch_size: int,
        max_delay_s: float,
        max_queue_size: int,
        slots: int = 1,
        observer: BatchObserver | None = None,
    ) -> None:
        self._run = run
        self._executor = executor
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.max_queue_size = max_queue_size
        self._slots = asyncio.Semaphore(slots)
        self._observer = observer
        self._queue: list[_Item] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()

    @property
    def depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._schedule(), name="batcher")

    async def stop(self) -> None:
        """Finish everything queued and running, then stop scheduling."""
        while self._queue or self._running:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def submit(self, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Queue the sequences and wait for one output row each, in order."""
        if len(self._queue) + len(sequences) > self.max_queue_size:
            raise Overloaded("the model's queue is full; retry shortly", headers={"Retry-After": "1"})
        loop = asyncio.get_running_loop()
        items = [_Item(ids, loop.create_future()) for ids in sequences]
        self._queue.extend(items)
        self._arrived.set()
        self._report_depth()
        try:
            return list(await asyncio.gather(*(item.future for item in items)))
        except asyncio.CancelledError:
            # The caller went away: drop its items that have not started.
            waiting = set(items)
            self._queue = [item for item in self._queue if item not in waiting]
            raise

    def _report_depth(self) -> None:
        if self._observer is not None:
            self._observer.queue_depth(len(self._queue))

    async def _schedule(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                await self._gather()
            except BaseException:
                self._slots.release()
                raise
            batch = self._take()
            task = asyncio.create_task(self._execute(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _gather(self) -> None:
        """Wait until there is a full batch or the oldest item has waited long enough."""
        while not self._queue:
            self._arrived.clear()
            await self._arrived.wait()
        deadline = self._queue[0].enqueued + self.max_delay_s
        while len(self._queue) < self.max_batch_size:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                break

    def _take(self) -> list[_Item]:
        queue = self._queue
        if len(queue) <= self.max_batch_size:
            batch, self._queue = queue, []
        else:
            # The window of similar lengths that contains the oldest item.
            order = sorted(range(len(queue)), key=lambda i: len(queue[i].ids))
            oldest = order.index(0)
            start = min(max(0, oldest - self.max_batch_size // 2), len(order) - self.max_batch_size)
            chosen = set(order[start : start + self.max_batch_size])
            batch = [queue[i] for i in sorted(chosen)]
            self._queue = [item for i, item in enumerate(queue) if i not in chosen]
        self._report_depth()
        return batch

    async def _execute(self, batch: list[_Item]) -> None:
        try:
            live = [item for item in batch if not item.future.done()]
            if not live:
                return
            started = time.perf_counter()
            loop = asyncio.get_running_loop()
            sequences = [item.ids for item in live]
            try:
                outputs, padded_fraction = await loop.run_in_executor(self._executor, self._run_runs, sequences)
            except Exception as error:  # one failed batch fails only its own requests
                failure = InferenceFailed(f"inference failed for this batch: {type(error).__name__}: {error}")
                for item in live:
                    if not item.future.done():
                        item.future.set_exception(failure)
                return
            finished = time.perf_counter()
            for item, output in zip(live, outputs, strict=True):
                if not item.future.done():
                    item.future.set_result(output)
            if self._observer is not None:
                self._observer.batch_done(
                    len(live),
                    padded_fraction,
                    [started - item.enqueued for item in live],
                    finished - started,
                )
        finally:
            self._slots.release()

    def _run_runs(self, sequences: list[Sequence[int]]) -> tuple[list[np.ndarray], float]:
        """Worker thread: run each length run as one padded ONNX Runtime call."""
        outputs: list[np.ndarray] = [np.empty(0)] * len(sequences)
        padded_cells = real_cells = 0
        for run in length_runs([len(s) for s in sequences]):
            ids, lengths = pad_batch([sequences[i] for i in run])
            result = self._run(ids, lengths)
            for row, position in enumerate(run):
                outputs[position] = result[row]
            padded_cells += ids.size
            real_cells += int(lengths.sum())
        return outputs, 1.0 - real_cells / max(1, padded_cells)
