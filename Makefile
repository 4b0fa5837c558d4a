# eegbench: `make bench` (the main job) and `make test` each set up everything they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.eegbench-installed
PROFILE ?= quick

.PHONY: setup chromium test lint bench bench-reference bench-smoke publish read-speed bench-compare clean

# CPU torch first: a bare torch requirement would pull several GB of CUDA wheels.
$(STAMP): pyproject.toml eegbench/_ckernels.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[torch,test,bench,hub]"
	touch $(STAMP)

# The dashboard's scripts (asv's index.html names them on CDNs) come from npm, into .asv/ (git-ignored);
# the dashboard test renders it in headless Chromium (Debian packages, installed when missing).
NPM_ASSETS := jquery@3.3.1 flot@0.8.3 flot-orderbars@1.0.0 stupid-table-plugin@1.1.3 blueimp-md5@2.19.0 bootstrap@3.1.1
ASSETS := .asv/www-vendor/node_modules/jquery/dist/jquery.min.js
$(ASSETS):
	mkdir -p .asv/www-vendor
	npm install --no-save --no-audit --no-fund --prefix .asv/www-vendor $(NPM_ASSETS)

chromium:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)

setup: $(STAMP) $(ASSETS)

lint: setup
	$(BIN)/ruff check eegbench tests benchmarks

test: setup chromium lint
	$(BIN)/pytest -q

clean:
	rm -rf .asv results/scratch results/local .pytest_cache

# --- benchmarks -----------------------------------------------------------------------------
ASV := $(BIN)/asv
HASH = $(shell git rev-parse HEAD)

# The main job (README): PROFILE (default quick) benchmarked into this machine's own results/local/
# (never the committed reference), then the dashboard, the flattened table, the plots and
# RECOMMENDATION.md; prints where they are. What `quick` measures (vs `standard`, the 43-minute run):
#   timing suites (random access warm/cold, cold disk bytes, sequential, open, memory, DataLoader
#   0/2 workers): hdf5/zarr/parquet x none/blosc-lz4/blosc-zstd/zstd x 0.5 s/2 s chunks + memmap/FIF
#   baselines; size and save suites: those plus gzip and the archive codecs (jpegls, jpegxl, jpeg2k,
#   htj2k at 2 s); bench_reference (eegbench vs each format's own library).
#   Cut vs standard: 4 recordings x 150 s instead of 20 x 5 min (same generator), gzip and the
#   archive codecs not in the timing suites, one round (asv: two), DataLoader 3 timed batches instead
#   of 10, one save sample, no time_* duplicates of track_* figures nor ReadMemory, and not run: bench_remote,
#   bench_many_recordings,
#   bench_open_cost, bench_synthetic. Every benchmark forks from one asv forkserver that
#   imported the libraries once.
bench: setup
	$(BIN)/python -m benchmarks.mainjob --profile $(PROFILE)

# The committed reference, the one command run at the end (clean tree at the commit to publish):
# quick profile into results/asv (machine vm-quick), results/results.csv, results/plots/,
# results/RECOMMENDATION.md (the byte-for-byte test's input) and the dashboard in results/html;
# other machines' results in results/asv are removed (older readers); then `git add -A results/ && git commit`.
bench-reference: setup
	$(BIN)/python -m benchmarks.mainjob --profile quick --reference

# Regenerate the table, plots and recommendation from the committed results (no benchmarking).
publish: setup
	$(BIN)/python -m benchmarks.publish

# Read-speed table of the lazy readers against np.memmap and MNE, one run side by side.
read-speed: setup
	$(BIN)/python -m benchmarks.read_speed --profile $(PROFILE)

# Every benchmark once on tiny data (CI): fails if any benchmark errors; writes only under results/local.
bench-smoke: setup
	$(BIN)/python -m benchmarks.mainjob --profile smoke --check

# Regression gate: build BASE and HEAD in pinned virtualenvs and fail on a >FACTOR slowdown.
FACTOR ?= 1.5
bench-compare: setup
	test -n "$(BASE)" || (echo "usage: make bench-compare BASE=<git rev>"; exit 2)
	EEGBENCH_PROFILE=$(PROFILE) $(ASV) continuous --config $$($(BIN)/python -m benchmarks.mainjob --write-config) \
		--factor $(FACTOR) --split --show-stderr $(BASE) HEAD
