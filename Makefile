# Set-up commands for a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
# onnxruntime flavour for serving: cpu, or gpu (onnxruntime-gpu, CUDA execution provider).
RUNTIME ?= cpu
BIN := $(VENV)/bin

.PHONY: serve test browser fuzz protos lint lint-deploy install install-dev clean image image-cpu stack-up stack-down

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[$(RUNTIME)]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed-$(RUNTIME)

install-dev: $(VENV)/.installed-dev

serve: install
	RNNSERVE_HOST=$(HOST) RNNSERVE_PORT=$(PORT) RNNSERVE_PLAYGROUND=$${RNNSERVE_PLAYGROUND:-true} $(BIN)/python -m service

lint: install-dev lint-deploy
	$(BIN)/ruff check service rnnserve_bundle training tests benchmarks rnnserve_client rnnserve_cli examples
	$(BIN)/ruff format --check service rnnserve_bundle training tests benchmarks rnnserve_client rnnserve_cli examples

# Static checks of the deployment files (no Docker engine needed). The compose client comes from
# Debian's docker-compose package when it can be installed; otherwise that one check is skipped.
lint-deploy: install-dev
	$(BIN)/hadolint Dockerfile
	$(BIN)/yamllint -c .yamllint.yaml docker .hadolint.yaml
	$(BIN)/kubernetes-validate --strict docker/k8s/deployment.yaml docker/k8s/service.yaml \
		docker/k8s/hpa.yaml docker/k8s/pdb.yaml
	@if ! command -v docker-compose >/dev/null && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q docker-compose >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q docker-compose >/dev/null 2>&1; } || true; fi
	@if command -v docker-compose >/dev/null; then \
		docker-compose -f docker/compose.yaml --profile gpu --profile cpu config -q && echo "compose file: valid"; \
	else echo "compose file: not checked (no docker-compose client could be installed)"; fi

# The playground's browser test needs Debian's chromium and its driver: installed here when the
# machine allows it; otherwise that test skips and says why.
browser:
	@if ! command -v chromedriver >/dev/null && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; } || true; fi
	@command -v chromedriver >/dev/null && echo "browser tests: chromium $$(chromium --version 2>/dev/null | cut -d' ' -f2)" \
		|| echo "browser tests: skipped (no chromium and chromedriver could be installed)"

test: lint browser
	$(BIN)/python -m pytest -q

# The long, random schema fuzz (make test runs a fixed set): FUZZ_EXAMPLES per operation. A
# failure prints the case to reproduce; it then becomes a regular test.
FUZZ_EXAMPLES ?= 500
fuzz: install-dev
	RNNSERVE_FUZZ_RANDOM=1 RNNSERVE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q tests/test_fuzz.py

# The KServe v2 gRPC modules, from service/protos/grpc_predict_v2.proto (committed; a test checks
# they are current).
protos: install-dev
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. \
		service/protos/grpc_predict_v2.proto

image:
	docker build -t rnnserve:gpu .

image-cpu:
	docker build --build-arg RUNTIME=cpu -t rnnserve:cpu .

# PROFILE=gpu (NVIDIA runtime) or PROFILE=cpu
PROFILE ?= gpu
stack-up:
	docker compose -p rnnserve -f docker/compose.yaml --profile $(PROFILE) up -d --build

stack-down:
	docker compose -p rnnserve -f docker/compose.yaml --profile $(PROFILE) down

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
