# Lockbox — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DATA   ?= var
LINT_DIRS = $(wildcard src tests bench examples)
export LOCKBOX_DATABASE_URL ?= sqlite:///$(CURDIR)/$(DATA)/lockbox.db

.PHONY: run test lint typecheck pytest demo bench docs clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
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

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(DATA) .mypy_cache .ruff_cache .pytest_cache .hypothesis
