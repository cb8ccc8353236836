# One entry point for people and CI. `make demo` runs the console with its demo,
# `make test` runs the whole suite (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: venv devenv devenv-stop demo test lint format screenshots

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

# The README's first command: the console with its demo on http://127.0.0.1:8000.
# Without Go there are no local clusters; the demo still starts and says so.
# devenv runs on 127.0.0.1 (allowed past the egress policy here) and cluster B's
# etcd is plaintext; a real install sets neither (see README.md, Configuration).
demo: export PALETTE_EGRESS_ALLOW ?= 127.0.0.0/8,::1,localhost
demo: export PALETTE_ETCD_ALLOW_PLAINTEXT ?= 1
demo: venv
	@$(PY) -m devenv up || echo "!! The local clusters and stores are not (all) up; the console starts anyway."
	$(PY) manage.py demo
	PALETTE_ETCD_LOCAL_TARGETS=$${PALETTE_ETCD_LOCAL_TARGETS:-$$(sed -n 's/^ETCD_LOCAL_TARGETS_FILE=//p' .devenv/env 2>/dev/null)} \
		$(PY) manage.py serve

# The README's second command, and what CI runs: the whole suite on SQLite (the
# embedded default), then again on PostgreSQL (the production database).
test: venv devenv
	@echo "== Lint"
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@echo "== Django checks"
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run
	@echo "== Test suite on SQLite"
	$(PY) -m pytest
	@pg=$$(sed -n 's/^POSTGRES_URL=//p' .devenv/env 2>/dev/null); \
	if [ -n "$$pg" ]; then \
		echo "== Test suite on PostgreSQL"; \
		DATABASE_URL=$$pg $(PY) -m pytest; \
	elif [ -n "$$CI" ]; then \
		echo "!! CI must test on PostgreSQL too, but devenv started none"; exit 1; \
	else \
		echo "!! PostgreSQL is not installed (apt-get install postgresql): tested on SQLite only"; \
	fi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# PNGs of every page of the persona matrix at 1400 and 420 px, on the test fixtures
# (a live test server, Debian's Chromium through Playwright), into SCREENSHOTS_DIR.
SCREENSHOTS_DIR ?= screenshots
screenshots: venv
	rm -rf $(SCREENSHOTS_DIR)
	PALETTE_SCREENSHOTS_DIR=$(abspath $(SCREENSHOTS_DIR)) $(PY) -m pytest -q \
		tests/browser/test_every_page.py -k fits_at_420
	@echo "Screenshots of $$(ls $(SCREENSHOTS_DIR) | wc -l) page views are in $(SCREENSHOTS_DIR)/"
