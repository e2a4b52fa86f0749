"""All service configuration in one typed object, read from `RNNSERVE_*` environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from rnnserve_bundle.cpus import available_cores


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RNNSERVE_", env_file=None, extra="ignore")

    model_repository: Path = Field(Path("models"), description="directory of <name>/<version>/ bundles")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    grpc_port: int = Field(8001, ge=0, le=65535, description="KServe v2 gRPC on `host`; 0: no gRPC server")

    workers: int = Field(
        0,
        ge=0,
        le=64,
        description="server processes on the port, each with its own models (uvicorn's workers); 0: one per "
        "available core up to 8 on CPU, one with a GPU (`service.process_group.worker_count`)",
    )
    reuse_port: bool = Field(
        True,
        description="with several workers, each listens on a socket of its own in a SO_REUSEPORT group (Linux), "
        "so the kernel spreads connections evenly over them; false: one socket shared by all, from which one "
        "worker can take most connections while another idles (`service.listener`)",
    )
    shared_dir: Path | None = Field(
        None, description="set by the parent process for its workers: where they share metrics and reloads"
    )

    watch_interval_s: float = Field(0, ge=0, description="rescan the repository every N s; 0: only POST /reload")

    # Batching defaults; a bundle's config.json `serving` section overrides them per model.
    max_batch_size: int = Field(64, ge=1, le=4096)
    max_batch_delay_ms: float = Field(2.0, ge=0, le=60_000, description="longest wait for a batch to fill")
    max_queue_size: int = Field(4096, ge=1, description="pending inputs per model before 503")

    # ONNX Runtime.
    execution_provider: Literal["auto", "cpu", "cuda"] = "auto"
    cuda_device_id: int = Field(0, ge=0)
    cuda_mem_limit_bytes: int = Field(0, ge=0, description="0: no limit")
    intra_op_threads: int = Field(0, ge=0, description="0: ONNX Runtime's choice (one per core)")
    ort_allow_spinning: bool = Field(False, description="ONNX Runtime worker threads spin between runs")
    instances: int = Field(1, ge=1, le=64, description="ONNX Runtime sessions per model, one worker thread each")

    def session_threads(self) -> int:
        """ONNX Runtime threads per session: the setting, or the cores shared out between every
        session that may run at once (instances in each of the worker processes). 0 (ONNX
        Runtime's own choice: the host's physical cores) only for one session on an unrestricted
        machine; in a container with a CPU quota that choice would oversubscribe the quota."""
        if self.intra_op_threads:
            return self.intra_op_threads
        cores, sessions = available_cores(), self.instances * max(1, self.workers)
        if sessions == 1:
            return 0 if cores >= (os.cpu_count() or 1) else cores
        return max(1, cores // sessions)

    # Request limits.
    max_body_bytes: int = Field(1_048_576, ge=1024, description="larger bodies get 413")
    max_inputs_per_request: int = Field(256, ge=1)
    max_chars_per_input: int = Field(10_000, ge=1)
    max_tokens_per_request: int = Field(
        16_384, ge=1, description="tokens read (after truncation, a classifier's windows included), summed over inputs"
    )
    max_top_k: int = Field(100, ge=1)
    long_texts: Literal["windows", "truncate"] = Field(
        "windows",
        description="a classifier's text longer than its max_sequence_length tokens: read whole, in windows of "
        "whole sentences whose probabilities are averaged (each window costs a sequence), or cut to its start "
        "and flagged `truncated`",
    )
    spelling: Literal["correct", "as-typed"] = Field(
        "correct",
        description="a word that a model's vocabulary lacks: read as the vocabulary's most frequent word one "
        "typing slip away (`waether`: weather), or as typed (an unknown word); for a next-word model, in the prefix",
    )
    request_timeout_s: float = Field(10.0, ge=0, description="inference deadline, 504 past it; 0: none")

    # Security.
    api_keys: str = Field("", description="comma-separated keys; empty: no authentication")
    api_keys_file: Path | None = Field(None, description="one key per line")
    auth_health: bool = Field(False, description="require a key on health routes too")
    auth_metrics: bool = Field(False, description="require a key on /metrics too")
    cors_origins: str = Field("", description="comma-separated allowed origins; empty: CORS off")
    continuation_secrets: SecretStr = Field(
        SecretStr(""),
        description="comma-separated keys that sign `POST /suggest` continuation tokens, the same on every "
        "replica (the first signs, all verify: rotation); empty: a key made at start-up, valid on this process only",
    )

    def api_key_list(self) -> list[str]:
        keys = [k.strip() for k in self.api_keys.split(",") if k.strip()]
        if self.api_keys_file is not None:
            lines = self.api_keys_file.read_text(encoding="utf-8").splitlines()
            keys += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        return keys

    access_log: bool = Field(False, description="uvicorn's own access log (the service logs requests itself)")
    playground: bool = Field(False, description="GET /playground: a page to try the models (make serve turns it on)")
    echo_route: bool = Field(False, description="POST /echo: /predict's stack without a model (benchmarks)")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    log_request_texts: bool = Field(False, description="include input texts in logs (off: privacy)")
