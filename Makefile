# Two commands on a fresh machine with python3 (3.10+) and make: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint dev bench install clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "zoho-dagster needs Python 3.10 or newer: set PYTHON=python3.x")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/zoho-dagster demo

dev: $(STAMP)
	$(BIN)/zoho-dagster dev

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/simulator_throughput.py
	$(BIN)/python benchmarks/client_read.py
	$(BIN)/python benchmarks/end_to_end.py

clean:
	rm -rf $(VENV) .zoho_dagster .pytest_cache .ruff_cache *.egg-info
