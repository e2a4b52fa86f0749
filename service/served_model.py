"""One loaded model version: its sessions, batcher and completion engine, its task head, and the
leases of the requests it is answering.

The path of a request through it: `encode` (tokenizer, limits) → `predict`/`infer` → the head,
which runs the graphs through `batch` (dynamic batcher) or `complete` (completion engine) → answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import numpy as np
from onnxruntime import InferenceSession

from rnnserve_bundle.config import INPUT_IDS, LENGTHS, LOGITS, MODEL_FILE, STEP_MODEL_FILE, TOKENIZER_FILE, BundleConfig
from rnnserve_bundle.encoder import Encoded, TextEncoder
from rnnserve_bundle.layout import BundleRef
from rnnserve_bundle.tensors import pad_batch, softmax
from service.batcher import DynamicBatcher, RunFn
from service.completion import Completed, CompletionEngine
from service.continuation import ContinuationKeys, ModelIdentity, fingerprint
from service.decoding import Decoder
from service.errors import DeadlineExceeded, InvalidInput, ServiceError
from service.heads import Head, NextWordHead, head_for
from service.metrics import Metrics
from service.postprocess import Output
from service.query import Query, QueryRules
from service.runtime import active_provider, choose_providers, create_session
from service.schemas import PredictParams
from service.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
HeadCall = Callable[[list[Encoded], PredictParams, "ServedModel"], Awaitable[T]]


class ServedModel:
    def __init__(self, ref: BundleRef, config: BundleConfig, settings: Settings, metrics: Metrics) -> None:
        self.directory = ref.directory
        self.config = config
        # The folders name the model; config.json's name/version are where it was trained.
        self.name, self.version = ref.name, ref.version
        directory = ref.directory
        # A classifier reads a long text whole, in windows (`Encoded.more`), unless told to cut it;
        # a language model keeps the end of its prefix. Both read typing slips as the words meant
        # (`rnnserve_bundle.spelling`): a next-word prefix is context, the words it predicts come
        # from its vocabulary whatever the prefix held.
        classifier = config.task.is_classifier
        self.encoder = TextEncoder.from_file(
            directory / TOKENIZER_FILE,
            config.max_sequence_length,
            keep_tail=not classifier,
            windows=classifier and settings.long_texts == "windows",
            spelling=settings.spelling == "correct",
        )
        providers = choose_providers(
            settings.execution_provider, settings.cuda_device_id, settings.cuda_mem_limit_bytes
        )
        # One session per instance, each run by its own worker thread.
        threads = settings.session_threads()
        self.sessions = [
            create_session(directory / MODEL_FILE, providers, threads, allow_spinning=settings.ort_allow_spinning)
            for _ in range(settings.instances)
        ]
        self.provider = active_provider(self.sessions[0])
        self._timeout_s = settings.request_timeout_s or None
        self._temperature = config.temperature
        self.observer = metrics.observer(self.name, self.version)
        serving = config.serving
        self.batcher = DynamicBatcher(
            [self._runner(session) for session in self.sessions],
            max_batch_size=serving.max_batch_size or settings.max_batch_size,
            max_delay_s=(
                serving.max_batch_delay_ms if serving.max_batch_delay_ms is not None else settings.max_batch_delay_ms
            )
            / 1000.0,
            max_queue_size=settings.max_queue_size,
            observer=self.observer,
            name=self.name,
        )
        self.completion: CompletionEngine | None = None
        self.identity: ModelIdentity | None = None  # for continuation tokens: the step model's weights
        self._state_shapes: list[tuple[int, int]] = []  # a token's states: [layers, hidden] each
        if not config.task.is_classifier and (directory / STEP_MODEL_FILE).exists():
            architecture = config.architecture
            step_bytes = (directory / STEP_MODEL_FILE).read_bytes()
            self.identity = ModelIdentity(self.name, self.version, fingerprint(step_bytes))
            self.completion = CompletionEngine(
                create_session(
                    directory / STEP_MODEL_FILE, providers, threads, allow_spinning=settings.ort_allow_spinning
                ),
                num_layers=architecture.num_layers,
                hidden_size=architecture.hidden_size,
                max_batch_size=self.batcher.max_batch_size,
                max_pending=settings.max_queue_size,
                observer=self.observer,
                name=self.name,
            )
            self._state_shapes = [(architecture.num_layers, architecture.hidden_size)] * self.completion.state_count
        self.head: Head = head_for(config, self.encoder, self.completion is not None, self.name)
        self._leases = 0
        self._drained: asyncio.Event | None = None

    def _runner(self, session: InferenceSession) -> RunFn:
        temperature = self._temperature

        def run(ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
            """Worker thread: probabilities for one padded batch."""
            (logits,) = session.run([LOGITS], {INPUT_IDS: ids, LENGTHS: lengths})
            return softmax(logits / temperature)

        return run

    def warm_up(self) -> None:
        """Run a real padded batch on every instance so the first request pays no initialisation cost."""
        unk = self.encoder.unk_id
        for session in self.sessions:
            probabilities = self._runner(session)(*pad_batch([[unk] * 3, [unk]]))
            if not np.all(np.isfinite(probabilities)):
                raise RuntimeError("warm-up produced non-finite outputs")

    # Life: started by the repository, leased by requests, closed once retired and drained.

    def start(self) -> None:
        self._drained = asyncio.Event()
        self._drained.set()
        self.batcher.start()
        if self.completion is not None:
            self.completion.start()

    def acquire(self) -> None:
        """A request holds the model until it is answered (`release`)."""
        self._leases += 1
        if self._drained is not None:
            self._drained.clear()

    def release(self) -> None:
        self._leases -= 1
        if self._leases == 0 and self._drained is not None:
            self._drained.set()

    @property
    def leases(self) -> int:
        return self._leases

    async def close(self) -> None:
        """Wait for the requests holding a lease, then stop the batcher and completion engine."""
        if self._drained is not None:
            await self._drained.wait()
        await self.batcher.stop()
        if self.completion is not None:
            await self.completion.stop()

    # Requests.

    def check_fits(self, count: int, params: PredictParams) -> None:
        """Refuse a request larger than this model could ever hold at once (not an overload)."""
        engine = self.completion if params.max_words is not None and self.completion is not None else self.batcher
        engine.capacity.check_fits(count)

    async def predict(self, query: Query, rules: QueryRules) -> list[Output]:
        """One `/predict` answer per text, in order; the outcome is counted by model and status."""
        return await self._counted(self._answer(query, rules, self.head.predict), len(query.texts))

    async def infer(self, query: Query, rules: QueryRules) -> list[dict]:
        """KServe v2 output tensors for the texts, counted like `predict`."""
        return await self._counted(self._answer(query, rules, self.head.infer), len(query.texts))

    async def suggest(
        self, text: str, state: str | None, top_k: int, keys: ContinuationKeys, max_tokens: int
    ) -> tuple[Output, str]:
        """`POST /suggest`: next words as the text is typed, resuming from a continuation token;
        counted like `predict`."""
        head, identity = self.head, self.identity
        if not isinstance(head, NextWordHead) or identity is None:
            raise InvalidInput(f"model {self.name!r}: suggestions need a next-word model with a step model")

        async def answer() -> tuple[Output, str]:
            resume = keys.open(state, identity, self._state_shapes) if state is not None else None
            output, continuation = await head.suggest(text, resume, top_k, max_tokens, self)
            return output, keys.seal(identity, continuation)

        return await self._counted(answer(), 1)

    async def _answer(self, query: Query, rules: QueryRules, head: HeadCall[T]) -> T:
        return await head(rules.encode(query, self), query.params, self)

    async def _counted(self, work: Awaitable[T], texts: int) -> T:
        try:
            result = await work
        except ServiceError as error:
            self.observer.request_done(error.error_type, 0)
            raise
        self.observer.request_done("ok", texts)
        return result

    async def batch(self, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
        # Past the deadline the request's queued inputs are withdrawn, never computed.
        return await self._by_deadline(self.batcher.submit(sequences))

    async def complete(self, prefixes: Sequence[Sequence[int]], decoder: Callable[[], Decoder]) -> list[Completed]:
        assert self.completion is not None  # the head checked
        return await self._by_deadline(self.completion.complete(prefixes, decoder))

    async def read(self, prefix: Sequence[int], initial: list[np.ndarray] | None) -> Completed:
        assert self.completion is not None  # the head checked
        return await self._by_deadline(self.completion.read(prefix, initial))

    async def _by_deadline(self, work: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await work
        except TimeoutError:
            raise DeadlineExceeded(f"no answer within {self._timeout_s:g} s; retry later") from None

    def describe(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "task": self.config.task.value,
            "provider": self.provider,
            "labels": self.config.labels,
            "max_sequence_length": self.config.max_sequence_length,
            "max_batch_size": self.batcher.max_batch_size,
            "max_batch_delay_ms": self.batcher.max_delay_s * 1000.0,
            "trained_as": f"{self.config.name}/{self.config.version}",
        }
