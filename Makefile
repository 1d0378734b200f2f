# The two commands in the README: `make demo` and `make test`. Everything else is a helper.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | md5sum | cut -c1-8)

.PHONY: demo test lint typecheck unit integration faults bench infra-start infra-stop clean
FAULTS ?= 200
SEED ?= 1

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/headrace demo

test: $(STAMP) lint typecheck
	$(PY) -m pytest -q -ra

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

integration: $(STAMP)
	$(PY) -m pytest -q tests/integration

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The fault-injection suite (docs/guarantees.md): FAULTS faults, then the invariants I1-I11.
faults: $(STAMP)
	$(PY) -m tests.faults.suite --faults $(FAULTS) --seed $(SEED)

# Benchmarks print ratios against a baseline measured in the same run (bench/).
bench: $(STAMP)
	$(PY) bench/dashboard_query.py

infra-start: $(STAMP)
	$(VENV)/bin/headrace infra start

infra-stop: $(STAMP)
	$(VENV)/bin/headrace infra stop

clean:
	rm -rf .headrace .pytest_cache .mypy_cache .ruff_cache
