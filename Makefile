# One command surface: `make run` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080
HOST ?= 127.0.0.1
INSTALLED := $(VENV)/.installed

.PHONY: install run test lint typecheck pytest openapi clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(INSTALLED)

## Serve the catalog from the embedded demo ECR (a seeded moto server) on $(HOST):$(PORT).
run: install
	$(BIN)/ecr-catalog serve --demo --host $(HOST) --port $(PORT)

## Lint, type-check and run the whole test suite.
test: lint typecheck pytest

lint: install
	$(BIN)/ruff check service tests
	$(BIN)/ruff format --check service tests

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

## Regenerate the committed OpenAPI spec.
openapi: install
	$(BIN)/ecr-catalog openapi --output openapi/openapi.yaml

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
