"""Completions on the single-step model (`step.onnx`), batched continuously across requests.

One worker thread per next-word model. Each input's prefix is read once (inputs of equal length
together) from a zero state; after that every step runs the live hypotheses of *all* requests as
one batch of one word each, carrying their recurrent states. A generated word therefore costs one
batched step whatever the prefix length, and requests join and leave between steps, so a short
completion never waits for a long one to end.

Steps run through ONNX Runtime's IO binding: the recurrent states come out where the session
computes (GPU memory under CUDA) and, while the batch keeps the same requests and each hypothesis
continues its own row (greedy, sampling, a beam that keeps its order), go straight back in as the
next step's states without a round trip through host memory. Only when requests join or leave, or a
beam reorders, are the states copied to the host to be regrouped.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from onnxruntime import InferenceSession, OrtValue

from rnnserve_bundle.config import INPUT_IDS, LOGITS
from rnnserve_bundle.tensors import softmax
from service.batcher import BatchObserver
from service.decoding import Decoder, Hypothesis
from service.errors import InferenceFailed
from service.runtime import output_device
from service.workers import Capacity, Inbox, Stopped, Workers


@dataclass(frozen=True)
class Completed:
    first: np.ndarray  # next-word probabilities right after the prefix
    hypotheses: list[Hypothesis]
    # A read (`CompletionEngine.read`): the recurrent states before the prefix's last word, one
    # [layers, hidden] array per state input; with that word they resume the reading.
    before_last: list[np.ndarray] | None = None


@dataclass(eq=False)
class _Job:
    prefix: Sequence[int]
    decoder: Decoder | None  # None: a read, answered once the prefix is read
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    initial: list[np.ndarray] | None = None  # a read's starting states, each [layers, hidden]; None: zeros
    enqueued: float = field(default_factory=time.perf_counter)
    cancelled: bool = False
    states: list[np.ndarray] = field(default_factory=list)  # each [layers, live, hidden]
    first: np.ndarray | None = None

    def answer(self, result: Completed | Exception) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, result)

    @property
    def width(self) -> int:
        return self.decoder.width if self.decoder is not None else 1


@dataclass(eq=False)
class _Carried:
    """The last step's recurrent states, still on the session's device, and whose rows they are."""

    jobs: list[_Job]
    counts: list[int]  # rows per job, in batch order
    states: list[OrtValue]

    def matches(self, jobs: list[_Job]) -> bool:
        return len(jobs) == len(self.jobs) and all(
            job is mine and len(job.decoder.live) == count
            for job, mine, count in zip(jobs, self.jobs, self.counts, strict=True)
        )

    def to_host(self) -> None:
        """Give each job its own rows as host arrays, for regrouping."""
        host = [state.numpy() for state in self.states]
        start = 0
        for job, count in zip(self.jobs, self.counts, strict=True):
            job.states = [state[:, start : start + count, :] for state in host]
            start += count


# What a caller submits: the prefix, its decoder (None for a read) and a read's starting states.
_Work = tuple[Sequence[int], Decoder | None, list[np.ndarray] | None]


def _settle(future: asyncio.Future, result: Completed | Exception) -> None:
    if future.done():
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)


class CompletionEngine:
    def __init__(
        self,
        session: InferenceSession,
        num_layers: int,
        hidden_size: int,
        max_batch_size: int,
        max_pending: int,
        observer: BatchObserver | None = None,
        name: str = "model",
    ) -> None:
        self._session = session
        self._state_inputs = [i.name for i in session.get_inputs() if i.name != INPUT_IDS]
        self._state_outputs = [f"next_{name}" for name in self._state_inputs]
        missing = {LOGITS, *self._state_outputs} - {o.name for o in session.get_outputs()}
        if not self._state_inputs or missing:
            raise ValueError(f"step model lacks recurrent state inputs/outputs ({sorted(missing)})")
        self.state_count = len(self._state_inputs)  # h, or h and c
        self._num_layers = num_layers
        self._hidden_size = hidden_size
        self.max_batch_size = max_batch_size
        self._observer = observer
        self.capacity = Capacity(max_pending, "completion queue")
        self._workers: Workers[_Job] = Workers(f"complete-{name}", [self._work])
        self._device = output_device(session)
        self._carried: _Carried | None = None  # worker thread's
        self.steps_on_device = 0  # steps fed the last step's states where they were computed
        self.steps_from_host = 0  # steps whose states were regrouped on the host first

    def start(self) -> None:
        self._workers.start()

    async def stop(self) -> None:
        """Finish the completions in hand, then stop the worker thread."""
        await self._workers.stop()

    async def complete(self, prefixes: Sequence[Sequence[int]], decoder: Callable[[], Decoder]) -> list[Completed]:
        """Complete every prefix (each with a fresh decoder); answers in order."""
        return await self._submit([(prefix, decoder(), None) for prefix in prefixes])

    async def read(self, prefix: Sequence[int], initial: list[np.ndarray] | None) -> Completed:
        """Read a prefix from the given states (zeros if None): the next-word probabilities after it
        and the states before its last word (`Completed.before_last`), from which a later read can
        continue. Reads of equal length share one run."""
        (result,) = await self._submit([(prefix, None, initial)])
        return result

    async def _submit(
        self, work: list[tuple[Sequence[int], Decoder | None, list[np.ndarray] | None]]
    ) -> list[Completed]:
        if not self._workers.running:
            raise RuntimeError("the completion engine is not started")
        self.capacity.admit(len(work))
        loop = asyncio.get_running_loop()
        jobs = [_Job(prefix, decoder, loop.create_future(), loop, initial) for prefix, decoder, initial in work]
        for job in jobs:
            self._workers.inbox.put(job)
        try:
            return list(await asyncio.gather(*(job.future for job in jobs)))
        finally:
            self.capacity.release(len(jobs))
            for job in jobs:
                job.cancelled = True  # no-op once answered; stops the work of a caller that left

    # Worker thread from here on.

    def _work(self, inbox: Inbox[_Job]) -> None:
        """Unlike the batcher's workers, this one loops continuously: new jobs join between steps."""
        active: list[_Job] = []
        waiting: deque[_Job] = deque()
        stopping = False  # told to stop: finish what is in hand first
        while True:
            if not active and not waiting:
                self._carried = None  # nothing in flight: let the device memory go
                if stopping or isinstance(job := inbox.get(), Stopped):
                    return
                waiting.append(job)
            while not stopping and (polled := inbox.poll()) is not None:
                if isinstance(polled, Stopped):
                    stopping = True
                else:
                    waiting.append(polled)
            active = [job for job in active if not job.cancelled]
            admitted: list[_Job] = []
            live = sum(job.width for job in active)
            while waiting and (live + waiting[0].width <= self.max_batch_size or not (active or admitted)):
                job = waiting.popleft()
                if not job.cancelled:
                    admitted.append(job)
                    live += job.width
            try:
                reads = [job for job in admitted if job.decoder is None]
                if reads:
                    self._read(reads)
                admitted = [job for job in admitted if job.decoder is not None]
                if admitted:
                    self._read_prefixes(admitted)
                    active += admitted
                if active:
                    self._step(active)
            except Exception as error:  # a failed step fails the requests in it, not the engine
                self._carried = None
                failure = InferenceFailed(f"completion failed: {type(error).__name__}: {error}")
                for job in active + admitted:
                    job.answer(failure)
                active = []
                continue
            still = []
            for job in active:
                assert job.decoder is not None
                if job.decoder.done:
                    assert job.first is not None
                    job.answer(Completed(job.first, job.decoder.results()))
                else:
                    still.append(job)
            active = still

    def _run(
        self, ids: np.ndarray, states: Sequence[np.ndarray | OrtValue], queued: list[float]
    ) -> tuple[np.ndarray, list[OrtValue]]:
        """One run through IO binding: logits on the host, next states left on the session's device."""
        started = time.perf_counter()
        binding = self._session.io_binding()
        binding.bind_cpu_input(INPUT_IDS, ids)
        for name, state in zip(self._state_inputs, states, strict=True):
            if isinstance(state, OrtValue):
                binding.bind_ortvalue_input(name, state)
            else:
                binding.bind_cpu_input(name, state)
        binding.bind_output(LOGITS, "cpu")
        for name in self._state_outputs:
            binding.bind_output(name, *self._device)
        self._session.run_with_iobinding(binding)
        logits, *next_states = binding.get_outputs()
        if self._observer is not None:
            self._observer.batch_done(len(ids), 0.0, queued, time.perf_counter() - started)
        return logits.numpy(), next_states

    def _read_prefixes(self, jobs: list[_Job]) -> None:
        """Read new prefixes from a zero state, inputs of equal length in one run, then take the first word."""
        by_length: dict[int, list[_Job]] = defaultdict(list)
        for job in jobs:
            by_length[len(job.prefix)].append(job)
        now = time.perf_counter()
        for group in by_length.values():
            ids = np.array([job.prefix for job in group], dtype=np.int64)
            zeros = np.zeros((self._num_layers, len(group), self._hidden_size), dtype=np.float32)
            logits, states = self._run(ids, [zeros] * len(self._state_inputs), [now - j.enqueued for j in group])
            host = [state.numpy() for state in states]
            last = logits[:, -1, :]
            for row, job in enumerate(group):
                job.first = softmax(last[row])
                parents = job.decoder.step(last[row : row + 1])
                job.states = [state[:, [row] * len(parents), :] for state in host]

    def _read(self, jobs: list[_Job]) -> None:
        """Reads of equal length in one run up to their last word, then that word for all of them:
        the states in between are what `before_last` returns."""
        by_length: dict[int, list[_Job]] = defaultdict(list)
        for job in jobs:
            by_length[len(job.prefix)].append(job)
        now = time.perf_counter()
        for group in by_length.values():
            states = [
                np.stack([job.initial[k] if job.initial is not None else self._zeros() for job in group], axis=1)
                for k in range(len(self._state_inputs))
            ]
            queued = [now - job.enqueued for job in group]
            if len(group[0].prefix) > 1:
                ids = np.array([job.prefix[:-1] for job in group], dtype=np.int64)
                _, ort_states = self._run(ids, states, queued)
                states, queued = [state.numpy() for state in ort_states], []
            last = np.array([[job.prefix[-1]] for job in group], dtype=np.int64)
            logits, _ = self._run(last, states, queued)
            for row, job in enumerate(group):
                before_last = [np.ascontiguousarray(state[:, row, :]) for state in states]
                job.answer(Completed(softmax(logits[row, -1]), [], before_last))

    def _zeros(self) -> np.ndarray:
        return np.zeros((self._num_layers, self._hidden_size), dtype=np.float32)

    def _step(self, jobs: list[_Job]) -> None:
        """One word for every live hypothesis of every job, as one batch."""
        jobs = [job for job in jobs if job.decoder.live and not job.decoder.done]
        if not jobs:
            return
        ids = np.array([[h.tokens[-1]] for job in jobs for h in job.decoder.live], dtype=np.int64)
        carried, self._carried = self._carried, None
        states: Sequence[np.ndarray | OrtValue]
        if carried is not None and carried.matches(jobs):
            states = carried.states  # the same rows as the last step: no copy
            self.steps_on_device += 1
        else:
            self.steps_from_host += 1
            if carried is not None:
                carried.to_host()
            states = [np.concatenate([job.states[k] for job in jobs], axis=1) for k in range(len(self._state_inputs))]
        counts = [len(job.decoder.live) for job in jobs]
        logits, next_states = self._run(ids, states, [])
        start = 0
        moved = False  # some hypothesis continues another row, or ended: rows must be regrouped
        kept = []
        for job, count in zip(jobs, counts, strict=True):
            parents = job.decoder.step(logits[start : start + count, -1, :])
            moved |= parents != list(range(count))
            kept.append([start + parent for parent in parents])
            start += count
        if not moved:
            self._carried = _Carried(jobs, counts, next_states)
            return
        host = [state.numpy() for state in next_states]
        for job, rows in zip(jobs, kept, strict=True):
            job.states = [state[:, rows, :] for state in host]
