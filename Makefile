# Two commands from a fresh clone: `make run` and `make test`. Only python3.11+ and make needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUM    := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# Two stamps: `make run` installs only what running needs; `make test` adds the test tools.
RUN_STAMP := $(VENV)/.run-installed-$(SUM)
STAMP     := $(VENV)/.installed-$(SUM)

.PHONY: run test lint bench fuzz screenshots clean

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	rm -f $(VENV)/.run-installed-*
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Local runs talk to partners on 127.0.0.1: `make run` allows private/loopback partner URLs.
# Production keeps the default (false): the SSRF guard refuses them (docs/SECURITY.md).
# --init: a fresh clone has no database yet; `serve` alone refuses a missing one (docs/DEPLOY.md).
run: $(RUN_STAMP)  ## install what running needs, create/migrate the database, start the hub
	@HUB_ALLOW_PRIVATE_URLS=true $(BIN)/ocpi-hub serve --init

test: $(STAMP)  ## install with test extras, lint, format check, type-check and run the whole suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)  ## run the benchmark against the pass-through baseline
	$(BIN)/python -m bench

fuzz: $(STAMP)  ## long fuzzing run
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest tests/test_fuzz.py -o timeout=0

screenshots: $(STAMP)  ## re-take docs/screenshots/*.png from the console's browser tests (needs chromium)
	HUB_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest tests/test_console_browser.py tests/test_console_browser_operators.py tests/test_console_browser_agreements.py

clean:
	rm -rf $(VENV) .venv-interop var .pytest_cache .mypy_cache .ruff_cache
