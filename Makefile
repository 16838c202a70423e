# Two entry points (see README): `make demo` runs the R-Zero loop on the micro world,
# `make test` runs the test suite. Both create the virtual environment when it is missing.
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin
DATA   ?= $(abspath ../shared/benchmarks)
OFFLINE = HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1 TOKENIZERS_PARALLELISM=false

.PHONY: demo test test-fast test-slow lint venv clean

venv: $(VENV)/.installed-dev

# torch is pinned and installed first: an unpinned torch pulls a multi-GB CUDA build. The demo needs
# only the runtime; the test and lint extras (mypy, lm-eval, scikit-learn, transformers serve, ...)
# come with the first `make test` (about 40 s of a fresh clone's demo saved).
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev,perf]'
	touch $@

# The loop on the micro world (trainers/demo.yaml): one iteration on the micro:s@demo base scored on
# all micro_arith items, then the base and the trained solver on the benchmark suite (3 items per
# task), then the report.
# Benchmark data: the local mirror ($RZERO_DATA_DIR, else ../shared/benchmarks when it exists), offline;
# without one, the hub (`rzero-bench data fetch --data-dir DIR` builds a mirror; with neither, eval says so).
DATA_DIR := $(or $(RZERO_DATA_DIR),$(wildcard $(DATA)))
DEMO_ENV = $(if $(DATA_DIR),$(OFFLINE) RZERO_DATA_DIR=$(DATA_DIR),TOKENIZERS_PARALLELISM=false)
DEMO_EVAL = --suite rzero --limit 3 --max-tokens 64 --max-k 2
# absolute: the evaluations add to the results the run wrote and must name its models as it did
DEMO_RUN = $(CURDIR)/runs/demo
demo: $(VENV)/.installed
	$(DEMO_ENV) $(BIN)/rzero-bench run --preset demo --run-dir $(DEMO_RUN)
	$(DEMO_ENV) $(BIN)/rzero-bench eval micro:s@demo $(DEMO_EVAL) --output $(DEMO_RUN)/results/iter_0
	$(DEMO_ENV) $(BIN)/rzero-bench eval $(DEMO_RUN)/iter_1/solver $(DEMO_EVAL) --output $(DEMO_RUN)/results/iter_1
	$(DEMO_ENV) $(BIN)/rzero-bench report $(DEMO_RUN)

# Fast unit tests first (a broken change fails in seconds), then the slow end-to-end tests.
test: $(VENV)/.installed-dev
	$(OFFLINE) RZERO_DATA_DIR=$${RZERO_DATA_DIR:-$(DATA)} $(BIN)/pytest -q -x -m "not slow"
	$(OFFLINE) RZERO_DATA_DIR=$${RZERO_DATA_DIR:-$(DATA)} $(BIN)/pytest -q -x -m slow --durations=15

test-fast: $(VENV)/.installed-dev
	$(OFFLINE) RZERO_DATA_DIR=$${RZERO_DATA_DIR:-$(DATA)} $(BIN)/pytest -q -x -m "not slow"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check rzero_bench tests perf
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
