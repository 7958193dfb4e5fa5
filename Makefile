# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench simulate clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/klaviyo-source demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy

test: $(STAMP) lint
	bash scripts/ensure-postgres.sh
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench

simulate: $(STAMP)
	$(BIN)/klaviyo-source simulate --port 8700 --seed 42 --scale medium

clean:
	rm -rf $(VENV) .venv-* .pytest_cache .mypy_cache .ruff_cache
