# One entry point for newcomers and CI. Everything installs into .venv from the project's own files.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: help install demo test lint typecheck unit bench serve clean

help:
	@echo "make demo   - run an Event Grid event and a pipeline request through the whole app on the simulator"
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make bench  - run the benchmarks and write bench/RESULTS.md"
	@echo "make serve  - run the simulator, Key Vault emulator, durable host and functions host on loopback"
	@echo "              (SPEED=60: simulated seconds per real second; logs at INFO)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	@touch $(CHECKOV_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m local demo

SPEED ?= 60
serve: $(STAMP)
	$(PY) -m local -v serve --speed $(SPEED)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

unit: $(STAMP) $(CHECKOV_STAMP)
	CHECKOV_BIN=$(CURDIR)/$(CHECKOV_VENV)/bin/checkov $(PY) -m pytest

test: lint typecheck unit

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
