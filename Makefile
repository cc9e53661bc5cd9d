# mailwright developer commands. Each target sets up what it needs first:
# a .venv from requirements.txt and, for the CDK CLI, node_modules from package-lock.json.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := 1
export PYTHONPATH := functions:.
# Put the venv first so the CDK CLI's `python3 app.py` finds aws-cdk-lib.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv test test-unit test-functional test-infra lint format synth schema bench chaos demo clean

help:
	@echo "make demo    - 1000 requests through the local stack (moto in-process), then the report"
	@echo "make test    - run the whole test suite (creates .venv when missing)"
	@echo "make lint    - ruff, mypy, and cfn-lint on a fresh synth (cdk-nag fails the synth on any finding)"
	@echo "make synth   - synthesize the CDK app into cdk.out/ (no Docker, no AWS credentials)"
	@echo "make schema  - regenerate schemas/email-request.schema.json from the request model"
	@echo "make bench   - benchmarks: bench/results.json, docs/benchmarks.md and its plots"
	@echo "make chaos   - 10,000 requests with faults injected: bench/chaos.json"

$(STAMP): requirements.txt functions/requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

venv: $(STAMP)

# The local stack on loopback, 1000 requests of every kind, the accounting report; the outbox in .mailwright/.
demo: $(STAMP)
	$(BIN)/mailwright local demo

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: $(STAMP)
	$(BIN)/pytest

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit

test-functional: $(STAMP)
	$(BIN)/pytest tests/functional

test-infra: $(STAMP)
	$(BIN)/pytest tests/infra

# cdk-nag runs inside the synth (infra/nag.py); cfn-lint then reads .cfnlintrc.yaml.
lint: $(STAMP) synth
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint cdk.out/*.template.json

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# cdk.json's placeholder sender and postal address are fine for a synth, never for a deploy.
synth: $(STAMP) $(NODE_STAMP)
	npx --no-install cdk synth --no-notices --quiet --strict -o cdk.out -c mailwright_allow_placeholders=true

# cdk.json's settings, CONTEXT (a JSON object) merged over them, ARGS passed to `cdk deploy`:
#   make deploy CONTEXT='{"sender": "no-reply@mail.acme.io", ...}' ARGS='--profile prod'
.PHONY: deploy
deploy: $(STAMP) $(NODE_STAMP)
	npx --no-install cdk deploy --no-notices $(if $(CONTEXT),-c 'mailwright=$(CONTEXT)') $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run

chaos: $(STAMP)
	$(BIN)/python -m bench.chaos
	$(BIN)/python -m bench.run --report-only

schema: $(STAMP)
	$(BIN)/python -m mailwright.request > schemas/email-request.schema.json

clean:
	rm -rf cdk.out build .cache .pytest_cache .mypy_cache .ruff_cache
