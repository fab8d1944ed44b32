"""The audit record of a run: masking of personal data, step results, and run.json.

A run lives in ``outputs/<env>/<run-id>/``: the executed notebooks, their HTML copies, the step results
(JSON, Parquet, PNG) and ``run.json``. Everything written here is masked unless the operator turned
masking off, because executed notebooks get shared and archived.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
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


def save_json(run_dir: Path, name: str, data: Any) -> Path:
    """Writes a step result atomically (never a half-written file)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    tmp.replace(path)
    return path


def load_json(run_dir: Path, name: str) -> Any:
    return json.loads((run_dir / f"{name}.json").read_text())


def save_frame(run_dir: Path, name: str, frame: pd.DataFrame) -> Path:
    """Writes a table as Parquet atomically; callers mask personal data first."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / f"{name}.parquet"
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path
