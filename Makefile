# ai-infra-matrix: every entry point a user or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

STACK ?= dev
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# YES=1: `make up`/`make destroy` of a non-dev stack without the confirmation question.
YES ?=

.PHONY: help install deps toolchain test test-fast lint format render bench docs up preview destroy clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed ## create .venv with the pinned Python dependencies

deps: ## install the real software the conformance tests run (apt, PyPI, Maven)
	@set -e; for script in tools/ci/install-*.sh; do echo "deps: $$script"; bash "$$script"; done

toolchain: ## build (or reuse) the Pulumi CLI and plugins from Go modules
	bash tools/toolchain.sh

test: install deps toolchain ## everything CI runs: lint, unit, manifest, conformance, e2e
	$(MAKE) lint
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install ## unit and manifest tiers only (minutes; installs only checkov and promtool)
	bash tools/ci/install-checkov.sh
	bash tools/ci/install-promtool.sh
	$(PY) -m pytest tests/unit tests/manifest $(PYTEST_ARGS)

lint: install ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

render: install ## offline render: STACK=dev|prod [SET="key=value ..."] -> rendered/$(STACK)/
	$(PY) tools/render.py --stack $(STACK) --out rendered/$(STACK) $(foreach s,$(SET),--set $(s))

bench: install ## render timings and resource counts, as a table
	$(PY) tools/bench.py

docs: install ## regenerate the README's config reference and outputs contract
	$(PY) tools/config_reference.py

up: install ## pulumi up for STACK (render mode without a cluster: dev only); non-dev asks first unless YES=1
	YES=$(YES) bash tools/stack.sh up $(STACK)

preview: install ## pulumi preview for STACK
	bash tools/stack.sh preview $(STACK)

destroy: install ## pulumi destroy for STACK; non-dev asks first unless YES=1
	YES=$(YES) bash tools/stack.sh destroy $(STACK)

clean: ## remove rendered output and caches (keeps .venv and the local Pulumi state)
	rm -rf rendered out .pytest_cache .ruff_cache .hypothesis
