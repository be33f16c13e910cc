# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv and installs
# what it needs (the install is skipped when pyproject.toml has not changed since).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test test-all lint bench serve clean

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
	$(BIN)/lint-imports --no-cache
	LITELLM_LOCAL_MODEL_COST_MAP=True $(BIN)/python -m pytest

# The suite under every other CPython that pyenv has here (3.10, 3.12, 3.13), each in its own
# venv (.venv-3.X); interpreters that are not installed are skipped and said so.
OTHER_PYTHONS ?= 3.10 3.12 3.13
test-all: test
	@for v in $(OTHER_PYTHONS); do \
	  py=$$(pyenv prefix $$(pyenv versions --bare | grep -E "^$$v(\.|$$)" | tail -n 1) 2>/dev/null)/bin/python; \
	  if [ ! -x "$$py" ]; then echo "== Python $$v: not installed, skipped"; continue; fi; \
	  echo "== Python $$v ($$py)"; \
	  venv=.venv-$$v; \
	  if [ ! -f $$venv/.installed-dev ] || [ pyproject.toml -nt $$venv/.installed-dev ]; then \
	    $$py -m venv $$venv && $$venv/bin/python -m pip install --quiet --upgrade pip && \
	    $$venv/bin/python -m pip install --quiet -e '.[dev]' && touch $$venv/.installed-dev || exit 1; \
	  fi; \
	  LITELLM_LOCAL_MODEL_COST_MAP=True $$venv/bin/python -m pytest -p no:cacheprovider || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check tokenmw tests examples benchmarks
	$(BIN)/mypy tokenmw

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

serve: $(STAMP)
	$(BIN)/tokenmw serve

clean:
	rm -rf $(VENV) .venv-3.* build *.egg-info .pytest_cache .ruff_cache .mypy_cache
