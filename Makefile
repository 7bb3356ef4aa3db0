# OrangeScrum Analytics. `make demo` sets everything up and runs the pipeline; `make test` runs
# every test. Both create the virtualenv first when it is missing or out of date.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_QUIET := --quiet --disable-pip-version-check --no-warn-script-location
# The BigQuery emulator (tests/dbt/test_dbt_bigquery_emulator.py) pins its own duckdb and
# sqlglot, so it gets a virtualenv of its own; tests/bq_emulator.py starts it from there.
BQEMU_VENV ?= .venv-bqemu
# pytest-xdist workers for `make test`: the suite waits on brokers, JVMs and servers about half
# of the time on 2 cores, so two workers finish it in about two thirds of the time of one.
TEST_WORKERS ?= 2
BQEMU_REQUIREMENT := crucible-emulator[server]==0.1.0a2
BQEMU_STAMP := $(BQEMU_VENV)/.installed

.PHONY: help setup debian-packages demo test test-fast test-random lint docs bench soak lock lock-bqemu clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP) $(BQEMU_STAMP) debian-packages  ## create .venv (+ .venv-bqemu) and install everything (idempotent)

# Debian packages behind some services and tests: Chromium for the browser checks
# (tests/browser/; playwright's own browser download needs hosts this project does not rely
# on), MariaDB for OrangeScrum's own database (`orangescrum appdb`), PostgreSQL for Airflow's
# metadata database when ORANGESCRUM_AIRFLOW_DATABASE=postgres. The project runs each server
# itself (data under its data dir, loopback port), never the system service. As root the
# set-up installs what is missing; otherwise it says which command would.
DEBIAN_PACKAGES := chromium fonts-noto-color-emoji mariadb-server postgresql

debian-packages:
	@missing="$$(for package in $(DEBIAN_PACKAGES); do dpkg -s $$package >/dev/null 2>&1 || echo $$package; done | xargs)"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "Not a Debian machine: install $$missing for the browser, app-database and Airflow-on-PostgreSQL tests."; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "Installing Debian packages: $$missing (about a minute)..."; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get install -y -q --no-install-recommends $$missing || { apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; }; } > /tmp/orangescrum-apt-install.log 2>&1 \
	    || { tail -20 /tmp/orangescrum-apt-install.log; echo "Installing $$missing failed (log above)."; exit 1; }; \
	else \
	  echo "Missing Debian packages (the tests that need them will say so): sudo apt-get install $$missing"; \
	fi

# The registry's build files too: a set-up from before them builds it (the demo needs it).
$(STAMP): requirements.in requirements.lock pyproject.toml orangescrum/core/apicurio/pom.xml orangescrum/core/apicurio/.mvn/maven.config
	@[ -n "$(PYTHON)" ] || { echo "Python 3.11 is required and none was found: install python3.11 (Debian: apt-get install python3.11 python3.11-venv)."; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "$(PYTHON) is $$($(PYTHON) --version); this project needs Python 3.11: set PYTHON=/path/to/python3.11."; exit 1; }
	@command -v java >/dev/null || [ -n "$$JAVA_HOME" ] || { echo "Java 17 is required by Spark and none was found: install it (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME."; exit 1; }
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "Could not create a virtualenv: install the venv module (Debian: apt-get install python3.11-venv)."; exit 1; }
	@echo "Installing dependencies into $(VENV) (first time: about 2 minutes)..."
	@$(BIN)/pip install $(PIP_QUIET) --upgrade pip > $(VENV)/install.log 2>&1 || { tail -30 $(VENV)/install.log; exit 1; }
	@$(BIN)/pip install $(PIP_QUIET) -r requirements.in -c requirements.lock >> $(VENV)/install.log 2>&1 || { tail -30 $(VENV)/install.log; echo "Dependency install failed; full log: $(VENV)/install.log"; exit 1; }
	@$(BIN)/pip install $(PIP_QUIET) --no-deps -e . >> $(VENV)/install.log 2>&1 || { tail -30 $(VENV)/install.log; exit 1; }
	@echo "Fetching the JVM jars (Apache Kafka, Spark's Kafka and Avro connectors) from Maven Central and building the local schema registry..."
	@$(BIN)/orangescrum jars fetch
	@touch $@
	@echo "Environment ready: $(VENV)"

