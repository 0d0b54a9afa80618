# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv when it is missing.
# Installs come from uv.lock (exact versions and hashes for every platform) through uv, which the first
# run bootstraps into .venv-tools with nothing but python3: `make lock` after editing pyproject.toml.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
TOOLS := .venv-tools
UV := $(TOOLS)/bin/uv
UV_STAMP := $(TOOLS)/.uv-$(UV_VERSION)
# What every sync shares: the lock as committed (never re-resolved), this Python, the service extra
# (powertools, boto3), byte-code compiled at install (PYTHONDONTWRITEBYTECODE below keeps the tree clean,
# so without it every run and every fresh interpreter would compile pandas in memory again).
SYNC := $(UV) sync --frozen --python $(PYTHON) --extra service --compile-bytecode
export UV_PROJECT_ENVIRONMENT := $(VENV)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install install-local lock lock-check demo test lint unit integration infra e2e bench fuzz layer synth \
	cdk-lint checkov checkov-install checkov-lock deploy-check deploy clean report-screenshot clients

help:
	@echo "make demo    - install what the demo needs, then run one backtest end to end on the embedded local stack"
	@echo "make test    - install everything, then lint, type-check and run every test"
	@echo "make bench   - benchmarks against backtesting.py and vectorbt (writes bench/RESULTS.md, bench/OPTIMIZATION.md)"
	@echo "make report-screenshot - a sample backtest report and comparison as PNG (build/*-screenshot.png)"
	@echo "make layer   - build the Lambda layers for the runtime into build/layer and build/layer-datasets"
	@echo "make synth   - synthesize the CDK stack into cdk.out"
	@echo "make deploy STAGE=prod ALLOWED_ORIGINS=https://app.example.com [ALARM_EMAIL=ops@example.com]"
	@echo "             - layer, synth (cdk-nag), cfn-lint, then cdk deploy with the pinned CDK CLI"
	@echo "             (make deploy-check ...: all of it but the deploy, offline)"
	@echo "make lock    - re-resolve uv.lock after editing the dependencies in pyproject.toml"
	@echo "make checkov - checkov over one synthesis (CDK_CONTEXT=...), against infra/checkov_acknowledgements.py"
	@echo "make clients - regenerate the clients' types (Python models, TypeScript) from openapi.json"

# uv itself, pinned, in its own venv (python3 -m venv + pip is all a fresh machine needs). The stamp names
# the version, so a bump of UV_VERSION reinstalls it.
$(UV_STAMP):
	@echo "==> bootstrapping uv $(UV_VERSION) into $(TOOLS)/ (once)"
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) --version
	rm -f $(TOOLS)/.uv-* && touch $@

# Everything (the dev group: tests, lint, types, the CDK app). Exact: removes what the lock no longer has.
install: | $(UV_STAMP)
	@echo "==> installing the locked dev environment into $(VENV)/"
	$(SYNC)

# Only what `backtest demo` and `backtest local` need: the engine, the service extra and the embedded AWS
# (the local group). Inexact: a venv that already has the dev tools keeps them.
install-local: | $(UV_STAMP)
	@echo "==> installing the locked demo environment into $(VENV)/ (engine, powertools, boto3, moto)"
	$(SYNC) --no-dev --group local --inexact

lock: | $(UV_STAMP)
	$(UV) lock --python $(PYTHON)

# Fails when pyproject.toml changed without `make lock` (part of lint, so of make test and CI).
lock-check: | $(UV_STAMP)
	$(UV) lock --check --offline --python $(PYTHON)

demo: install-local
	$(VENV)/bin/backtest demo

MYPY := $(VENV)/bin/mypy layers/engine/python functions local infra ops tools tests bench clients

lint: install lock-check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MYPY)

# make test: ruff first (seconds), then the tests with mypy beside them. mypy takes about 75 s from a clean
# clone (most of it the CDK library's types) and the tests leave part of this 2-core machine idle (waiting on
# processes and sockets), so it runs in the background; its report follows the tests', and either failing
# fails make test. REQUIRE_CHECKOV: tests/infra/test_checkov.py fails (rather than skips) without its venv.
test: install lock-check checkov-install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@mkdir -p build
	@echo "==> mypy (in the background; its report follows the tests')"
	@$(MYPY) > build/mypy.log 2>&1 & types=$$!; \
	REQUIRE_CHECKOV=1 $(PY) -m pytest -n 2 --dist loadgroup tests; tests=$$?; \
	wait $$types; typed=$$?; echo "==> mypy"; cat build/mypy.log; \
	test $$tests -eq 0 -a $$typed -eq 0

unit: install
	$(PY) -m pytest tests/unit

# A sample report and comparison, screenshot whole in headless Chromium (/usr/bin/chromium): build/*.png.
report-screenshot: install
	$(PY) -m tools.report_screenshot

# The benchmarks run in their own venv: vectorbt's numba may need another numpy than the main venv's.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
$(BENCH_STAMP): pyproject.toml bench/requirements.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r bench/requirements.txt -e ".[service,datasets]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/run.py
	$(BENCH_VENV)/bin/python bench/optimize.py

# A longer fuzzing run of the HTTP API (make test runs 30 examples per operation).
FUZZ_EXAMPLES ?= 500
fuzz: install
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -p no:cacheprovider -s tests/hardening/test_api_fuzz.py

