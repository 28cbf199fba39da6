# refdesk: two commands on a fresh machine — `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_FLAGS ?= -q

.PHONY: run test test-unit test-broker test-faults coverage bench lint kafka install browser promtool asyncapi demo clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

kafka: install  ## resolve the Kafka jars from Maven Central into the cache (once)
	$(BIN)/python -m refdesk_cli.kafka_local provision

AXE_VERSION := 4.14.1
AXE_JS := .cache/axe-core/axe.min.js

browser: $(AXE_JS)  ## Debian's Chromium and axe-core (npm) for the console's browser tests
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || echo "chromium could not be installed: the browser test will say so"

$(AXE_JS):  # axe-core from the npm registry (MPL-2.0), unpacked into the ignored .cache/
	@mkdir -p .cache/axe-core && tmp=$$(mktemp -d) && \
	  (cd $$tmp && npm pack -q axe-core@$(AXE_VERSION) >/dev/null && tar xzf axe-core-$(AXE_VERSION).tgz) && \
	  cp $$tmp/package/axe.min.js $$tmp/package/LICENSE .cache/axe-core/ && rm -rf $$tmp || \
	  echo "axe-core could not be fetched: the browser tests will say so"

promtool:  ## Debian's Prometheus tools and docker-compose, for the ops checks (nothing is run)
	@command -v promtool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; } || echo "promtool could not be installed: tests/ops will say so"
	@command -v docker-compose >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null || echo "docker-compose could not be installed: the compose config check will say so"

run: install kafka  ## Kafka, the mail sink and the five services; Ctrl-C stops everything
	$(BIN)/refdesk up

test: test-unit test-broker  ## the whole suite: the fast tier, then everything on a real broker

test-unit: install  ## the fast tier: unit and component tests on SQLite, no broker, no network, under 60 s
	REFDESK_TEST_POSTGRES_URL= $(BIN)/pytest $(PYTEST_FLAGS) -n auto tests/unit -m "not browser and not slow"

test-broker: install kafka browser promtool  ## integration, ops, e2e, the unit tests marked browser, slow or postgres, and the short fault subset
	$(BIN)/pytest $(PYTEST_FLAGS) -n 2 --dist loadfile --broker-tier tests --ignore=tests/faults
	$(BIN)/pytest $(PYTEST_FLAGS) -n 2 --dist load tests/faults -m short_faults  # a system per worker

coverage: install kafka browser promtool  ## `make test`'s runs under coverage (xdist workers and services as processes too)
	rm -rf run/coverage && mkdir -p run/coverage
	REFDESK_TEST_POSTGRES_URL= $(BIN)/coverage run -m pytest $(PYTEST_FLAGS) -n auto tests/unit -m "not browser and not slow"
	$(BIN)/coverage run -m pytest $(PYTEST_FLAGS) -n 2 --dist loadfile --broker-tier tests --ignore=tests/faults
	$(BIN)/coverage run -m pytest $(PYTEST_FLAGS) -n 2 --dist load tests/faults -m short_faults
	$(BIN)/coverage combine -q && $(BIN)/coverage report --format=total

test-faults: install kafka
	$(BIN)/pytest $(PYTEST_FLAGS) tests/faults

bench: install kafka
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -m bench

asyncapi: install  ## regenerate docs/asyncapi/ from the subscribers
	$(BIN)/refdesk asyncapi

demo: install  ## replay a realistic shift against the running stack (make run first)
	$(BIN)/refdesk demo

lint: install  ## ruff check, ruff format --check and mypy strict: the gates .ci/run runs first
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services refdesk_cli

clean:
	rm -rf run .pytest_cache
