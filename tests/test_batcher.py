"""The dynamic batcher on a real event loop and real worker threads."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from service.batcher import DynamicBatcher, length_runs
from service.errors import InferenceFailed, InvalidInput, Overloaded
from service.length_queue import LengthQueue


class Recorder:
    """A real computation (row sums of the padded ids) that remembers the batch shapes."""

    def __init__(self, fail_when: int | None = None) -> None:
        self.shapes: list[tuple[int, int]] = []
        self.fail_when = fail_when

    def __call__(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        self.shapes.append(ids.shape)
        if self.fail_when is not None and (ids == self.fail_when).any():
            raise RuntimeError("injected fault")
        return np.stack([ids.sum(axis=1), lengths], axis=1)


def run(coro):
    return asyncio.run(coro)


async def _with_batcher(recorder: Recorder, body, **options):
    batcher = DynamicBatcher(
        [recorder] * options.pop("instances", 1),
        **{"max_batch_size": 8, "max_delay_s": 0.01, "max_queue_size": 1000, **options},
    )
    batcher.start()
    try:
        return await body(batcher)
    finally:
        await batcher.stop()


def test_concurrent_requests_are_batched_and_matched() -> None:
    recorder = Recorder()
    requests = [[[i, i + 1]] * (1 + i % 3) for i in range(1, 40)]

    async def body(batcher):
        return await asyncio.gather(*(batcher.submit(r) for r in requests))

    answers = run(_with_batcher(recorder, body))
    for request, answer in zip(requests, answers, strict=True):
        assert [list(row) for row in answer] == [[sum(seq), len(seq)] for seq in request]
    assert max(shape[0] for shape in recorder.shapes) == 8  # merged up to the batch limit
    assert sum(shape[0] for shape in recorder.shapes) == sum(len(r) for r in requests)


def test_large_request_is_split_across_batches() -> None:
    recorder = Recorder()
    request = [[i] * (1 + i % 5) for i in range(1, 30)]
    answer = run(_with_batcher(recorder, lambda b: b.submit(request)))
    assert [int(row[0]) for row in answer] == [sum(s) for s in request]
    assert all(shape[0] <= 8 for shape in recorder.shapes)


def test_lengths_are_grouped_to_limit_padding() -> None:
    runs = length_runs([3] * 10 + [40] * 10)
    assert sorted(len(r) for r in runs) == [10, 10]
    assert length_runs([3, 40, 4]) == [[0, 2, 1]]  # too few to be worth a second run


def test_a_deep_queue_forms_batches_of_similar_lengths_around_the_oldest() -> None:
    recorder = Recorder()
    # Short and long texts alternate; the first batch (full at once) takes the first 8 as they came,
    # and while it runs the other 24 queue up.
    sequences = [[1] * 2 if i % 2 == 0 else [1] * 30 for i in range(32)]

    async def body(batcher):
        return await asyncio.gather(*(batcher.submit([s]) for s in sequences))

    answers = run(_with_batcher(recorder, body))
    assert [int(a[0][1]) for a in answers] == [len(s) for s in sequences]
    widths = [shape[1] for shape in recorder.shapes]
    assert len(widths) == 4 and widths[0] == 30 and widths[3] == 30  # mixed: everything that was left
    assert sorted(widths[1:3]) == [2, 30]  # the oldest's length first, then the other one: no padding


def test_length_queue_takes_the_nearest_lengths_and_keeps_arrival_order_within_one() -> None:
    queue: LengthQueue[tuple[str, int]] = LengthQueue(lambda item: item[1])
    for item in [("a", 5), ("b", 9), ("c", 4), ("d", 6), ("e", 5), ("f", 20), ("g", 6)]:
        queue.push(item)
    # Oldest is a (5): then e (5), then 4 and 6 tie at distance 1, the shorter side first.
    assert queue.take(4) == [("a", 5), ("e", 5), ("c", 4), ("d", 6)]
    assert len(queue) == 3 and queue.oldest() == ("b", 9)
    assert queue.take(2) == [("b", 9), ("g", 6)]
    assert queue.take(5) == [("f", 20)] and len(queue) == 0


def test_failed_batch_fails_only_its_requests() -> None:
    recorder = Recorder(fail_when=99)

    async def body(batcher):
        bad = asyncio.create_task(batcher.submit([[99, 1]]))
        await asyncio.sleep(0.05)  # a later batch
        good = await batcher.submit([[1, 2]])
        with pytest.raises(InferenceFailed, match="injected fault"):
            await bad
        return good

    assert [list(row) for row in run(_with_batcher(recorder, body))] == [[3, 2]]


def test_full_queue_is_refused_at_once() -> None:
    async def body(batcher):
        held = asyncio.create_task(batcher.submit([[1]] * 6))  # waits for its delay
        await asyncio.sleep(0)
        with pytest.raises(Overloaded) as refused:
            await batcher.submit([[1]] * 5)
        assert refused.value.headers == {"Retry-After": "1"}
        return [*await held, *await batcher.submit([[1]] * 10)]

    assert len(run(_with_batcher(Recorder(), body, max_queue_size=10, max_delay_s=0.2))) == 16


def test_request_larger_than_the_queue_is_the_callers_error() -> None:
    async def body(batcher):
        with pytest.raises(InvalidInput, match="capacity of 10"):
            await batcher.submit([[1]] * 11)
        return await batcher.submit([[1]] * 10)

    assert len(run(_with_batcher(Recorder(), body, max_queue_size=10))) == 10


def test_stop_returns_when_the_queue_holds_only_cancelled_items() -> None:
    """Before: stop() waited forever for a queue that no dispatch would empty."""

    async def scenario() -> None:
        batcher = DynamicBatcher([Recorder()], max_batch_size=8, max_delay_s=30.0, max_queue_size=100)
        batcher.start()
        waiting = asyncio.create_task(batcher.submit([[1, 2], [3]]))
        await asyncio.sleep(0.01)
        waiting.cancel()
        await asyncio.sleep(0)
        assert batcher.depth == 2
        await asyncio.wait_for(batcher.stop(), 5)
        assert batcher.capacity.pending == 0

    run(scenario())


def test_instances_run_batches_concurrently_on_their_own_threads() -> None:
    import threading
    import time

    seen: list[tuple[str, float, float]] = []

    def slow(ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        time.sleep(0.05)  # releases the GIL, as ONNX Runtime does
        seen.append((threading.current_thread().name, started, time.perf_counter()))
        return np.stack([ids.sum(axis=1), lengths], axis=1)

    async def body(batcher):
        return await asyncio.gather(*(batcher.submit([[i]] * 8) for i in range(4)))

    answers = run(_with_batcher(slow, body, instances=2))
    assert [[int(row[0]) for row in answer] for answer in answers] == [[i] * 8 for i in range(4)]
    assert len({name for name, _, _ in seen}) == 2
    first, second = sorted(seen, key=lambda s: s[1])[:2]
    assert second[1] < first[2]  # the second batch started before the first finished


def test_cancelled_request_is_not_computed() -> None:
    recorder = Recorder()

    async def body(batcher):
        waiting = asyncio.create_task(batcher.submit([[7, 7]]))
        await asyncio.sleep(0)  # queued, not yet due (50 ms delay)
        waiting.cancel()
        return await batcher.submit([[1, 2]])

    assert [list(row) for row in run(_with_batcher(recorder, body, max_delay_s=0.05))] == [[3, 2]]
    assert all(shape[0] == 1 for shape in recorder.shapes)  # the cancelled [7, 7] never ran


class Observed:
    """Keeps what the batcher reports of each batch."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, list[float]]] = []

    def batch_done(self, size: int, padded_fraction: float, queue_s: list[float], run_s: float) -> None:
        self.batches.append((size, queue_s))

    def queue_depth(self, depth: int) -> None:
        pass


def test_queue_time_is_reported_once_per_request_in_each_batch() -> None:
    observed = Observed()

    async def body() -> None:
        batcher = DynamicBatcher(
            [Recorder()], max_batch_size=8, max_delay_s=0.05, max_queue_size=100, observer=observed
        )
        batcher.start()
        # Two requests of 4 inputs fill one batch of 8; a third of 12 takes one of 8 and one of 4.
        await asyncio.gather(batcher.submit([[1, 2]] * 4), batcher.submit([[3]] * 4))
        await batcher.submit([[4, 5, 6]] * 12)
        await batcher.stop()

    run(body())
    assert [(size, len(waits)) for size, waits in observed.batches] == [(8, 2), (8, 1), (4, 1)]
    assert all(wait >= 0 for _, waits in observed.batches for wait in waits)
