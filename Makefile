# Set-up commands for a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
# onnxruntime flavour for serving: cpu, or gpu (onnxruntime-gpu, CUDA execution provider).
RUNTIME ?= cpu
BIN := $(VENV)/bin

.PHONY: serve test lint install install-dev clean

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
	RNNSERVE_HOST=$(HOST) RNNSERVE_PORT=$(PORT) $(BIN)/python -m service

lint: install-dev
	$(BIN)/ruff check service training tests
	$(BIN)/ruff format --check service training tests

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
