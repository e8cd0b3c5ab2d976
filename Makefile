# Two commands for a new user: `make run` (the app with demo data on SQLite) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export CASEREVIEW_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: run test install clean bench

$(BIN)/python:
	$(shell command -v $(PYTHON) || command -v python3) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/casereview init
	$(BIN)/casereview seed-demo
	$(BIN)/casereview serve --host 127.0.0.1 --port 5000

test: install
	$(BIN)/python -m pytest -n 2 -q

bench: install
	$(BIN)/python -m bench.completion --json

clean:
	rm -rf $(VENV) instance *.egg-info
