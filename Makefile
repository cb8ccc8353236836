# One entry point for people and CI. `make demo` runs the console with its demo,
# `make test` runs the whole suite (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: venv devenv devenv-stop demo test lint format

venv: $(VENV)/.installed

# uv comes from PyPI; its cache (~/.cache/uv) makes a clean clone's install take seconds.
$(VENV)/.installed: pyproject.toml
	@command -v uv >/dev/null || $(PYTHON) -m pip install --quiet uv
	@test -x $(PY) || uv venv --quiet --python $(PYTHON) $(VENV)
	uv pip install --quiet --python $(PY) -e '.[dev]'
	@touch $@

devenv: venv
	$(PY) -m devenv up

devenv-stop: venv
	$(PY) -m devenv down

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
