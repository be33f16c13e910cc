# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv and installs
# what it needs (the install is skipped when pyproject.toml has not changed since).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test lint bench serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(DEMO_STAMP)

# The demo needs the package and the OpenTelemetry SDK (per-hook spans, OTLP export), not the
# test tools.
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[otel]'
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	LITELLM_LOCAL_MODEL_COST_MAP=True $(BIN)/tokenmw demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/ruff check tokenmw tests examples benchmarks
	LITELLM_LOCAL_MODEL_COST_MAP=True $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check tokenmw tests examples benchmarks
	$(BIN)/mypy tokenmw

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

serve: $(STAMP)
	$(BIN)/tokenmw serve

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
