# `make train` and `make test` work on a fresh clone: the venv is created on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Persistent XLA compilation cache, venv-local, so repeated test runs skip most compilation.
export JAX_COMPILATION_CACHE_DIR := $(CURDIR)/$(VENV)/jax_cache
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS := 0.5

.PHONY: venv test train lint bench sweep ablation clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --timeout 1200 tests

train: $(STAMP)
	$(BIN)/balancedrl train --config experiments/configs/default.yaml

lint: $(STAMP)
	$(BIN)/ruff check balancedrl tests experiments benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/env_throughput.py
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/balance_overhead.py

clean:
	rm -rf $(VENV) runs
