# Two commands do all the set-up on a fresh machine (Python 3.11+ with venv):
#   make demo   runs the whole runbook on the local AWS
#   make test   runs the tests
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: demo verify test lint lock serve lab docs clean

# jupyter/overrides.json: JupyterLab's defaults for this venv. It saves widget state with the notebook
# (Settings > Save Widget State Automatically), so a reopened record shows its widgets; your own
# settings still win.
#
# The locks (requirements.lock, requirements-dev.lock: every package of the tree, pinned, with hashes) are what
# gets installed, hash-checked; the library itself goes in after them, editable, with nothing resolved afresh.
# A changed lock reinstalls. After changing requirements*.txt, `make lock` recompiles the locks.
$(VENV)/.runtime: requirements.lock pyproject.toml jupyter/overrides.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	install -D -m 644 jupyter/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.lock
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
	touch $@

demo: $(VENV)/.runtime  ## the whole runbook on the local AWS: records in outputs/local/<run-id>/
	$(PY) -m cognito_migration run --env local $(ARGS)

verify: $(VENV)/.runtime  ## prove outputs/local's records: every file and every link as sealed
	$(PY) -m cognito_migration verify --env local $(ARGS)

serve: $(VENV)/.runtime  ## the local AWS alone, on port 5000, until Ctrl-C
	$(PY) -m cognito_migration.local serve --port 5000 $(ARGS)

lab: $(VENV)/.runtime  ## JupyterLab on the notebooks (start `make serve` and export what it prints first)
	$(VENV)/bin/jupyter lab notebooks/ $(ARGS)

# docs/parameters.md and docs/findings.md are written from the code (Params, the findings catalogue); a test fails
# while they differ from it.
docs: $(VENV)/.runtime  ## after changing a parameter or a finding: rewrite the generated reference pages
	$(PY) -m cognito_migration.docs_pages

# Notebooks are linted but not format-checked: their cells are written with single quotes, which ruff format
# would rewrite in most of them. mypy reads what to check, and how strictly, from pyproject.toml ([tool.mypy]:
# lib/, against boto3's stubs).
test: $(VENV)/.dev  ## lint, then every test, the end-to-end runbook included
	$(PY) -m ruff check lib tests notebooks
	$(PY) -m ruff format --check lib tests
	$(PY) -m mypy
	$(PY) -m pytest $(ARGS)

lint: $(VENV)/.dev
	$(PY) -m ruff check lib tests benchmarks
	$(PY) -m mypy

# The lock's tool is uv, pinned in requirements-dev.txt (`make test` installs it from the lock). Universal locks
# (every platform, Python 3.11 and newer); the dev lock takes the runtime lock as constraints, so `make test`
# tests the very packages `make demo` runs. An existing lock is kept where it still fits: pass
# ARGS="--upgrade" (or "--upgrade-package NAME") to move pins that requirements*.txt leave free.
UV := $(VENV)/bin/uv
LOCK_FLAGS := --quiet --generate-hashes --universal --python-version 3.11 --no-emit-package cognito-migration
lock:  ## after changing requirements*.txt: recompile requirements.lock and requirements-dev.lock (reads PyPI)
	test -x $(UV) || { test -x $(PY) || $(PYTHON) -m venv $(VENV); $(PY) -m pip install --quiet "$$(grep '^uv==' requirements-dev.txt)"; }
	$(UV) pip compile requirements.txt $(LOCK_FLAGS) $(ARGS) -o requirements.lock
	$(UV) pip compile requirements-dev.txt -c requirements.lock $(LOCK_FLAGS) $(ARGS) -o requirements-dev.lock

clean:
	rm -rf $(VENV) build lib/*.egg-info
