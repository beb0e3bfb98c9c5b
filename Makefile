# One command surface: `make run` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080
HOST ?= 127.0.0.1
INSTALLED := $(VENV)/.installed
BACKSTAGE := tests/e2e/backstage
BACKSTAGE_INSTALLED := $(BACKSTAGE)/node_modules/.installed

.PHONY: install backstage-deps browser-deps run test check docs mutation lint typecheck pytest openapi golden iam lock soak load bench bench-tools clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(INSTALLED)

# The real Backstage catalog backend of the end-to-end test. better-sqlite3 has no prebuilt
# binary here, so it compiles against the local Node headers (needs gcc, g++, make, python3).
$(BACKSTAGE_INSTALLED): $(BACKSTAGE)/package.json $(BACKSTAGE)/package-lock.json
	cd $(BACKSTAGE) && npm_config_nodedir=$${npm_config_nodedir:-/usr} npm ci --no-audit --no-fund
	touch $@

backstage-deps: $(BACKSTAGE_INSTALLED)

# The operator page's tests drive Debian's chromium through its chromedriver (no downloads).
browser-deps:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

## Serve the catalog from the embedded demo ECR (a seeded moto server) on $(HOST):$(PORT).
run: install
	$(BIN)/ecr-catalog serve --demo --host $(HOST) --port $(PORT)

## Lint, type-check, build the docs site strictly, and run the whole test suite.
test: lint typecheck docs pytest

## The quick loop: lint, type-check and the unit tests (pure, no processes; seconds).
check: lint typecheck
	$(BIN)/pytest tests/unit -q

lint: install
	$(BIN)/ruff check service tests bench
	$(BIN)/ruff format --check service tests bench

typecheck: install
	$(BIN)/mypy

## The docs site (docs/, mkdocs.yml) into site/; a broken link, anchor or missing page fails it.
## Its configuration reference is written from Settings by docs/hooks.py, hence `install`.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

pytest: install backstage-deps browser-deps
	$(BIN)/pytest

## Ten minutes of cycling faults, churn and polling clients; prints a table, fails on a violation.
soak: install
	$(BIN)/python -m tests.faults.soak --seconds $${SOAK_SECONDS:-600}

## 200 concurrent clients for 60 s while refreshes run; prints latencies and event-loop blocking.
load: install
	$(BIN)/python -m bench.load --clients 200 --seconds 60

# nginx (the static-file yardstick) and wrk (the load generator) come from Debian.
bench-tools:
	command -v nginx >/dev/null && command -v wrk >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk; }

## Cold refresh vs the sequential baseline, at scale, steady-state calls, serving vs nginx.
bench: install bench-tools
	$(BIN)/python -m bench.run

## Mutation testing of the pure core against the unit tests (mutmut; not part of `make test`,
## about a quarter of an hour here). Prints the score; see docs/testing.md.
mutation: install
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 >/dev/null || true
	$(BIN)/python -m tests.mutation_score

## Rewrite the golden catalog file from the golden sources (then review `git diff`).
golden: install
	$(BIN)/python -m tests.update_golden

## Rewrite the IAM documents under deploy/aws/iam/ for each partition (see docs/iam.md).
iam: install
	for partition in aws aws-cn aws-us-gov; do mkdir -p deploy/aws/iam/$$partition; \
	  for document in permissions irsa-trust read-role-trust organization; do \
	    $(BIN)/ecr-catalog iam-policy --partition $$partition --document $$document \
	      > deploy/aws/iam/$$partition/$$document.json; done; done

## Rewrite requirements.lock from pyproject.toml: the runtime dependencies at exact versions, with
## the hash of every file, for the image's Python (3.11, the Dockerfile's base image). Pins that
## still satisfy pyproject.toml are kept; `make lock LOCK_ARGS=--upgrade` moves every pin to the
## newest. A test fails while the lock and pyproject.toml disagree.
lock: install
	$(BIN)/pip-compile --quiet --generate-hashes --no-strip-extras --no-emit-index-url \
	  --no-emit-find-links $(LOCK_ARGS) --output-file requirements.lock pyproject.toml

## Regenerate the committed OpenAPI spec.
openapi: install
	$(BIN)/ecr-catalog openapi --output openapi/openapi.yaml

clean:
	rm -rf $(VENV) $(BACKSTAGE)/node_modules .mypy_cache .ruff_cache .pytest_cache site
