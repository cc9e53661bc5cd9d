# mailwright developer commands. Each target sets up what it needs first: a .venv with the
# demo's and the CLI's light set (requirements-local.txt) or, for tests, lint, synth and bench,
# everything (requirements-dev.txt); node_modules from package-lock.json for the CDK CLI; and,
# for `make test`, the Debian packages the tests need (`make deps`).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps, so `make demo` then `make test` adds the rest without reinstalling the light set.
LOCAL_STAMP := $(VENV)/.local-stamp
STAMP := $(VENV)/.dev-stamp
NODE_STAMP := node_modules/.installed-stamp
# System packages the tests need: the browser tests drive Debian's chromium; the template tests score every
# shipped template with spamassassin's local rules; the RabbitMQ ingest tests start and stop their own
# rabbitmq-server (a private node, port and data directory).
DEBIAN_PACKAGES := chromium spamassassin rabbitmq-server

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := 1
export PYTHONPATH := functions:.
# Put the venv first so the CDK CLI's `python3 app.py` finds aws-cdk-lib.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help deps venv venv-dev test test-unit test-functional test-infra lint format synth schema bench chaos demo clean

help:
	@echo "make demo    - 1000 requests through the local stack (moto in-process), then the report"
	@echo "make test    - run the whole test suite (installs what it needs first: make deps, .venv)"
	@echo "make deps    - install the Debian packages the tests need ($(DEBIAN_PACKAGES)) when missing (as root)"
	@echo "make venv    - .venv with what the demo and the CLI need; make venv-dev adds tests, lint, CDK, bench"
	@echo "make lint    - ruff, mypy, and cfn-lint on a fresh synth (cdk-nag fails the synth on any finding)"
	@echo "make synth   - synthesize the CDK app into cdk.out/ (no Docker, no AWS credentials)"
	@echo "make schema  - regenerate schemas/ from the models: the request's JSON Schema, the API's OpenAPI document, the outcome events' schemas"
	@echo "make bench   - benchmarks: bench/results.json, docs/benchmarks.md and its plots"
	@echo "make chaos   - 10,000 requests with faults injected (bench/chaos.json), then a 60 s SES outage (bench/chaos_outage.json)"

$(LOCAL_STAMP): requirements-local.txt functions/requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-local.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(STAMP): $(LOCAL_STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(LOCAL_STAMP)

venv-dev: $(STAMP)

# A package counts as present when dpkg has it installed (or, off Debian, its command is on the PATH),
# so a machine that has them all pays two lookups. As root the missing ones are installed; anyone
# else gets the one command to run.
deps:
	@missing=""; \
	for package in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q 'ok installed' \
			|| command -v $$package >/dev/null 2>&1 \
			|| missing="$$missing $$package"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
		echo "make deps: the tests need$$missing; run: sudo apt-get install -y$$missing" >&2; \
		exit 1; \
	fi; \
	echo "make deps: installing$$missing"; \
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends$$missing

# The local stack on loopback, 1000 requests of every kind, the accounting report; the outbox in .mailwright/.
demo: $(LOCAL_STAMP)
	$(BIN)/mailwright local demo

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# One worker per core; a test file runs in one worker, so its module- and session-scoped stacks are built once.
# The slowest tests are listed at the end, to keep the suite near 10 minutes on 2 cores.
test: deps $(STAMP)
	$(BIN)/pytest -n auto --dist loadfile --no-loadscope-reorder --durations=20

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

schema: $(LOCAL_STAMP)
	$(BIN)/python -m mailwright.request > schemas/email-request.schema.json
	$(BIN)/python -m mailwright.openapi > schemas/openapi.json
	$(BIN)/python -m mailwright.outcome_events schemas/events

clean:
	rm -rf cdk.out build .cache .pytest_cache .mypy_cache .ruff_cache
