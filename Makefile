# Two commands do all the set-up: `make run` and `make test`.
# Each creates .venv and installs what is missing; a stamp keeps the second run fast.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench bench-quick lint format clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/cx serve --demo-traffic

test: lint
	$(PY) -m pytest -p no:pytest_anchorpy tests

bench: $(STAMP)
	$(PY) -m benchmarks.matching
	$(PY) -m benchmarks.engine
	$(PY) -m benchmarks.settlement
	$(PY) -m benchmarks.marketdata

bench-quick: $(STAMP)
	$(PY) -m benchmarks.matching --quick
	$(PY) -m benchmarks.engine --quick
	$(PY) -m benchmarks.settlement --quick
	$(PY) -m benchmarks.marketdata --quick

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
