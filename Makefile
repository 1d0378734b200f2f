# The two commands in the README: `make demo` and `make test`. Everything else is a helper.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | md5sum | cut -c1-8)

.PHONY: demo stack test lint typecheck docs unit integration faults fuzz bench bench-smoke bench-deps infra-start infra-stop clean
FAULTS ?= 200
SEED ?= 1
CATALOG ?= sqlite

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/headrace demo

# docker-compose.yml without Docker (docs/operations.md, "The compose stack without Docker"): up,
# a replay of STACK_EVENTS generated events through the producer, the report once every event is
# placed, down (also when a step fails).
STACK_EVENTS ?= 20000
stack: $(STAMP)
	set -e; trap '$(VENV)/bin/headrace stack down' EXIT; \
	  $(VENV)/bin/headrace stack up; \
	  $(VENV)/bin/headrace generate .headrace/stack/sample.jsonl --events $(STACK_EVENTS); \
	  eval "$$($(VENV)/bin/headrace stack env)"; \
	  $(VENV)/bin/headrace replay .headrace/stack/sample.jsonl; \
	  $(VENV)/bin/headrace stack wait; \
	  $(VENV)/bin/headrace report

test: $(STAMP) bench-deps lint typecheck
	$(PY) -m pytest -q -ra

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

integration: $(STAMP)
	$(PY) -m pytest -q tests/integration

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# docs/configuration.md from the settings classes (a unit test fails when it is stale).
docs: $(STAMP)
	$(PY) -m tools.config_reference

# The fault-injection suite (docs/guarantees.md): FAULTS faults, then the invariants I1-I11;
# CATALOG=postgres runs it on a PostgreSQL catalog (a server of the run's own).
faults: $(STAMP)
	$(PY) -m tests.faults.suite --faults $(FAULTS) --seed $(SEED) --catalog $(CATALOG)

# The fuzz targets (tests/fuzz) at their long mode: over 1,000,000 generated inputs through the
# producer's parsers, the validator and the loader (about 30 minutes); `make test` runs a smoke.
fuzz: $(STAMP)
	HEADRACE_FUZZ=long $(PY) -m pytest -q tests/fuzz --timeout 7200

# Benchmarks (bench/, docs/performance.md): each figure next to a baseline measured in the same
# run, a table of verdicts, and the JSON result in .headrace/bench/result.json. The full scale
# takes about 25 minutes; the smoke scale (CI) a minute or two. BENCH_<FIELD>=N resizes a part
# (bench/scale.py), BENCH_ONLY picks sections (stages,versus,e2e,backfill,queries).
BENCH_SCALE ?= full
BENCH_ONLY ?= stages,versus,e2e,backfill,queries
bench: $(STAMP) bench-deps
	$(PY) -m bench --scale $(BENCH_SCALE) --only $(BENCH_ONLY)

bench-smoke: $(STAMP) bench-deps
	$(PY) -m bench --scale smoke --only $(BENCH_ONLY)

# Quix Streams, for the comparison figure only. Every quixstreams 2.x/3.x release caps
# confluent-kafka below our pin (3.28.1: <2.13, pydantic <2.14, pydantic-settings <2.16), so a
# resolver cannot install it beside the pins; it runs with them, so it is installed without its
# dependency pins and its own missing dependencies are added under the constraints.
BENCH_DEPS := $(VENV)/.bench-deps-quixstreams-3.28.1
$(BENCH_DEPS): $(STAMP)
	$(PY) -m pip install -q --no-deps quixstreams==3.28.1
	$(PY) -m pip install -q -c constraints.txt rocksdict==0.3.29 jsonlines==4.0.0 \
		jsonpath-ng==1.16.0 httpx==0.28.1 httpcore==1.0.9
	touch $@

bench-deps: $(BENCH_DEPS)

infra-start: $(STAMP)
	$(VENV)/bin/headrace infra start

infra-stop: $(STAMP)
	$(VENV)/bin/headrace infra stop

clean:
	rm -rf .headrace .pytest_cache .mypy_cache .ruff_cache
