# xbot — the two commands: `make up` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: up test soak lint bench install clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## make up: embedded NATS + PostgreSQL + every service, shadow mode, until Ctrl-C
up: install
	$(BIN)/xbot up

## make test: the whole suite, unit to e2e, against real servers the harness starts (in TEST_WORKERS
## processes, 2 by default, a test file per worker at a time, each worker with its own nats-server and PostgreSQL)
TEST_WORKERS ?= 2
test: install
	SOAK_SECONDS=$${SOAK_SECONDS:-40} $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

## make soak: the full two-minute soak (all six services, random kill -9s; SOAK_SECONDS / SOAK_SEED to vary)
soak: install
	SOAK_SECONDS=$${SOAK_SECONDS:-120} $(BIN)/python -m pytest -q -p no:cacheprovider tests/chaos/test_soak.py

lint: install
	$(BIN)/ruff check shared services tests bench xbot
	$(BIN)/mypy

bench: install
	$(BIN)/xbot bench

clean:
	rm -rf $(VENV) .xbot
