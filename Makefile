# Two commands on a fresh machine with Python 3.11+ and make: `make run`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-sqlite test-browser browser screenshots bench audit contracts asyncapi clean help
CHROMIUM ?= /usr/bin/chromium

help:
	@echo "make run         start nats-server + households :8001, relief :8002, ledger :8003, web :8000"
	@echo "make test        run every test (SQLite and PostgreSQL, real nats-server)"
	@echo "make test-browser  the web pages in headless chromium (tests/browser)"
	@echo "make screenshots  the same, writing docs/screenshots/*.png"
	@echo "make bench       benchmarks; results in bench/results/*.json"
	@echo "make audit       relief-audit verify against the running ledger (LEDGER_URL)"
	@echo "make contracts   export contract JSON Schemas to contracts/schemas"
	@echo "make asyncapi    write docs/asyncapi.json from the code"

$(STAMP): requirements.lock pyproject.toml setup.py services/ledger/audit/_fastscan.c
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ needed"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m services.common.run

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

test-sqlite: $(STAMP) browser
	STORES=sqlite $(BIN)/python -m pytest -q

test-browser: $(STAMP) browser
	$(BIN)/python -m pytest -q tests/browser

screenshots: $(STAMP) browser
	UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/browser

# Browser tests drive Debian's chromium through Playwright (no browser download at test time).
browser:
	@test -x $(CHROMIUM) || { \
	  echo "Installing chromium for the browser tests (apt-get)"; \
	  if [ "$$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y --no-install-recommends chromium; }

bench: $(STAMP)
	$(BIN)/python -m bench

audit: $(STAMP)
	$(BIN)/relief-audit verify --source $${LEDGER_URL:-http://127.0.0.1:8003}

contracts: $(STAMP)
	$(BIN)/python -m contracts.export

asyncapi: $(STAMP)
	$(BIN)/python -m services.common.asyncapi --out docs/asyncapi.json

clean:
	rm -rf var .pytest_cache
