# Developer entry points. Needs only Debian 12 and python3: as root, missing system packages
# (python3-venv, PostgreSQL for the tests) are apt-installed on first use.
#
#   make run               serve on http://127.0.0.1:$${PORT:-8000} with PostgreSQL, Redis, Celery
#   make test ARGS="-k x"  the test suite against throwaway PostgreSQL and Redis
#   make soak              ten minutes of mixed traffic through a Redis and a PostgreSQL restart
#   make lint | schema | sdk | clean

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: run test bench soak lint schema sdk clean

# exec: the runner is make's own child, so it stops with make (a signal sent to make alone).
run: $(STAMP)
	@exec $(VENV)/bin/python scripts/run.py

test: $(STAMP)
	@$(VENV)/bin/python scripts/test.py $(ARGS)

# The benchmarks of issue 5 on private PostgreSQL and Redis (about ten minutes); writes BENCHMARKS.md.
bench: $(STAMP)
	@$(VENV)/bin/python bench/run.py $(ARGS)

# Ten minutes of mixed traffic with a Redis restart and a PostgreSQL restart inside, on private
# PostgreSQL and Redis; reports answers by status, unexpected 5xx and lost writes (RELIABILITY.md).
# Not in the test suite's time budget: tests/reliability/test_soak.py runs a minute of it.
soak: $(STAMP)
	@$(VENV)/bin/python bench/soak.py $(ARGS)

# Code (ruff, the import contracts, mypy), and the schema against Redocly's recommended rules (the pinned toolchain of the TypeScript
# tests, installed into build/typescript/ on first use).
lint: schema
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	SECRET_KEY="$${SECRET_KEY:-type-checking-only}" $(VENV)/bin/mypy
	mkdir -p build/typescript && cp tests/ecosystem/typescript/package*.json build/typescript/
	[ -x build/typescript/node_modules/.bin/redocly ] || npm ci --prefix build/typescript --no-audit --no-fund --loglevel=error
	build/typescript/node_modules/.bin/redocly lint schema.yml --config redocly.yaml

# Settings need a SECRET_KEY to load; generating the schema uses no secret.
schema: $(STAMP)
	SECRET_KEY="$${SECRET_KEY:-schema-generation-only}" \
		$(VENV)/bin/python manage.py spectacular --validate --fail-on-warn --file schema.yml

# A typed Python client generated from the schema (tests/ecosystem/test_sdk.py does the same against a
# live server); sdk/ holds the generator's configuration and its CSV-aware template.
sdk: schema
	rm -rf build/sdk && mkdir -p build/sdk
	$(VENV)/bin/openapi-python-client generate --path schema.yml --meta none \
		--output-path build/sdk/insights_client --config sdk/config.yml --custom-template-path sdk
	@echo "Generated build/sdk/insights_client (add build/sdk to PYTHONPATH; needs httpx and attrs)"

# Keeps `make run`'s data (/tmp/insights-api-<uid>/); delete that directory to start afresh.
clean:
	rm -rf $(VENV) .run .static schema.yml build/sdk build/typescript .pytest_cache .ruff_cache .mypy_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

$(VENV)/bin/python:
	@if ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "python3-venv is missing: sudo apt-get install python3-venv" >&2; exit 1; \
		fi; \
		echo "Installing python3-venv..."; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; \
	fi
	$(PYTHON) -m venv $(VENV)

# Reinstalled whenever pyproject.toml changes. pip's configuration here lists local file:// mirrors
# that may not exist; their warnings are dropped, everything else (errors included) is shown.
$(STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "Installing Python dependencies into $(VENV)..."
	@$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev,embedded]' 2>&1 \
		| { grep -v "^WARNING: Location 'file://" || true; }
	@touch $@
