# One venv per checkout; every target creates it on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast slow-list check lint typecheck bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

## Run the example shop pipeline end to end on the embedded default (DuckDB + Delta + SQLite)
demo: $(STAMP)
	cd examples/shop && { test -f data/_manifest.json || ../../$(BIN)/python generate.py --orders 20000; } && ../../$(BIN)/lockgate run
	@echo ""
	@echo "Tables:  examples/shop/warehouse/<dataset>/ (Delta Lake); rows that failed a check in <dataset>__quarantine/"
	@echo "History: examples/shop/.lockgate/state.db (runs, checks, quality scores)"
	@echo "Try next:"
	@echo "  source $(BIN)/activate && cd examples/shop"
	@echo "  lockgate show orders          # schema, versions, latest checks, sample rows"
	@echo "  lockgate quarantine orders    # the rows a check rejected, and why"
	@echo "  lockgate quality orders       # quality score per dimension, run after run"
	@echo "  lockgate features training-set churn_model --entities data/labels.csv --out training.parquet"

## Run the test suite (everything: CI runs this), doctests included
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --maxschedchunk 1 -q $(PYTEST_ARGS)

## The fast tier for local loops (< 1 min): no real-subprocess or megabyte tests, no database
## services, a fifth of the hypothesis budget
test-fast: $(STAMP)
	LOCKGATE_FAST=1 $(BIN)/python -m pytest -n 2 -q -m "not slow" -k "not postgres and not mysql" $(PYTEST_ARGS)

## Rebuild tests/slow_tests.txt (what test-fast leaves out) from a measuring run of the fast tier
slow-list: $(STAMP)
	LOCKGATE_FAST=1 $(BIN)/python -m pytest -n 2 -q -m "not slow" -k "not postgres and not mysql" --durations=0 -p no:cacheprovider $(PYTEST_ARGS) | $(BIN)/python tests/tier.py

lint: $(STAMP)
	$(BIN)/ruff check lockgate tests examples benchmarks
	$(BIN)/ruff format --check lockgate tests examples benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck

clean:
	rm -rf $(VENV) examples/shop/data examples/shop/warehouse examples/shop/.lockgate
