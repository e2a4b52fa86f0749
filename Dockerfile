# syntax=docker/dockerfile:1
# rnnserve image. GPU (default): CUDA 13 + cuDNN 9 runtime, as onnxruntime-gpu 1.31 requires.
#   docker build -t rnnserve:gpu .
# CPU variant, for machines without a GPU:
#   docker build --build-arg RUNTIME=cpu -t rnnserve:cpu .
# Only the service, the bundle format it reads and the default models go in: no torch, training
# code, tests or build tools.
ARG RUNTIME=gpu

FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04 AS base-gpu
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv tini \
    && rm -rf /var/lib/apt/lists/*

FROM python:3.12-slim-bookworm AS base-cpu
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

# Build stage: a virtual environment holding the service and its runtime dependencies.
# hadolint ignore=DL3006
FROM base-${RUNTIME} AS build
ARG RUNTIME
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rnnserve_bundle ./rnnserve_bundle
COPY service ./service
COPY rnnserve_cli ./rnnserve_cli
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-compile ".[${RUNTIME}]" \
    && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} + \
    && /opt/venv/bin/pip uninstall -y pip

# Runtime stage.
# hadolint ignore=DL3006
FROM base-${RUNTIME} AS runtime
RUN groupadd --system --gid 10001 rnnserve \
    && useradd --system --uid 10001 --gid rnnserve --no-create-home --shell /usr/sbin/nologin rnnserve
COPY --from=build /opt/venv /opt/venv
COPY --chown=10001:10001 models /models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RNNSERVE_MODEL_REPOSITORY=/models \
    RNNSERVE_HOST=0.0.0.0 \
    RNNSERVE_PORT=8000 \
    RNNSERVE_GRPC_PORT=8001
USER 10001:10001
WORKDIR /home
# HTTP (REST, KServe v2 REST, /metrics) and KServe v2 gRPC.
EXPOSE 8000 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python3", "-m", "service.healthcheck"]
# tini forwards SIGTERM to uvicorn, which stops accepting, finishes in-flight requests and exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--"]
CMD ["python3", "-m", "service"]
