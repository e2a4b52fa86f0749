"""Prometheus metrics in the app's own registry (no process-global state)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
FRACTION_BUCKETS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


class Metrics:
    """The service's metrics. With several worker processes (`multiprocess_dir`, which the parent
    also names in PROMETHEUS_MULTIPROC_DIR before prometheus_client is imported) every process
    writes its values to files there and `render` adds them up: counters and histograms summed,
    gauges as their `multiprocess_mode` says, over the live processes."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self._multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "rnnserve_http_requests_total",
            "HTTP requests by route, method and status code",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "rnnserve_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.grpc_requests = Counter(
            "rnnserve_grpc_requests_total",
            "gRPC calls by method and status code",
            ["method", "code"],
            registry=r,
        )
        self.grpc_latency = Histogram(
            "rnnserve_grpc_request_duration_seconds",
            "gRPC call latency by method",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_requests = Counter(
            "rnnserve_inference_requests_total",
            "Inference requests by model and outcome",
            ["model", "version", "status"],
            registry=r,
        )
        self.inference_inputs = Counter(
            "rnnserve_inference_inputs_total", "Texts inferred by model", ["model", "version"], registry=r
        )
        self.queue_time = Histogram(
            "rnnserve_queue_duration_seconds",
            # Once per request and batch, as Triton counts queue time per request: a batch holds
            # one or a few requests' inputs, which waited the same time, and each observation
            # writes to a shared file in multiprocess mode (its cost: BENCHMARKS.md, service).
            "Time a request's inputs wait in the batch queue (one observation per request and batch; "
            "per prefix for completions)",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.compute_time = Histogram(
            "rnnserve_inference_duration_seconds",
            "ONNX Runtime time per batch",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "rnnserve_batch_size",
            "Inputs per executed batch",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.padded_fraction = Histogram(
            "rnnserve_batch_padded_token_fraction",
            "Fraction of padded token positions per batch",
            ["model", "version"],
            buckets=FRACTION_BUCKETS,
            registry=r,
        )
        self.queue_depth_gauge = Gauge(
            "rnnserve_queue_depth",
            "Inputs waiting in the batch queue",
            ["model", "version"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.models_loaded = Gauge(
            "rnnserve_models_loaded", "Model versions loaded and ready", registry=r, multiprocess_mode="livemin"
        )
        self.execution_provider = Gauge(
            "rnnserve_execution_provider_info",
            "ONNX Runtime execution provider per model (1 = in use)",
            ["model", "version", "provider"],
            registry=r,
            multiprocess_mode="livemax",
        )

    def observer(self, model: str, version: str) -> ModelObserver:
        return ModelObserver(self, model, version)

    def render(self) -> bytes:
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self._multiprocess_dir))
        return generate_latest(registry)

    def close(self) -> None:
        """This process stops counting among the live ones (its counters' totals stay)."""
        if self._multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), path=str(self._multiprocess_dir))


class ModelObserver:
    """One model version's view of the metrics, with its labels bound once; `remove` drops its
    series when the version is unloaded (a replaced copy of the same version keeps them)."""

    def __init__(self, metrics: Metrics, model: str, version: str) -> None:
        self._labels = (model, version)
        self._metrics = metrics
        self._requests = metrics.inference_requests
        self._outcomes: dict[str, Counter] = {}  # label children looked up once, not per request
        self._inputs = metrics.inference_inputs.labels(model, version)
        self._queue_time = metrics.queue_time.labels(model, version)
        self._compute_time = metrics.compute_time.labels(model, version)
        self._batch_size = metrics.batch_size.labels(model, version)
        self._padded = metrics.padded_fraction.labels(model, version)
        self._depth = metrics.queue_depth_gauge.labels(model, version)
        self._provider: str | None = None

    def provider(self, provider: str) -> None:
        self._provider = provider
        self._metrics.execution_provider.labels(*self._labels, provider).set(1)

    def batch_done(self, size: int, padded_fraction: float, queue_s: list[float], run_s: float) -> None:
        self._batch_size.observe(size)
        self._padded.observe(padded_fraction)
        self._compute_time.observe(run_s)
        for waited in queue_s:
            self._queue_time.observe(waited)

    def request_done(self, status: str, inputs: int) -> None:
        """One inference request answered (`ok`) or refused (its error type), with its input count."""
        counter = self._outcomes.get(status)
        if counter is None:
            counter = self._outcomes[status] = self._requests.labels(*self._labels, status)
        counter.inc()
        if inputs:
            self._inputs.inc(inputs)

    def queue_depth(self, depth: int) -> None:
        self._depth.set(depth)

    def remove(self) -> None:
        """Drop every series of this model version (it is no longer served)."""
        m = self._metrics
        for metric in (m.inference_inputs, m.queue_time, m.compute_time, m.batch_size, m.padded_fraction):
            _discard(metric, self._labels)
        _discard(m.queue_depth_gauge, self._labels)
        # Every outcome and provider child of this version, whichever copy of it created them.
        for metric, last in ((self._requests, "status"), (m.execution_provider, "provider")):
            for labels in _children(metric, ("model", "version", last)):
                if labels[:2] == self._labels:
                    _discard(metric, labels)
        self._outcomes.clear()


def _discard(metric: Counter | Gauge | Histogram, labels: tuple[str, ...]) -> None:
    with contextlib.suppress(KeyError):  # never created
        metric.remove(*labels)


def _children(metric: Counter | Gauge, names: tuple[str, ...]) -> set[tuple[str, ...]]:
    """The label values of every child a metric has, read through its public `collect`."""
    return {
        tuple(sample.labels[n] for n in names)
        for family in metric.collect()
        for sample in family.samples
        if all(n in sample.labels for n in names)
    }
