"""All service configuration in one typed object, read from `RNNSERVE_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RNNSERVE_", env_file=None, extra="ignore")

    model_repository: Path = Field(Path("models"), description="directory of <name>/<version>/ bundles")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)

    # Batching defaults; a bundle's config.json `serving` section overrides them per model.
    max_batch_size: int = Field(64, ge=1, le=4096)
    max_batch_delay_ms: float = Field(2.0, ge=0, le=1000)
    max_queue_size: int = Field(4096, ge=1, description="pending inputs per model before 503")

    # ONNX Runtime.
    execution_provider: Literal["auto", "cpu", "cuda"] = "auto"
    cuda_device_id: int = Field(0, ge=0)
    cuda_mem_limit_bytes: int = Field(0, ge=0, description="0: no limit")
    intra_op_threads: int = Field(0, ge=0, description="0: ONNX Runtime's choice (one per core)")
    instances: int = Field(1, ge=1, le=64, description="concurrent batches per model")

    # Request limits.
    max_inputs_per_request: int = Field(256, ge=1)
    max_chars_per_input: int = Field(10_000, ge=1)
    max_top_k: int = Field(100, ge=1)

    access_log: bool = Field(False, description="uvicorn's per-request log lines")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
