# The README's two commands are `make demo` and `make test`; each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test ui mlflow-ui bench install validate clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ghmetrics demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# `ghmetrics dagster ...` runs the dagster CLI with the embedded instance and dbt manifest ready.
validate: $(STAMP)
	$(BIN)/ghmetrics dagster definitions validate -w workspace.yaml

ui: $(STAMP)
	$(BIN)/ghmetrics ui

mlflow-ui: $(STAMP)
	$(BIN)/ghmetrics mlflow-ui

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .ghmetrics dbt_project/target dbt_project/logs
