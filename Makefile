# Two entry points (see README): `make demo` runs the R-Zero loop on the tiny default,
# `make test` runs the test suite. Both create the virtual environment when it is missing.
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin
DATA   ?= $(abspath ../shared/benchmarks)
OFFLINE = HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1 TOKENIZERS_PARALLELISM=false

.PHONY: demo test test-fast test-slow lint venv clean

venv: $(VENV)/.installed

# torch is pinned and installed first: an unpinned torch pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,perf]'
	touch $@

demo: venv
	$(OFFLINE) RZERO_DATA_DIR=$${RZERO_DATA_DIR:-$(DATA)} $(BIN)/rzero-bench run

# Fast unit tests first (a broken change fails in seconds), then the slow end-to-end tests.
test: venv
	$(OFFLINE) RZERO_DATA_DIR=$${RZERO_DATA_DIR:-$(DATA)} $(BIN)/pytest -q -x -m "not slow"
	$(OFFLINE) RZERO_DATA_DIR=$${RZERO_DATA_DIR:-$(DATA)} $(BIN)/pytest -q -x -m slow --durations=15

test-fast: venv
	$(OFFLINE) RZERO_DATA_DIR=$${RZERO_DATA_DIR:-$(DATA)} $(BIN)/pytest -q -x -m "not slow"

lint: venv
	$(BIN)/ruff check rzero_bench tests perf
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
