# eegbench: `make bench` (the main job) and `make test` each set up everything they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.eegbench-installed
PROFILE ?= standard

.PHONY: setup test lint bench bench-quick bench-compare clean

# CPU torch first: a bare torch requirement would pull several GB of CUDA wheels.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[torch,test,bench]"
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(BIN)/ruff check eegbench tests benchmarks

test: setup lint
	$(BIN)/pytest -q

clean:
	rm -rf .asv results/scratch .pytest_cache

# --- benchmarks -----------------------------------------------------------------------------
ASV := $(BIN)/asv
HASH = $(shell git rev-parse HEAD)

# The main job: benchmark every format/codec/chunking + baselines on the synthetic HBN-like
# profile, store the results under results/asv, build the dashboard and print the summary.
bench: setup
	$(ASV) machine --yes
	EEGBENCH_PROFILE=$(PROFILE) $(ASV) run --python=same --set-commit-hash $(HASH) --launch-method spawn --show-stderr
	$(ASV) publish
	EEGBENCH_PROFILE=$(PROFILE) $(BIN)/python -m benchmarks.summary --commit $(HASH)
	@echo "dashboard: $(ASV) preview  (serves results/html; file:// does not work)"

# Read-speed table of the lazy readers against np.memmap and MNE, one run side by side.
read-speed: setup
	$(BIN)/python -m benchmarks.read_speed --profile $(PROFILE)

# Every benchmark once on tiny data (CI): fails if any benchmark errors.
bench-smoke: setup
	$(ASV) machine --yes --machine ci-smoke
	EEGBENCH_PROFILE=smoke $(ASV) run --python=same --quick --dry-run --show-stderr --machine ci-smoke

# Regression gate: build BASE and HEAD in pinned virtualenvs and fail on a >FACTOR slowdown.
FACTOR ?= 1.5
bench-compare: setup
	test -n "$(BASE)" || (echo "usage: make bench-compare BASE=<git rev>"; exit 2)
	$(ASV) machine --yes
	EEGBENCH_PROFILE=$(PROFILE) $(ASV) continuous --factor $(FACTOR) --split --show-stderr $(BASE) HEAD
