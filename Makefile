# narrawatch developer commands. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: help setup demo run test lint typecheck imports pytest bench clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch first (a local file on this kind of machine); a bare `torch`
	# requirement would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install narrawatch with its dev tools

demo: $(STAMP)  ## offline demo: replay real bundled content over loopback through the whole pipeline
	$(BIN)/narrawatch demo

run: $(STAMP)  ## run the service on config/ (needs internet to reach the sources)
	$(BIN)/narrawatch --config config run

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)  ## mypy (strict on our packages)
	$(BIN)/mypy

imports: $(STAMP)  ## the dependency rule (import-linter)
	$(BIN)/lint-imports

pytest: $(STAMP)  ## the test suite only
	$(BIN)/pytest

test: lint typecheck imports pytest  ## everything CI runs

bench: $(STAMP)  ## quick benchmarks; prints JSON lines and appends to bench/RESULTS.md
	$(BIN)/python -m bench --quick

clean:  ## remove the venv and caches (keeps data/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
