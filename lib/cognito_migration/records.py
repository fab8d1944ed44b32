"""The audit record of a run: masking of personal data, step results, and run.json.

A run lives in ``outputs/<env>/<run-id>/``: the executed notebooks, their HTML copies, the step results
(JSON, Parquet, PNG) and ``run.json``. Everything written here is pseudonymous unless the operator turned
masking off, because executed notebooks get shared and archived: usernames, emails and phone numbers become
keyed tokens (HMAC-SHA256 under the environment's key, kept in ``outputs/<env>/.mask-key``, outside every run
folder), names are left out. Everything written here is also readable by its owner only (folders 0700, files
0600): even masked, a run tells another local user how many users there are and their email domains.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

PII_COLUMNS = ("email", "phone_number", "name", "given_name", "family_name", "preferred_username", "username")
# Never in a masked record, not even as a token: a reader of the audit needs to tell users apart (the username's
# token does that) and where mail goes (the email's domain), never what anybody is called or where they live.
NAME_COLUMNS = ("name", "given_name", "family_name", "middle_name", "nickname", "preferred_username", "address",
                "birthdate", "picture", "profile", "website", "identities")  # fmt: skip
KEY_FILE = ".mask-key"
TOKEN_PREFIX = "p-"  # a pseudonym never reads as a number or a YAML comment in cutover_accept_unimported
TOKEN_HEX = 12  # 48 bits: a million users share a token with a chance of about 1 in 500
WITHHELD = "***"
_EMAIL = re.compile(r"^[^@]*@(.+)$")


class MaskKeyError(RuntimeError):
    """The environment's masking key is unreadable or readable by others; the message says how to fix it."""


def mask_text(value: str, key: bytes) -> str:
    """A pseudonym for ``value`` under the environment's ``key`` (HMAC-SHA256): the same value gets the same
    token in every run of the environment, and without the key no list of guesses can be checked against it."""
    if not value:
        return value
    return TOKEN_PREFIX + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:TOKEN_HEX]


def mask_email(value: str, key: bytes) -> str:
    """'jane.doe@example.com' -> 'p-<token>@example.com': the domain stays (it tells where mail goes), the
    mailbox becomes the token of the whole address, so two users sharing an address still show it."""
    match = _EMAIL.match(value or "")
    return f"{mask_text(value, key)}@{match.group(1)}" if match else mask_text(value, key)


@dataclass(frozen=True)
class Masker:
    """How personal data appears in this environment's records: pseudonyms under its key, names withheld;
    ``key=None`` shows everything as it is (mask_pii: false)."""

    key: bytes | None

    @property
    def enabled(self) -> bool:
        return self.key is not None

    def text(self, value: str) -> str:
        """A username (or any identifier) as the records name it; the cutover accepts users by this."""
        return mask_text(value, self.key) if self.key is not None else value

    def value(self, column: str, value: Any) -> Any:
        if self.key is None or not isinstance(value, str) or not value:
            return value
        if column in NAME_COLUMNS:
            return WITHHELD
        if column == "email":
            return mask_email(value, self.key)
        return mask_text(value, self.key)

    def frame(self, frame: pd.DataFrame, columns: Iterable[str] = PII_COLUMNS) -> pd.DataFrame:
        """A copy of ``frame`` with names dropped and the other personal ``columns`` pseudonymous."""
        if self.key is None:
            return frame.copy()
        masked = frame.drop(columns=[c for c in NAME_COLUMNS if c in frame.columns])
        for column in columns:
            if column in masked.columns:
                masked[column] = masked[column].map(lambda v, c=column: self.value(c, v))
        return masked


def masker(records_dir: Path, enabled: bool = True) -> Masker:
    """The Masker of the environment whose run folder is ``records_dir``: its key sits beside the run folders
    (``outputs/<env>/.mask-key``), never inside one, so a run can be shared without what unmasks it."""
    return Masker(environment_key(Path(records_dir).parent) if enabled else None)


def environment_key(env_dir: Path) -> bytes:
    """The environment's masking key, created (32 random bytes, a 0600 file) on first use."""
    path = private_dir(env_dir) / KEY_FILE
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    if path.stat().st_mode & 0o077:
        raise MaskKeyError(f"{path}: the masking key is readable by others; run `chmod 600 {path}`")
    text = path.read_text(encoding="ascii").strip()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise MaskKeyError(
            f"{path}: not a masking key (64 hex digits); restore it from your backup, or delete it to start "
            "new pseudonyms (earlier runs then no longer compare with later ones)"
        )
    return bytes.fromhex(text)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# A run id is the UTC second the run started: progress reads a run's date back from it.
RUN_ID_FORMAT = "%Y%m%dT%H%M%SZ"


def new_run_id() -> str:
    return datetime.now(UTC).strftime(RUN_ID_FORMAT)


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


def save_frames(run_dir: Path, name: str, frames: Iterable[pd.DataFrame], schema: pa.Schema | None = None) -> Path:
    """``save_frame`` of a table too large for memory, from its batches (callers mask each first): one Parquet
    file written batch by batch, atomically, owner-only. A column without a value in the first batch is text,
    unless ``schema`` gives every column's type (each batch is cast to it)."""
    private_dir(run_dir)
    path = run_dir / f"{name}.parquet"
    tmp = path.with_suffix(".parquet.tmp")
    with private_file(tmp) as handle, contextlib.ExitStack() as open_writer:
        writer: pq.ParquetWriter | None = None
        for frame in frames:
            table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            if writer is None:
                fields = [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
                writer = open_writer.enter_context(pq.ParquetWriter(handle, pa.schema(fields)))
            writer.write_table(table.cast(writer.schema))
        if writer is None:
            pd.DataFrame().to_parquet(handle, index=False)
    tmp.replace(path)
    return path


def copy_file(source: Path, path: Path) -> Path:
    """A finished result (masked already) copied into the run's folder, atomically, owner-only."""
    private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    with open(source, "rb") as original, private_file(tmp) as handle:
        shutil.copyfileobj(original, handle)
    tmp.replace(path)
    return path


def save_figure(figure: Any, path: Path) -> Path:
    """Saves a matplotlib figure as a 0600 PNG in a 0700 folder."""
    private_dir(path.parent)
    with private_file(path) as handle:
        figure.savefig(handle, format="png", dpi=110)
    return path
