# Two commands for a fresh machine: `make run` (install + the default search) and
# `make test` (install + the test suite). Everything lives in a local virtualenv.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
EXTRAS ?= test,lint,report,gan,rl,ray,tensorboard,wandb,mlflow,bohb,mo

.PHONY: install run test test-slow lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# the CPU build of torch first, so the package's torch range installs nothing more
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[$(EXTRAS)]'
	touch $@

run: install
	$(VENV)/bin/pbtnas run classification

test: install
	$(PY) -m pytest

test-slow: install
	$(PY) -m pytest -m slow

# static checks (CI runs them before the tests): lint, formatting, types, and the package's
# floors (import-linter contracts in pyproject.toml, see docs/architecture.md)
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-cache

bench: install
	$(PY) benchmarks/classification_overhead.py

clean:
	rm -rf $(VENV) runs .pytest_cache