$(BQEMU_STAMP): requirements-bqemu.lock
	@[ -n "$(PYTHON)" ] || { echo "Python 3.11 is required and none was found: install python3.11 (Debian: apt-get install python3.11 python3.11-venv)."; exit 1; }
	@[ -x $(BQEMU_VENV)/bin/python ] || $(PYTHON) -m venv $(BQEMU_VENV) || { rm -rf $(BQEMU_VENV); echo "Could not create a virtualenv: install the venv module (Debian: apt-get install python3.11-venv)."; exit 1; }
	@echo "Installing the BigQuery emulator into $(BQEMU_VENV) (first time: about 20 seconds)..."
	@$(BQEMU_VENV)/bin/pip install $(PIP_QUIET) --upgrade pip > $(BQEMU_VENV)/install.log 2>&1 || { tail -30 $(BQEMU_VENV)/install.log; exit 1; }
	@$(BQEMU_VENV)/bin/pip install $(PIP_QUIET) '$(BQEMU_REQUIREMENT)' -c requirements-bqemu.lock >> $(BQEMU_VENV)/install.log 2>&1 || { tail -30 $(BQEMU_VENV)/install.log; echo "BigQuery emulator install failed; full log: $(BQEMU_VENV)/install.log"; exit 1; }
	@touch $@
	@echo "BigQuery emulator ready: $(BQEMU_VENV)"

demo: setup  ## run the whole pipeline on the local stack and print reconciled counts
	$(BIN)/orangescrum demo

test: setup  ## run the whole test suite (what CI runs)
	$(BIN)/pytest -n $(TEST_WORKERS)

test-fast: setup  ## the tests that take seconds (no Spark/dbt/broker end to end)
	$(BIN)/pytest -m "not slow"

test-random: setup  ## the whole suite in a random order (pytest-randomly; prints the seed)
	$(BIN)/pytest -p randomly

# sqlfluff's dbt templater opens the dev warehouse: give it the absolute path of the default
# one, so the profile does not resolve it from whatever directory sqlfluff runs in.
lint: export ORANGESCRUM_DUCKDB_PATH ?= $(CURDIR)/.orangescrum/warehouse.duckdb
lint: setup  ## ruff + the import-linter layer contracts + sqlfluff + dbt-score
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/lint-imports
	mkdir -p "$$(dirname "$$ORANGESCRUM_DUCKDB_PATH")"
	$(BIN)/sqlfluff lint dbt_project/models
	$(BIN)/orangescrum dbt parse --quiet && $(BIN)/dbt-score lint --manifest dbt_project/target/manifest.json

docs: setup  ## build the dbt docs catalog and serve it on http://127.0.0.1:8081
	$(BIN)/orangescrum dbt docs generate
	$(BIN)/orangescrum docs serve --port 8081

bench: setup  ## every benchmark (~50 min on 2 cores): bench/results.json + docs/BENCHMARKS.md
	$(BIN)/python bench/run_all.py

soak: setup  ## the one-hour soak (bench/soak.py): memory drift, lag, lost events -> bench/results.json
	$(BIN)/python bench/soak.py

lock:  ## re-resolve requirements.in into requirements.lock (needs the package index)
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install $(PIP_QUIET) -r requirements.in
	{ echo "# Generated by \`make lock\` (pip freeze of a venv built from requirements.in). Do not edit by hand."; .lock-venv/bin/pip freeze; } > requirements.lock
	rm -rf .lock-venv

lock-bqemu:  ## re-resolve the BigQuery emulator's pins into requirements-bqemu.lock
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install $(PIP_QUIET) '$(BQEMU_REQUIREMENT)'
	{ echo "# Generated by \`make lock-bqemu\` (pip freeze of a venv with $(BQEMU_REQUIREMENT)). Do not edit by hand."; .lock-venv/bin/pip freeze; } > requirements-bqemu.lock
	rm -rf .lock-venv

clean:  ## remove local state (lake, checkpoints, warehouse) but keep the virtualenv
	rm -rf .orangescrum dbt_project/target dbt_project/logs test-artifacts
