# The README's two commands are `make demo` and `make test`; each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test ui web mlflow-ui bench install validate clean audit browser lock lint

LOCK := requirements.lock

# Installs exactly the versions in requirements.lock (a constraints file): what the tests passed with.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[dev,demo]"
	touch $(STAMP)

# Re-resolves the newest versions pyproject.toml allows into requirements.lock; then `make test`.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e ".[dev,demo]"
	head -2 $(LOCK) > $(LOCK).new
	.venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^ghmetrics' >> $(LOCK).new
	mv $(LOCK).new $(LOCK) && rm -rf .venv-lock

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ghmetrics demo

# The browser tests drive Debian's chromium: installed here when missing and allowed (root, apt).
browser:
	@bash deploy/install-chromium.sh

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff's lint rules (pyproject.toml): pyflakes, pycodestyle, import order, bugbear, modern syntax.
lint: $(STAMP)
	$(BIN)/ruff check .

# `ghmetrics dagster ...` runs the dagster CLI with the embedded instance and dbt manifest ready.
validate: $(STAMP)
	$(BIN)/ghmetrics dagster definitions validate -w workspace.yaml

ui: $(STAMP)
	$(BIN)/ghmetrics ui

web: $(STAMP)
	$(BIN)/ghmetrics web

mlflow-ui: $(STAMP)
	$(BIN)/ghmetrics mlflow-ui

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# `pip check` offline, then pip-audit where its advisory database is reachable (deploy/audit.sh).
audit: $(STAMP)
	bash deploy/audit.sh $(VENV)

clean:
	rm -rf $(VENV) .venv-audit .ghmetrics .test-artifacts dbt_project/target dbt_project/logs
