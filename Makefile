# Two commands for a new user: `make run` (the app with demo data on SQLite) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export CASEREVIEW_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

VENDOR := web/static/vendor

.PHONY: run test install assets clean bench

$(BIN)/python:
	$(shell command -v $(PYTHON) || command -v python3) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Front-end packages come from npm (pinned in package-lock.json) and are copied, never committed.
$(VENDOR)/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/govuk $(VENDOR)/moj $(VENDOR)/bpmn-js $(VENDOR)/dmn-js $(VENDOR)/chart.js $(VENDOR)/axe-core
	cp -r node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.css node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.js node_modules/govuk-frontend/dist/govuk/assets $(VENDOR)/govuk/
	cp node_modules/@ministryofjustice/frontend/moj/moj-frontend.min.css $(VENDOR)/moj/
	cp node_modules/@ministryofjustice/frontend/moj/all.bundle.mjs $(VENDOR)/moj/moj-frontend.js
	cp -r node_modules/@ministryofjustice/frontend/moj/assets $(VENDOR)/moj/
	cp node_modules/bpmn-js/dist/bpmn-navigated-viewer.production.min.js node_modules/bpmn-js/dist/bpmn-modeler.production.min.js $(VENDOR)/bpmn-js/
	cp -r node_modules/bpmn-js/dist/assets $(VENDOR)/bpmn-js/
	cp node_modules/dmn-js/dist/dmn-modeler.production.min.js $(VENDOR)/dmn-js/
	cp -r node_modules/dmn-js/dist/assets $(VENDOR)/dmn-js/
	cp node_modules/chart.js/dist/chart.umd.min.js $(VENDOR)/chart.js/
	cp node_modules/axe-core/axe.min.js $(VENDOR)/axe-core/
	touch $@

assets: $(VENDOR)/.installed

install: $(VENV)/.installed assets

run: install
	$(BIN)/casereview init
	$(BIN)/casereview seed-demo
	$(BIN)/casereview serve --host 127.0.0.1 --port 5000

test: install
	$(BIN)/python -m pytest -n 2 -q

bench: install
	$(BIN)/python -m bench.completion --json

clean:
	rm -rf $(VENV) instance *.egg-info node_modules $(VENDOR)
