"""A pool's users on disk: a Parquet dataset written shard by shard as ListUsers pages arrive, so a read of any
size keeps bounded memory, and a read that stops part-way resumes with the shards it had finished.

Layout of a snapshot folder (0700; it holds personal data unmasked, and is a working copy, never a record)::

    manifest.json                 pool id, shard prefixes, the Arrow schema's column names, when it started
    shards/<prefix>/part-00000.parquet, part-00001.parquet, ...   bounded batches, in the order read
    shards/<prefix>/done.json     written last, atomically: {"rows": n, "parts": [...]}; a shard without it is
                                  unfinished, and its parts are never read

Every ``sub`` is a UUID, so the prefixes (``0``..``f``, or ``00``..``ff`` for large pools) partition any pool
exactly. Columns and types are fixed before the first page (``user_schema``: the standard columns, then every
attribute of the pool's schema), so parts written hours apart always agree.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from . import records

FORMAT = 1
STANDARD_COLUMNS = (
    "username",
    "status",
    "enabled",
    "created",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "name",
    "sub",
)
_TYPES = {"enabled": pa.bool_(), "created": pa.timestamp("us", tz="UTC"), "legacy_sms_mfa": pa.bool_()}


def prefixes(digits: int) -> tuple[str, ...]:
    """The shard prefixes of ``sub ^= "<prefix>"`` filters: 16 one-digit or 256 two-digit hex prefixes."""
    if digits not in (1, 2):
        raise ValueError(f"shard prefixes have 1 or 2 hex digits, not {digits}")
    return tuple(f"{i:0{digits}x}" for i in range(16**digits))


def user_schema(attribute_names: Sequence[str]) -> pa.Schema:
    """The snapshot's columns: the standard ones, every other attribute of the pool's schema (as ListUsers
    names them: ``custom:tier``), then ``legacy_sms_mfa``. Strings, but for the flag and time columns."""
    names = [*STANDARD_COLUMNS, *(a for a in attribute_names if a not in STANDARD_COLUMNS), "legacy_sms_mfa"]
    return pa.schema([(name, _TYPES.get(name, pa.string())) for name in dict.fromkeys(names)])


def pool_schema(pool: Mapping[str, Any]) -> pa.Schema:
    """``user_schema`` for a DescribeUserPool ``UserPool``."""
    return user_schema([a["Name"] for a in pool.get("SchemaAttributes", [])])


def table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows (``scan.user_row``) as a table of exactly ``schema``; an attribute the schema lacks is an error that
    names it, never a silent drop."""
    unknown = sorted({key for row in rows for key in row} - set(schema.names))
    if unknown:
        raise SnapshotError(f"users carry attributes the pool's schema does not list: {', '.join(unknown)}")
    return pa.Table.from_pylist(list(rows), schema=schema)


class SnapshotError(RuntimeError):
    """A snapshot folder that cannot be read or continued as it is."""


