"""Prometheus metrics in the app's own registry (no process-global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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
    def __init__(self) -> None:
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
        self.inference_requests = Counter(
            "rnnserve_inference_requests_total",
            "Inference requests by model and outcome",
            ["model", "status"],
            registry=r,
        )
        self.inference_inputs = Counter(
            "rnnserve_inference_inputs_total", "Texts inferred by model", ["model"], registry=r
        )
        self.queue_time = Histogram(
            "rnnserve_queue_duration_seconds",
            "Time an input waits in the batch queue",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.compute_time = Histogram(
            "rnnserve_inference_duration_seconds",
            "ONNX Runtime time per batch",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "rnnserve_batch_size",
            "Inputs per executed batch",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.padded_fraction = Histogram(
            "rnnserve_batch_padded_token_fraction",
            "Fraction of padded token positions per batch",
            ["model"],
            buckets=FRACTION_BUCKETS,
            registry=r,
        )
        self.queue_depth_gauge = Gauge(
            "rnnserve_queue_depth", "Inputs waiting in the batch queue", ["model"], registry=r
        )
        self.models_loaded = Gauge("rnnserve_models_loaded", "Model versions loaded and ready", registry=r)
        self.execution_provider = Gauge(
            "rnnserve_execution_provider_info",
            "ONNX Runtime execution provider per model (1 = in use)",
            ["model", "provider"],
            registry=r,
        )

    def observer(self, model: str) -> ModelObserver:
        return ModelObserver(self, model)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ModelObserver:
    """The batcher's view of the metrics, with the model label bound once."""

    def __init__(self, metrics: Metrics, model: str) -> None:
        self._model = model
        self._requests = metrics.inference_requests
        self._outcomes: dict[str, Counter] = {}  # label children looked up once, not per request
        self._inputs = metrics.inference_inputs.labels(model)
        self._queue_time = metrics.queue_time.labels(model)
        self._compute_time = metrics.compute_time.labels(model)
        self._batch_size = metrics.batch_size.labels(model)
        self._padded = metrics.padded_fraction.labels(model)
        self._depth = metrics.queue_depth_gauge.labels(model)

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
            counter = self._outcomes[status] = self._requests.labels(self._model, status)
        counter.inc()
        if inputs:
            self._inputs.inc(inputs)

    def queue_depth(self, depth: int) -> None:
        self._depth.set(depth)
