"""Where the project's folder is: the one holding the step notebooks (``notebooks/``) and ``params/``.

The library does not assume it was installed from its checkout: a wheel installed anywhere finds the project,
in this order, at

1. ``COGNITO_MIGRATION_ROOT`` (the command line's ``--root`` sets it);
2. the current directory or one of its parents, as git finds a repository;
3. the checkout the library was imported from (``lib/cognito_migration`` in it: ``make``'s install, or
   ``PYTHONPATH=lib``).

``outputs/`` (the records) and ``requirements.lock`` are found beside ``notebooks/``.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "COGNITO_MIGRATION_ROOT"
# A folder is the project when it holds the first step's notebook and a params folder: specific enough that
# an unrelated folder with a notebooks/ of its own is not taken for it.
FIRST_NOTEBOOK = Path("notebooks") / "01_audit_old_pool.ipynb"
PARAMS = "params"


class ProjectNotFound(RuntimeError):
    """No project folder here; the message says where it looked and how to point at one."""


def is_project(folder: Path) -> bool:
    """Whether ``folder`` holds the runbook's notebooks and parameters."""
    return (folder / FIRST_NOTEBOOK).is_file() and (folder / PARAMS).is_dir()


def find(start: Path | None = None) -> Path | None:
    """The project's folder, or None when none is found; ``start`` is where the upward search begins (default:
    the current directory). A ``COGNITO_MIGRATION_ROOT`` that names no project raises: it was asked for."""
    named = os.environ.get(ENV_VAR)
    if named:
        folder = Path(named).expanduser().resolve()
        if not is_project(folder):
            raise ProjectNotFound(
                f"{ENV_VAR}={named}: {folder} holds no {FIRST_NOTEBOOK} and {PARAMS}/; point it at the runbook's "
                "folder (the one with notebooks/ and params/), or unset it"
            )
        return folder
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if is_project(folder):
            return folder
    checkout = Path(__file__).resolve().parents[2]  # <checkout>/lib/cognito_migration/project.py
    return checkout if is_project(checkout) else None


def root(start: Path | None = None) -> Path:
    """The project's folder; raises ProjectNotFound, naming the fix, when there is none."""
    found = find(start)
    if found is None:
        here = (start or Path.cwd()).resolve()
        raise ProjectNotFound(
            f"no runbook project in {here} or its parents (a folder holding {FIRST_NOTEBOOK} and {PARAMS}/): "
            f"run from the project's folder, pass --root DIR, or set {ENV_VAR}=DIR"
        )
    return found
