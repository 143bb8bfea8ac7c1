# Set-up is part of every target: the first run creates .venv from the lock file.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8080
REPO ?= .

.PHONY: run test bench setup wrk

run: $(STAMP)
	$(BIN)/layercfg serve --repo $(REPO) --port $(PORT)

test: $(STAMP) wrk
	$(BIN)/python -m pytest

# The load tests drive the server with wrk, a Debian package, not a PyPI one.
wrk:
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq wrk >/dev/null; \
	  else \
	    echo "wrk is missing: run 'sudo apt-get install wrk'" >&2; exit 1; \
	  fi; }

bench: $(STAMP) wrk
	$(BIN)/python -m bench

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)
