# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install demo test lint unit integration infra e2e bench fuzz layer synth clean

help:
	@echo "make demo   - install, then run one backtest end to end on the embedded local stack"
	@echo "make test   - install, then lint, type-check and run every test"
	@echo "make bench  - benchmarks against backtesting.py and vectorbt (writes bench/RESULTS.md)"
	@echo "make layer  - build the Lambda layer for the runtime into build/layer"
	@echo "make synth  - synthesize the CDK stack into cdk.out"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/backtest demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/engine/python functions local infra

test: lint
	$(PY) -m pytest -n 2 --dist loadgroup tests

unit: $(STAMP)
	$(PY) -m pytest tests/unit

# The benchmarks run in their own venv: vectorbt's numba may need another numpy than the main venv's.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
$(BENCH_STAMP): pyproject.toml bench/requirements.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r bench/requirements.txt -e ".[service]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/run.py

# A longer fuzzing run of the HTTP API (make test runs 30 examples per operation).
FUZZ_EXAMPLES ?= 500
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -p no:cacheprovider -s tests/hardening/test_api_fuzz.py

# The Lambda layer for the runtime (manylinux wheels + byte-code): build/layer/python. See docs/DEPLOY.md.
layer: $(STAMP)
	$(PY) -m infra.build_layer

# Synthesize without the Node CLI: `make synth CDK_CONTEXT="-c stage=prod -c allowedOrigins=https://app.example.com"`.
CDK_CONTEXT ?=
synth: $(STAMP)
	$(PY) infra/app.py --outdir cdk.out $(CDK_CONTEXT)

.PHONY: cdk-lint
cdk-lint: synth
	$(VENV)/bin/cfn-lint --ignore-checks W3005 -- cdk.out/*.template.json

clean:
	rm -rf $(VENV) .venv-bench build cdk.out .pytest_cache .mypy_cache .ruff_cache
