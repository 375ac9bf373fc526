# Two commands on a fresh machine with python3 (3.10+) and make: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Appended to $(BIN)/activate: after `source .venv/bin/activate`, `dagster asset materialize ...` and the other
# `dagster` commands find this project's definitions without `-m` (Dagster's -m/--module-name reads it).
MODULE_NAME_LINE := export DAGSTER_MODULE_NAME=zoho_dagster.definitions
# ...but `dagster dev -w workspace.yaml` (zoho-dagster dev, the browser test) refuses a workspace file together
# with a module name, so no recipe here passes an activated shell's value on.
unexport DAGSTER_MODULE_NAME

.PHONY: demo test lint dev bench install clean

# The Makefile is a prerequisite too: a venv made by an older recipe gets this one's activate line.
$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "zoho-dagster needs Python 3.10 or newer: set PYTHON=python3.x")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@grep -qxF '$(MODULE_NAME_LINE)' $(BIN)/activate || printf '%s\n' '' \
		'# zoho-dagster (added by make): `dagster` commands load this project without -m, e.g.' \
		'# dagster asset materialize --select leads --partition 2026-11-27' \
		'$(MODULE_NAME_LINE)' >> $(BIN)/activate
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/zoho-dagster demo

dev: $(STAMP)
	$(BIN)/zoho-dagster dev

lint: $(STAMP)
	$(BIN)/ruff check .

# The browser test needs Debian's chromium: .ci/ensure-chromium installs it when missing (root and apt), unless
# PYTEST_ARGS deselects that test with -m "not browser".
test: $(STAMP)
	$(BIN)/ruff check .
	$(if $(findstring not browser,$(PYTEST_ARGS)),,.ci/ensure-chromium)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The side-by-side run against dlt needs the bench extra (dlt, psutil); BENCH_ARGS passes options to it, e.g.
# make bench BENCH_ARGS='--quick'. 100,000 leads in both cases by default: about 20 minutes on 2 cores.
BENCH_ARGS ?= --env ZOHO_CRM_MAX_CONCURRENCY=10
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/simulator_throughput.py
	$(BIN)/python benchmarks/client_read.py
	$(BIN)/python benchmarks/end_to_end.py
	$(BIN)/python benchmarks/compare_dlt.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .zoho_dagster .pytest_cache .ruff_cache *.egg-info
