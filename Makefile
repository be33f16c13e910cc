# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv and installs
# what it needs (the install is skipped when pyproject.toml has not changed since).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo
# The agent frameworks get their own venv: beside them pip resolves an older openai (instructor
# caps jiter), and the main suite must run on the newest.
FW_VENV := .venv-frameworks
FW_STAMP := $(FW_VENV)/.installed-frameworks

.PHONY: demo test test-frameworks test-all test-other-pythons lint bench bench-scripts serve clean

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
	$(MAKE) --no-print-directory test-frameworks

$(FW_STAMP): pyproject.toml
	[ -x $(FW_VENV)/bin/python ] || $(PYTHON) -m venv $(FW_VENV)
	$(FW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FW_VENV)/bin/python -m pip install --quiet -e '.[frameworks]'
	touch $(FW_STAMP)

# openai-agents, langchain-openai, pydantic-ai and instructor on wrapped clients (tests/frameworks/,
# collected only here); the header line names the openai they ran on.
test-frameworks: $(FW_STAMP)
	TOKENMW_FRAMEWORKS=1 LITELLM_LOCAL_MODEL_COST_MAP=True $(FW_VENV)/bin/python -m pytest tests/frameworks -p no:cacheprovider

# The suite under every other CPython that pyenv has here (3.10, 3.12, 3.13), each in its own
# venv (.venv-3.X); interpreters that are not installed are skipped and said so.
OTHER_PYTHONS ?= 3.10 3.12 3.13
test-all: test test-other-pythons

test-other-pythons:
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

# The seed scenario: raw client, naive optimizer, tokenmw (BENCH_ARGS=--json bench.json ...).
bench: $(STAMP)
	LITELLM_LOCAL_MODEL_COST_MAP=True $(BIN)/tokenmw bench $(BENCH_ARGS)

# The benchmark scripts of benchmarks/ (peers side by side: installs the bench extra).
bench-scripts: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

serve: $(STAMP)
	$(BIN)/tokenmw serve

clean:
	rm -rf $(VENV) $(FW_VENV) .venv-3.* build *.egg-info .pytest_cache .ruff_cache .mypy_cache
