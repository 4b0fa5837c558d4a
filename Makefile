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
