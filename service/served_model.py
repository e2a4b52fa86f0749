"""One loaded model version: tokenizer → batcher → ONNX Runtime → answers."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import numpy as np
from onnxruntime import InferenceSession

from service.batcher import DynamicBatcher, RunFn, pad_batch
from service.bundle import (
    BOS_TOKEN,
    EOS_TOKEN,
    INPUT_IDS,
    LENGTHS,
    LOGITS,
    MODEL_FILE,
    PAD_TOKEN,
    STEP_MODEL_FILE,
    TOKENIZER_FILE,
    UNK_TOKEN,
    BundleConfig,
)
from service.completion import CompletionEngine
from service.decoding import Decoder
from service.errors import DeadlineExceeded, InvalidInput
from service.metrics import Metrics
from service.postprocess import Output, classifier_output, completion_outputs, next_word_output, softmax
from service.runtime import active_provider, choose_providers, create_session
from service.schemas import PredictParams
from service.settings import Settings
from service.text import Encoded, TextEncoder

log = logging.getLogger(__name__)

DEFAULT_NEXT_WORDS = 5


class ServedModel:
    def __init__(self, directory: Path, config: BundleConfig, settings: Settings, metrics: Metrics) -> None:
        self.directory = directory
        self.config = config
        self.name, self.version = config.name, config.version
        self.is_classifier = config.task.is_classifier
        self.encoder = TextEncoder.from_file(
            directory / TOKENIZER_FILE, config.max_sequence_length, keep_tail=not self.is_classifier
        )
        providers = choose_providers(
            settings.execution_provider, settings.cuda_device_id, settings.cuda_mem_limit_bytes
        )
        # One session per instance, each run by its own worker thread; the cores are shared out
        # between them unless the thread count is set.
        threads = settings.intra_op_threads
        if not threads and settings.instances > 1:
            threads = max(1, (os.cpu_count() or 1) // settings.instances)
        self.sessions = [
            create_session(directory / MODEL_FILE, providers, threads, allow_spinning=settings.ort_allow_spinning)
            for _ in range(settings.instances)
        ]
        self.provider = active_provider(self.sessions[0])
        self.vocabulary = [self.encoder.token(i) for i in range(config.vocab_size)]
        self._timeout_s = settings.request_timeout_s or None
        self._temperature = config.temperature
        self.label_index = {label: i for i, label in enumerate(config.labels)}
        self._max_tokens = settings.max_tokens_per_request
        serving = config.serving
        self.batcher = DynamicBatcher(
            [self._runner(session) for session in self.sessions],
            max_batch_size=serving.max_batch_size or settings.max_batch_size,
            max_delay_s=(
                serving.max_batch_delay_ms if serving.max_batch_delay_ms is not None else settings.max_batch_delay_ms
            )
            / 1000.0,
            max_queue_size=settings.max_queue_size,
            observer=metrics.observer(self.name),
            name=self.name,
        )
        self.completion: CompletionEngine | None = None
        if not self.is_classifier and (directory / STEP_MODEL_FILE).exists():
            architecture = config.architecture
            self.completion = CompletionEngine(
                create_session(
                    directory / STEP_MODEL_FILE, providers, threads, allow_spinning=settings.ort_allow_spinning
                ),
                num_layers=architecture.num_layers,
                hidden_size=architecture.hidden_size,
                max_batch_size=self.batcher.max_batch_size,
                max_pending=settings.max_queue_size,
                observer=metrics.observer(self.name),
                name=self.name,
            )

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

    def start(self) -> None:
        self.batcher.start()
        if self.completion is not None:
            self.completion.start()

    async def close(self) -> None:
        await self.batcher.stop()
        if self.completion is not None:
            await self.completion.stop()

    async def predict(self, texts: list[str], params: PredictParams) -> list[Output]:
        if params.max_words is not None:
            if self.is_classifier:
                raise InvalidInput("params.max_words: completion is for next-word models")
            if self.completion is None:
                raise InvalidInput(f"params.max_words: model {self.name!r} has no step model for completion")
        encoded = self.encoder.encode(texts)
        tokens = sum(len(e.ids) for e in encoded)
        if tokens > self._max_tokens:
            raise InvalidInput(f"inputs: {tokens} tokens exceed the limit of {self._max_tokens} per request")
        if params.max_words is not None:
            return await self._complete(encoded, params)
        try:
            # Past the deadline the request's queued inputs are withdrawn, never computed.
            async with asyncio.timeout(self._timeout_s):
                rows = await self.batcher.submit([e.ids for e in encoded])
        except TimeoutError:
            raise DeadlineExceeded(f"no answer within {self._timeout_s:g} s; retry later") from None
        if self.is_classifier:
            return [
                classifier_output(row, self.config.labels, params.top_k, e.truncated, self.config.out_of_scope)
                for row, e in zip(rows, encoded, strict=True)
            ]
        top_k = params.top_k or DEFAULT_NEXT_WORDS
        return [
            next_word_output(row, self.vocabulary, top_k, e.truncated) for row, e in zip(rows, encoded, strict=True)
        ]

    async def _complete(self, encoded: list[Encoded], params: PredictParams) -> list[Output]:
        assert self.completion is not None and params.max_words is not None
        vocabulary = self.vocabulary
        eos = self.encoder.tokenizer.token_to_id(EOS_TOKEN)
        # Never generated: padding, start of sentence and the unknown-word token.
        tokenizer = self.encoder.tokenizer
        never = (PAD_TOKEN, BOS_TOKEN, UNK_TOKEN) + (() if params.stop_at_sentence_end else (EOS_TOKEN,))
        banned = [i for t in never if (i := tokenizer.token_to_id(t)) is not None]

        def decoder() -> Decoder:
            return Decoder(
                params.strategy,
                params.max_words or 1,
                params.completions,
                eos,
                banned,
                beam_width=params.beam_width,
                temperature=params.temperature,
                top_p=params.top_p,
                seed=params.seed,
            )

        try:
            async with asyncio.timeout(self._timeout_s):
                completed = await self.completion.complete([e.ids for e in encoded], decoder)
        except TimeoutError:
            raise DeadlineExceeded(f"no answer within {self._timeout_s:g} s; retry later") from None
        top_k = params.top_k or DEFAULT_NEXT_WORDS
        outputs = []
        for result, e in zip(completed, encoded, strict=True):
            output = next_word_output(result.first, vocabulary, top_k, e.truncated)
            output["completions"] = completion_outputs(result.hypotheses, vocabulary)
            outputs.append(output)
        return outputs

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
        }
