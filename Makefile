# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: install install-dev run test clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

## Set up and run the server (and, with REDIS_URL, a worker); the demo store at http://localhost:$(PORT)/demo/
run: install
	PORT=$(PORT) PY=$(PY) ./scripts/run.sh

## Set up and run the whole test suite against PostgreSQL and Redis.
test: install-dev
	PY=$(PY) TEST_DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) ./scripts/test.sh $(ARGS)

clean:
	rm -rf $(VENV) staticfiles
