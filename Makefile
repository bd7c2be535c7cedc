# hourbridge: `make demo` and `make test` work on a fresh clone; each creates .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := .demo
PERIOD ?= 2026-10

.PHONY: demo test lint typecheck pytest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

pytest: $(STAMP)
	$(BIN)/pytest -q

## make test: ruff, mypy and the test suite (on PostgreSQL too when HOURBRIDGE_TEST_DATABASE_URL is set)
test: lint typecheck pytest

## make demo: start the sandbox, sync its month into the fake Xero on SQLite, then sync again
demo: $(STAMP)
	@bash scripts/demo.sh "$(BIN)" "$(DEMO)" "$(PERIOD)"

clean:
	rm -rf $(DEMO) .mypy_cache .ruff_cache .pytest_cache
