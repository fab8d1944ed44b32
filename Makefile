# Two commands do all the set-up on a fresh machine (Python 3.11+ with venv):
#   make demo   runs the whole runbook on the local AWS
#   make test   runs the tests
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: demo verify test lint serve clean

$(VENV)/.runtime: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

demo: $(VENV)/.runtime  ## the whole runbook on the local AWS: records in outputs/local/<run-id>/
	$(PY) -m cognito_migration run --env local $(ARGS)

verify: $(VENV)/.runtime  ## prove outputs/local's records: every file and every link as sealed
	$(PY) -m cognito_migration verify --env local $(ARGS)

serve: $(VENV)/.runtime  ## the local AWS alone, on port 5000, until Ctrl-C
	$(PY) -m cognito_migration.local serve --port 5000 $(ARGS)

test: $(VENV)/.dev  ## lint, then every test, the end-to-end runbook included
	$(PY) -m ruff check lib tests
	$(PY) -m pytest $(ARGS)

lint: $(VENV)/.dev
	$(PY) -m ruff check lib tests benchmarks

clean:
	rm -rf $(VENV) build lib/*.egg-info
