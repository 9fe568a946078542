# Two entry points for a fresh clone: `make test` and `make demo`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck layers unit demo clean browser distributed bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	$(BIN)/pip check
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The one-way layers (import-linter contracts in pyproject.toml).
layers: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest

# The connection-form test needs Debian's Chromium; the script does nothing when it is there.
browser:
	bash scripts/install-browser.sh

# The distributed suite needs Debian's PostgreSQL and Redis; the script does nothing when they are there.
distributed:
	bash scripts/install-distributed.sh

test: lint typecheck layers browser distributed unit

# Benchmarks against msal+requests, the Azure provider and curl (~10 min, not part of `make test`).
bench: $(STAMP)
	$(BIN)/python -m bench

demo: $(STAMP)
	$(BIN)/python -m airflow_provider_graphcert.demo

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
