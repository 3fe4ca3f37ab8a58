# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Start the emulator, run one task through all five executors, print the results, stop it.
demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check llm_exec tests scripts

# The full suite (what CI runs): lint, then every test.
test: lint
	$(BIN)/python -m pytest

# Start-up benchmark of every executor (see README "Performance").
bench: $(STAMP)
	$(BIN)/python scripts/bench_startup.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
