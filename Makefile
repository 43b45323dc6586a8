# Lockbox — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-$(shell cat pyproject.toml sdk/pyproject.toml | cksum | cut -d' ' -f1)
DATA   ?= var
LINT_DIRS = $(wildcard src tests bench examples sdk)
export LOCKBOX_DATABASE_URL ?= sqlite:///$(CURDIR)/$(DATA)/lockbox.db

.PHONY: run test lint typecheck pytest demo bench docs clean

$(STAMP): pyproject.toml sdk/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
# One pip call, so lockbox-sdk (a server dependency) resolves to ./sdk, never to an index's.
	$(BIN)/python -m pip install --quiet -e ./sdk -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

venv: $(STAMP)

## run: set up and start Lockbox (API, worker, example mail store) on SQLite with demo tenants
run: $(STAMP)
	@mkdir -p $(DATA)
	$(BIN)/lockbox db upgrade
	$(BIN)/lockbox seed-demo --tokens-file $(DATA)/demo-tokens.env
	@BIN=$(BIN) DATA=$(DATA) bash scripts/run-stack.sh

## demo: play the reference scenario on a throw-away database
demo: $(STAMP)
	$(BIN)/lockbox demo

## test: lint, type-check and run the whole suite (SQLite and PostgreSQL)
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -n 2 -q

## docs: regenerate docs that are derived from the code
docs: $(STAMP)
	$(BIN)/lockbox docs lifecycle > docs/lifecycle.md.tmp && mv docs/lifecycle.md.tmp docs/lifecycle.md

## bench: the benchmarks of issue #10: one table, also in var/bench/latest.json (BENCH_ARGS="--quick --only decide,verify")
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	@command -v wrk >/dev/null 2>&1 || echo "make bench: wrk is missing (apt-get install wrk); the HTTP benchmarks (http, scaleout) will be skipped" >&2
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DATA) .mypy_cache .ruff_cache .pytest_cache .hypothesis
