"""The audit record of a run: masking of personal data, step results, and run.json.

A run lives in ``outputs/<env>/<run-id>/``: the executed notebooks, their HTML copies, the step results
(JSON, Parquet, PNG) and ``run.json``. Everything written here is masked unless the operator turned
masking off, because executed notebooks get shared and archived. Everything written here is also readable by
its owner only (folders 0700, files 0600): even masked, a run tells another local user who the users are.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

PII_COLUMNS = ("email", "phone_number", "name", "given_name", "family_name", "preferred_username", "username")
_EMAIL = re.compile(r"^([^@]?)[^@]*@(.+)$")


def mask_email(value: str) -> str:
    """'jane.doe@example.com' -> 'j***@example.com': the domain stays, it tells where mail goes."""
    match = _EMAIL.match(value or "")
    return f"{match.group(1)}***@{match.group(2)}" if match else mask_text(value)


def mask_phone(value: str) -> str:
    """'+15551234567' -> '+1*******67'."""
    if not value or len(value) < 5:
        return "***" if value else value
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def mask_text(value: str) -> str:
    """Names and usernames keep their first letter and a short stable hash, so rows stay distinguishable."""
    if not value:
        return value
    return f"{value[0]}***{hashlib.sha256(value.encode()).hexdigest()[:6]}"


def mask_value(column: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if column == "email":
        return mask_email(value)
    if column == "phone_number":
        return mask_phone(value)
    return mask_text(value)


def mask_frame(frame: pd.DataFrame, enabled: bool = True, columns: Iterable[str] = PII_COLUMNS) -> pd.DataFrame:
    """A copy of ``frame`` with personal data masked in the named columns (when ``enabled``)."""
    if not enabled:
        return frame.copy()
    masked = frame.copy()
    for column in columns:
        if column in masked.columns:
            masked[column] = masked[column].map(lambda v, c=column: mask_value(c, v))
    return masked


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


OWNER_ONLY_UMASK = 0o077
DIR_MODE, FILE_MODE = 0o700, 0o600


@contextlib.contextmanager
def owner_only() -> Iterator[None]:
    """Within this block the process (and every process it starts, such as a notebook's kernel, which inherits
    the umask) creates files 0600 and folders 0700; the previous umask comes back afterwards."""
    previous = os.umask(OWNER_ONLY_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def private_dir(folder: Path) -> Path:
    """Creates ``folder`` (and missing parents) readable by the owner only, and makes ``folder`` itself 0700
    if it already existed: a notebook run by hand has no runner to set the umask for it."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for path in reversed(missing):
        path.mkdir(mode=DIR_MODE, exist_ok=True)
    os.chmod(folder, DIR_MODE)
    return folder


@contextlib.contextmanager
def private_file(path: Path, mode: str = "wb", encoding: str | None = None) -> Iterator[Any]:
    """Opens ``path`` for writing as a 0600 file, whatever the umask and whether or not it existed."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(descriptor, FILE_MODE)  # O_CREAT's mode is ignored for a file left over by an earlier run
    with os.fdopen(descriptor, mode, encoding=encoding) as handle:
        yield handle


def write_text(path: Path, text: str) -> Path:
    """Writes ``text`` to a 0600 file in a 0700 folder."""
    private_dir(path.parent)
    with private_file(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def save_json(run_dir: Path, name: str, data: Any) -> Path:
    """Writes a step result atomically (never a half-written file), owner-only."""
    path = run_dir / f"{name}.json"
    tmp = write_text(path.with_suffix(".json.tmp"), json.dumps(data, indent=2, sort_keys=True, default=str))
    tmp.replace(path)
    return path


def load_json(run_dir: Path, name: str) -> Any:
    return json.loads((run_dir / f"{name}.json").read_text())


def save_frame(run_dir: Path, name: str, frame: pd.DataFrame) -> Path:
    """Writes a table as Parquet atomically, owner-only; callers mask personal data first."""
    private_dir(run_dir)
    path = run_dir / f"{name}.parquet"
    tmp = path.with_suffix(".parquet.tmp")
    with private_file(tmp) as handle:
        frame.to_parquet(handle, index=False)
    tmp.replace(path)
    return path


def save_figure(figure: Any, path: Path) -> Path:
    """Saves a matplotlib figure as a 0600 PNG in a 0700 folder."""
    private_dir(path.parent)
    with private_file(path) as handle:
        figure.savefig(handle, format="png", dpi=110)
    return path