@dataclass(frozen=True)
class Snapshot:
    """A snapshot folder, read through its finished shards only."""

    folder: Path

    @property
    def manifest(self) -> dict[str, Any]:
        path = self.folder / "manifest.json"
        try:
            manifest: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            raise SnapshotError(f"{self.folder} is not a snapshot: it has no manifest.json") from None
        if manifest.get("format") != FORMAT:
            raise SnapshotError(f"{path}: format {manifest.get('format')!r}, this version reads format {FORMAT}")
        return manifest

    @property
    def schema(self) -> pa.Schema:
        return user_schema(self.manifest["attributes"])

    @property
    def prefixes(self) -> tuple[str, ...]:
        return prefixes(int(self.manifest["shard_digits"]))

    def shard_dir(self, prefix: str) -> Path:
        return self.folder / "shards" / prefix

    def done(self, prefix: str) -> dict[str, Any] | None:
        """The shard's done.json, or None while it is unfinished."""
        try:
            done: dict[str, Any] = json.loads((self.shard_dir(prefix) / "done.json").read_text())
        except FileNotFoundError:
            return None
        return done

    def finished(self) -> dict[str, dict[str, Any]]:
        """Every finished shard's done.json, by prefix."""
        return {p: d for p in self.prefixes if (d := self.done(p)) is not None}

    @property
    def complete(self) -> bool:
        return len(self.finished()) == len(self.prefixes)

    @property
    def rows(self) -> int:
        return sum(int(d["rows"]) for d in self.finished().values())

    def files(self) -> list[Path]:
        """The Parquet parts of the finished shards, in prefix order."""
        return [self.shard_dir(p) / part for p, d in self.finished().items() for part in d["parts"]]

    def dataset(self) -> ds.Dataset:
        return ds.dataset([str(f) for f in self.files()], schema=self.schema, format="parquet")

    def batches(self, columns: Sequence[str] | None = None, rows: int = 65_536) -> Iterator[pd.DataFrame]:
        """The users in frames of at most ``rows``, as ``frame`` types them: memory bounded by the batch."""
        for batch in self.dataset().to_batches(columns=list(columns) if columns else None, batch_size=rows):
            yield _pandas(pa.Table.from_batches([batch]))

    def frame(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Every user in memory, one row each: for pools that fit (the demo's, and most)."""
        return _pandas(self.dataset().to_table(columns=list(columns) if columns else None))


def _pandas(arrow: pa.Table) -> pd.DataFrame:
    frame = arrow.to_pandas()
    for column in ("enabled", "legacy_sms_mfa"):
        if column in frame.columns:
            frame[column] = frame[column].fillna(False).astype(bool)
    return frame


def create(folder: Path, pool_id: str, attribute_names: Sequence[str], shard_digits: int, **extra: Any) -> Snapshot:
    """A new, empty snapshot folder (owner-only) with its manifest."""
    records.private_dir(folder)
    manifest = {
        "format": FORMAT,
        "pool_id": pool_id,
        "shard_digits": shard_digits,
        "attributes": list(attribute_names),
        "started": records.now_iso(),
        **extra,
    }
    _write_json(folder / "manifest.json", manifest)
    return Snapshot(folder)


class ShardWriter:
    """One shard's parts, written as batches arrive; ``finish`` seals the shard with its done.json. Opening a
    shard that has parts but no done.json removes them first: an unfinished shard is read again whole."""

    def __init__(self, snapshot: Snapshot, prefix: str, schema: pa.Schema, batch_rows: int = 10_000) -> None:
        self.snapshot, self.prefix, self.schema, self.batch_rows = snapshot, prefix, schema, batch_rows
        self.folder = snapshot.shard_dir(prefix)
        if snapshot.done(prefix) is not None:
            raise SnapshotError(f"shard {prefix} of {snapshot.folder} is already finished")
        records.private_dir(self.folder)
        for stale in self.folder.glob("part-*.parquet*"):
            stale.unlink()
        self.pending: list[Mapping[str, Any]] = []
        self.parts: list[str] = []
        self.rows = 0

    def add(self, row: Mapping[str, Any]) -> None:
        self.pending.append(row)
        if len(self.pending) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        name = f"part-{len(self.parts):05d}.parquet"
        tmp = self.folder / f"{name}.tmp"
        with records.private_file(tmp) as handle:
            pq.write_table(table(self.pending, self.schema), handle)
        tmp.replace(self.folder / name)
        self.parts.append(name)
        self.rows += len(self.pending)
        self.pending = []

    def finish(self) -> dict[str, Any]:
        self.flush()
        done = {"rows": self.rows, "parts": self.parts, "finished": records.now_iso()}
        _write_json(self.folder / "done.json", done)
        return done


def from_frame(
    frame: pd.DataFrame, folder: Path, pool_id: str = "test", shard_digits: int = 1, batch_rows: int = 10_000
) -> Snapshot:
    """A finished snapshot of ``frame`` (rows with a ``sub``, as ``scan.user_row`` gives them), for tests and
    benchmarks that need one without a pool."""
    attributes = [c for c in frame.columns if c not in (*STANDARD_COLUMNS, "legacy_sms_mfa")]
    snap = create(folder, pool_id, attributes, shard_digits)
    schema = snap.schema
    rows = cast(list[dict[str, Any]], frame.astype(object).where(frame.notna(), None).to_dict("records"))
    writers = {p: ShardWriter(snap, p, schema, batch_rows) for p in snap.prefixes}
    for row in rows:
        writers[str(row["sub"])[:shard_digits]].add(row)
    for writer in writers.values():
        writer.finish()
    return snap


def _write_json(path: Path, value: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with records.private_file(tmp) as handle:
        handle.write(json.dumps(value, indent=2, default=str).encode())
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