# The Lambda layer for the runtime (uv.lock's versions as manylinux wheels + byte-code): build/layer/python.
# Needs only python3 and uv, not the venv; see docs/DEPLOY.md.
layer: | $(UV_STAMP)
	$(PYTHON) -m infra.build_layer --uv $(UV)
	$(PYTHON) -m infra.build_layer --uv $(UV) --datasets

# Synthesize without the Node CLI: `make synth CDK_CONTEXT="-c stage=prod -c allowedOrigins=https://app.example.com"`.
CDK_CONTEXT ?=
synth: install
	$(PY) infra/app.py --outdir cdk.out $(CDK_CONTEXT)

cdk-lint: synth
	$(VENV)/bin/cfn-lint --ignore-checks W3005 -- cdk.out/*.template.json

# checkov, which `make test` runs over every synthesized template (tests/infra/test_checkov.py; the accepted
# findings and their reasons: infra/checkov_acknowledgements.py), lives in its own venv: its dependency tree
# is large and pins packages the dev group uses too. Installed exactly from a lock with hashes (about 10 s
# with uv, 265 MB); `make checkov-lock` re-resolves it after editing infra/checkov-requirements.in.
CHECKOV_VENV := .venv-checkov
CHECKOV_LOCK := infra/checkov-requirements.txt
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
$(CHECKOV_STAMP): $(CHECKOV_LOCK) | $(UV_STAMP)
	@echo "==> installing checkov into $(CHECKOV_VENV)/ (from $(CHECKOV_LOCK), hashes required)"
	rm -rf $(CHECKOV_VENV)
	$(UV) venv --quiet --python $(PYTHON) $(CHECKOV_VENV)
	$(UV) pip install --quiet --python $(CHECKOV_VENV)/bin/python --require-hashes --compile-bytecode \
		-r $(CHECKOV_LOCK)
	touch $@

checkov-install: $(CHECKOV_STAMP)

checkov-lock: | $(UV_STAMP)
	$(UV) pip compile infra/checkov-requirements.in --universal --python-version 3.11 --generate-hashes \
		--no-header -o $(CHECKOV_LOCK)

# One synthesis reviewed: `make checkov CDK_CONTEXT="-c stage=prod -c allowedOrigins=https://app.example.com"`.
checkov: install checkov-install
	$(PY) -m infra.checkov_gate $(CDK_CONTEXT)

# The pinned CDK CLI and openapi-typescript (package-lock.json).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

# The clients' generated types after openapi.json changed (python -m tools.openapi --write): the Python
# client's models (datamodel-code-generator, uv.lock) and the frontend's TypeScript types (openapi-typescript,
# package-lock.json); tests/client/test_generated.py fails while they are stale.
clients: install node_modules/.package-lock.json
	$(PY) clients/generate.py --write

# One deploy: `make deploy STAGE=prod ALLOWED_ORIGINS=https://app.example.com [ALARM_EMAIL=…] [AUTH_MODE=iam]`.
# deploy-check does everything but the deploy, offline: the locked venv and CDK CLI, the layer, the CDK
# CLI's synth of cdk.json's app (.venv/bin/python infra/app.py, whatever shell or venv is active; cdk-nag
# fails it on an unacknowledged finding), cfn-lint over that template, and the stack it will deploy.
# deploy then deploys exactly that cloud assembly. DEPLOY_ARGS go to `cdk deploy` (e.g. --require-approval never).
STAGE ?= dev
ALLOWED_ORIGINS ?=
ALARM_EMAIL ?=
AUTH_MODE ?=
DEPLOY_ARGS ?=
# Security options (docs/DEPLOY.md): WAF=true|false (default: on in prod), MFA=off|optional|required,
# THREAT_PROTECTION=off|audit|enforced, KMS=true|false; CDK_CONTEXT passes any other context key.
WAF ?=
MFA ?=
THREAT_PROTECTION ?=
KMS ?=
DEPLOY_CONTEXT = -c stage=$(STAGE) $(if $(ALLOWED_ORIGINS),-c allowedOrigins=$(ALLOWED_ORIGINS)) \
	$(if $(ALARM_EMAIL),-c alarmEmail=$(ALARM_EMAIL)) $(if $(AUTH_MODE),-c authMode=$(AUTH_MODE)) \
	$(if $(WAF),-c waf=$(WAF)) $(if $(MFA),-c mfa=$(MFA)) \
	$(if $(THREAT_PROTECTION),-c threatProtection=$(THREAT_PROTECTION)) $(if $(KMS),-c kms=$(KMS)) $(CDK_CONTEXT)
deploy-check: install layer node_modules/.package-lock.json
	rm -rf cdk.out
	npx cdk synth --quiet $(DEPLOY_CONTEXT)
	$(VENV)/bin/cfn-lint --ignore-checks W3005 -- cdk.out/*.template.json
	@echo "==> checked; the stack to deploy:"
	npx cdk list --app cdk.out

deploy: deploy-check
	npx cdk deploy --app cdk.out --all $(DEPLOY_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .venv-bench $(CHECKOV_VENV) build cdk.out .pytest_cache .mypy_cache .ruff_cache
