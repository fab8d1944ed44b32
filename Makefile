# Two commands do all the set-up on a fresh machine (Python 3.11+ with venv):
#   make demo   runs the whole runbook on the local AWS
#   make test   runs the tests
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: demo test lint serve lab clean

# jupyter/overrides.json: JupyterLab's defaults for this venv. It saves widget state with the notebook
# (Settings > Save Widget State Automatically), so a reopened record shows its widgets; your own
# settings still win.
$(VENV)/.runtime: requirements.txt pyproject.toml jupyter/overrides.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	install -D -m 644 jupyter/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

demo: $(VENV)/.runtime  ## the whole runbook on the local AWS: records in outputs/local/<run-id>/
	$(PY) -m cognito_migration run --env local $(ARGS)

serve: $(VENV)/.runtime  ## the local AWS alone, on port 5000, until Ctrl-C
	$(PY) -m cognito_migration.local serve --port 5000 $(ARGS)

lab: $(VENV)/.runtime  ## JupyterLab on the notebooks (start `make serve` and export what it prints first)
	$(VENV)/bin/jupyter lab notebooks/ $(ARGS)

# Notebooks are linted but not format-checked: their cells are written with single quotes, which ruff format
# would rewrite in most of them.
test: $(VENV)/.dev  ## lint, then every test, the end-to-end runbook included
	$(PY) -m ruff check lib tests notebooks
	$(PY) -m ruff format --check lib tests
	$(PY) -m pytest $(ARGS)

lint: $(VENV)/.dev
	$(PY) -m ruff check lib tests benchmarks

clean:
	rm -rf $(VENV) build lib/*.egg-info
