# Two commands on a fresh machine: `make demo` and `make test` (README.md).
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: install services test lint format demo bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed  ## create .venv and install the project with its dev tools

services:  ## start PostgreSQL and Mosquitto if they are down
	@scripts/services.sh

test: install services  ## run the test suite against the real services
	$(BIN)/pytest

lint: install  ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: install services  ## migrate, import a small fleet, run ingest + API + a live simulator
	@scripts/demo.sh

bench: install services  ## benchmarks; writes bench/results/*.json and bench/results/latest.md
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .demo
