# The two commands: `make demo` and `make test`. Both create .venv and install into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast fuzz lint bench install install-dev dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt requirements-dashboard.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt -r requirements-dashboard.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/python -m jobs demo

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

# make test without the tests marked slow (real workers, scheduler, dashboard, make dev,
# pip install, outages, the README's runnable blocks); README "Development" says how long
test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not slow"

# The property tests with many more generated examples (tests/strategies.py says how many).
fuzz: $(VENV)/.installed-dev
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/test_properties_records.py tests/test_properties_catalogue.py tests/test_properties_sync.py tests/test_properties_catalogue_sync.py --hypothesis-show-statistics

# ruff, mypy strict, and the architecture's import contracts (pyproject.toml [tool.importlinter])
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# migrate, then the Procfile's worker and scheduler under honcho, against a simulator
# process and the local PostgreSQL and Redis (see README "Locally")
dev: $(VENV)/.installed-dev
	$(BIN)/python dev.py

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
