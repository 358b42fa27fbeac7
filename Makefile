# ai-infra-matrix: every entry point a user or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

STACK ?= dev
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
NODES ?= 1
CLUSTER := $(PYTHON) -m tools.cluster
# YES=1: `make up`/`make destroy` of a non-dev stack without the confirmation question.
YES ?=

.PHONY: help install lock deps toolchain test test-fast lint format render bench docs up preview destroy clean \
	prepare go-builds cluster-build cluster-up cluster-down cluster-status node-stop node-start images images-push down drills

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

# requirements.lock pins every transitive dependency with its hashes (make lock writes it
# from requirements*.txt), so a fresh install gets exactly the tested packages.
$(VENV)/.installed: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	touch $@

install: $(VENV)/.installed ## create .venv with the locked Python dependencies (hashes checked)

lock: ## re-resolve requirements*.txt into requirements.lock, with hashes (after changing a pin)
	$(PYTHON) -m venv .pulumi-state/pip-tools
	.pulumi-state/pip-tools/bin/pip install --quiet pip-tools==7.6.2
	.pulumi-state/pip-tools/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file requirements.lock requirements-dev.txt

deps: ## install the real software the conformance tests run (apt, PyPI, Maven)
	@set -e; for script in tools/ci/install-*.sh; do echo "deps: $$script"; bash "$$script"; done

# A cold machine spends most of CI here. The Go builds go one after the other: they share
# most of their dependencies, which the second then finds in Go's build cache (side by side
# on 2 cores they took 60 min, one after the other 42). What overlaps them is the
# network-bound part, apt and Maven (make deps), after the cluster's host packages, since
# dpkg takes one installer at a time.
prepare: install ## install and build everything `make up` and `make test` use (cached; cold, its Go builds alone took 42 min)
	$(CLUSTER) host
	$(MAKE) -j2 --output-sync=target deps go-builds

go-builds: # one after the other, whatever -j says
	$(MAKE) toolchain
	$(MAKE) cluster-build
	$(CLUSTER) images

toolchain: ## build (or reuse) the Pulumi CLI and plugins from Go modules
	bash tools/toolchain.sh

test: install deps toolchain cluster-build ## everything CI runs: lint, unit, manifest, conformance, e2e, cluster
	$(MAKE) lint
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install ## unit and manifest tiers only (minutes; installs only checkov, kube-score and promtool)
	bash tools/ci/install-checkov.sh
	bash tools/ci/install-kube-score.sh
	bash tools/ci/install-promtool.sh
	$(PY) -m pytest tests/unit tests/manifest $(PYTEST_ARGS)

# Every shell script a pod or a tool runs (the pods' scripts are bash; -x follows `source`).
SHELL_SCRIPTS = $(shell git ls-files '*.sh') .ci/run

lint: install ## ruff, mypy (pydantic plugin), shellcheck, go vet and go test of tools/toolchain
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy examples/consumer
	bash tools/ci/install-shellcheck.sh
	shellcheck --external-sources --source-path=SCRIPTDIR $(SHELL_SCRIPTS)
	cd tools/toolchain/pulumi && go vet ./... && go test ./...
	test -z "$$(gofmt -l tools/toolchain)" || { gofmt -l tools/toolchain; exit 1; }

format: install ## apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

render: install ## offline render: STACK=dev|prod [SET="key=value ..."] -> rendered/$(STACK)/
	$(PY) tools/render.py --stack $(STACK) --out rendered/$(STACK) $(foreach s,$(SET),--set $(s))

bench: install ## what users wait on (preview, render, pulumi up to ready) as ratios to their floors, as a table; the deployed prod stack's memory use vs its requests
	$(PY) tools/bench.py

# The prod stack on a 7-node local cluster (deployed first when it does not run), then every
# failover drill with our defaults and again under the anchor configuration: one table.
drills: install toolchain cluster-build ## failover drills on the prod stack (7-node local cluster; 12 for Redis 6 masters), node loss, drain, scaling, image roll and rollback, ours vs the anchor, tables
	AI_INFRA_DRILL_ANCHORS=1 AI_INFRA_DRILL_NODES=1 $(PY) -m pytest tests/prod/test_drills.py tests/prod/test_scaling.py tests/prod/test_day2.py $(PYTEST_ARGS)

docs: install ## regenerate the README's config reference and outputs contract
	$(PY) tools/config_reference.py

up: install ## pulumi up for STACK (render mode without a cluster: dev only); non-dev asks first unless YES=1
	YES=$(YES) bash tools/stack.sh up $(STACK)

preview: install ## pulumi preview for STACK
	bash tools/stack.sh preview $(STACK)

destroy: install ## pulumi destroy for STACK; non-dev asks first unless YES=1
	YES=$(YES) bash tools/stack.sh destroy $(STACK)

down: install ## remove the STACK (default dev) from its cluster, keeping its volumes (make destroy)
	YES=$(YES) bash tools/stack.sh destroy $(STACK)

cluster-build: ## build (or reuse) the local cluster's binaries and add-on images, cached by version
	$(CLUSTER) build

cluster-up: ## start (or grow) the local multi-node Kubernetes cluster: NODES=n (default 1); root, Linux
	$(CLUSTER) up --nodes $(NODES)

cluster-down: ## stop the local cluster and remove its namespaces, cgroups and state (caches stay)
	$(CLUSTER) down

node-stop: ## lose NODE as a host dies: every process of it killed, nothing drained (a drill)
	@test -n "$(NODE)" || { echo "node-stop: name the node, e.g. make node-stop NODE=aim-node-3" >&2; exit 2; }
	$(CLUSTER) node stop $(NODE)

node-start: ## boot a NODE stopped by node-stop; its pods start again on their volumes
	@test -n "$(NODE)" || { echo "node-start: name the node, e.g. make node-start NODE=aim-node-3" >&2; exit 2; }
	$(CLUSTER) node start $(NODE)

cluster-status: ## say what of the local cluster runs
	$(CLUSTER) status

images: ## build images/*/Dockerfile on the offline Debian base; push them to the local cluster if it runs
	$(CLUSTER) images --push

images-push: ## build the images and push them to REGISTRY (then: pulumi config set imageRegistry REGISTRY)
	@test -n "$(REGISTRY)" || { echo "images-push: name the registry, e.g. make images-push REGISTRY=ghcr.io/acme" >&2; exit 2; }
	$(CLUSTER) images --registry $(REGISTRY)

clean: ## remove rendered output and caches (keeps .venv and the local Pulumi state)
	rm -rf rendered .pytest_cache .ruff_cache .hypothesis .mypy_cache
