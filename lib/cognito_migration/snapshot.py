"""A pool's users on disk: a Parquet dataset written shard by shard as ListUsers pages arrive, so a read of any
size keeps bounded memory, and a read that stops part-way resumes with the shards it had finished.

Layout of a snapshot folder (0700; it holds personal data unmasked, and is a working copy, never a record)::

    manifest.json                 pool id, shard digits, the pool's attribute names, when it started, the
                                  groups whose memberships it holds (or null), each resume
    shards/<prefix>/part-00000.parquet, part-00001.parquet, ...   bounded batches, in the order read
    shards/<prefix>/done.json     written last, atomically: {"rows": n, "parts": [...], "seconds": ...}; a
                                  shard without it is unfinished, and its parts are never read
    memberships/<key>/part-*.parquet, done.json    one group's (group, username) rows, sealed the same way;
                                  <key> is a digest of the group's name (any character may be in a name)

Every ``sub`` is a UUID, so the prefixes (``0``..``f``, or ``00``..``ff`` for large pools) partition any pool
exactly; a pool small enough for one paginator has the one shard ``all`` (prefix ``""``, no filter). Columns
and types are fixed before the first page (``user_schema``: the standard columns, then every attribute of the
pool's schema), so parts written hours apart always agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
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
# Every pool has Cognito's standard attributes, whatever its DescribeUserPool lists (moto lists only a declared
# Schema's), and ListUsers shows a federated user's `identities`: a read's columns include them all.
STANDARD_ATTRIBUTES = (
    "address birthdate email email_verified family_name gender given_name locale middle_name name nickname "
    "phone_number phone_number_verified picture preferred_username profile updated_at website zoneinfo"
).split()
ALWAYS_LISTED = (*STANDARD_ATTRIBUTES, "identities")
_TYPES = {"enabled": pa.bool_(), "created": pa.timestamp("us", tz="UTC"), "legacy_sms_mfa": pa.bool_()}
MEMBERSHIP_SCHEMA = pa.schema([("group", pa.string()), ("username", pa.string())])
BATCH_ROWS = 10_000  # rows per Parquet part
CONVERT_ROWS = 120  # rows kept as Python dicts before they become an Arrow batch (two ListUsers pages)
WHOLE_POOL = "all"  # the folder of the one shard of an unsharded read (prefix "")


def prefixes(digits: int) -> tuple[str, ...]:
    """The shard prefixes of ``sub ^= "<prefix>"`` filters: 16 one-digit or 256 two-digit hex prefixes, or
    the one prefix "" (no filter: one paginator over the pool) for 0 digits."""
    if digits not in (0, 1, 2):
        raise ValueError(f"shard prefixes have 0, 1 or 2 hex digits, not {digits}")
    return tuple(f"{i:0{digits}x}" for i in range(16**digits)) if digits else ("",)


def user_schema(attribute_names: Sequence[str]) -> pa.Schema:
    """The snapshot's columns: the standard ones, every other attribute of the pool's schema (as ListUsers
    names them: ``custom:tier``), then ``legacy_sms_mfa``. Strings, but for the flag and time columns."""
    names = [*STANDARD_COLUMNS, *(a for a in attribute_names if a not in STANDARD_COLUMNS), "legacy_sms_mfa"]
    return pa.schema([(name, _TYPES.get(name, pa.string())) for name in dict.fromkeys(names)])


def pool_attributes(pool: Mapping[str, Any]) -> list[str]:
    """The attribute names a DescribeUserPool ``UserPool`` lets ListUsers show: its schema, every standard
    attribute, ``identities``, and each developer-only attribute also as ``dev:<name>`` (whichever way AWS
    spells it, the column exists)."""
    names = [a["Name"] for a in pool.get("SchemaAttributes", [])]
    developer_only = [
        f"dev:{a['Name']}"
        for a in pool.get("SchemaAttributes", [])
        if a.get("DeveloperOnlyAttribute") and not a["Name"].startswith("dev:")
    ]
    return list(dict.fromkeys([*names, *ALWAYS_LISTED, *developer_only]))


def table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows (``scan.user_row``) as a table of exactly ``schema``; an attribute the schema lacks is an error that
    names it, never a silent drop."""
    unknown = sorted({key for row in rows for key in row} - set(schema.names))
    if unknown:
        raise SnapshotError(f"users carry attributes the pool's schema does not list: {', '.join(unknown)}")
    return pa.Table.from_pylist(list(rows), schema=schema)


class SnapshotError(RuntimeError):
    """A snapshot folder that cannot be read or continued as it is."""


def group_key(group: str) -> str:
    """The folder of a group's memberships: a digest, since a group's name may hold '/' or '..'."""
    return hashlib.sha256(group.encode()).hexdigest()[:16]


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
            if not self.folder.exists():  # released: a step deletes its reads once its records are saved
                raise SnapshotError(
                    f"the read {self.folder.name} was deleted with the other working copies when this step's "
                    "records were saved: run the step again from the top, which reads the pool again"
                ) from None
            raise SnapshotError(f"{self.folder} is not a snapshot: it has no manifest.json") from None
        except ValueError as exc:
            raise SnapshotError(f"{path}: not JSON ({exc})") from None
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
        return self.folder / "shards" / (prefix or WHOLE_POOL)

    def done(self, prefix: str) -> dict[str, Any] | None:
        """The shard's done.json, or None while it is unfinished."""
        return _done(self.shard_dir(prefix))

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
        """The users in frames of at most ``rows``, as ``frame`` types them: memory bounded by the batch. Read part
        by part: a dataset's scanner reads ahead of a slow consumer without bound, whatever its readahead
        settings (750 MB more at 3 million users)."""
        for path in self.files():
            for batch in pq.ParquetFile(path).iter_batches(rows, columns=list(columns) if columns else None):
                yield as_frame(pa.Table.from_batches([batch]))

    def present_columns(self) -> list[str]:
        """The schema's columns but the attributes no user has (the standard columns and the flags always)."""
        seen: set[str] = set()
        for done in self.finished().values():
            if "columns" not in done:
                return list(self.schema.names)
            seen.update(done["columns"])
        always = {*STANDARD_COLUMNS, "legacy_sms_mfa"}
        return [name for name in self.schema.names if name in always or name in seen]

    def frame(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Every user in memory, one row each: for pools that fit (the demo's, and most). Without ``columns``,
        the columns of ``present_columns``, as an in-memory read of the pool always gave them."""
        return as_frame(self.dataset().to_table(columns=list(columns or self.present_columns())))

    # --- memberships -----------------------------------------------------------------------------------

    @property
    def groups(self) -> list[str] | None:
        """The groups whose memberships this snapshot reads, or None when it reads none."""
        groups = self.manifest.get("groups")
        return None if groups is None else list(groups)

    def group_dir(self, group: str) -> Path:
        return self.folder / "memberships" / group_key(group)

    def groups_finished(self) -> dict[str, dict[str, Any]]:
        """Every finished group's done.json, by group name."""
        return {g: d for g in self.groups or [] if (d := _done(self.group_dir(g))) is not None}

    @property
    def memberships_complete(self) -> bool:
        return len(self.groups_finished()) == len(self.groups or [])

    @property
    def finished_reading(self) -> bool:
        """Every shard and every group read: nothing left to resume."""
        return self.complete and self.memberships_complete

    def membership_files(self) -> list[Path]:
        return [self.group_dir(g) / part for g, d in self.groups_finished().items() for part in d["parts"]]

    def memberships_dataset(self) -> ds.Dataset:
        return ds.dataset([str(f) for f in self.membership_files()], schema=MEMBERSHIP_SCHEMA, format="parquet")

    def memberships(self) -> pd.DataFrame:
        """(group, username) for every member of every finished group, in memory."""
        return self.memberships_dataset().to_table().to_pandas()

    # --- what the read did -----------------------------------------------------------------------------

    def completeness(self) -> dict[str, Any]:
        """Every shard drained, the total, and the difference from the pool's estimate, explained."""
        finished = self.finished()
        estimated = self.manifest.get("estimated")
        total = sum(int(d["rows"]) for d in finished.values())
        difference = None if estimated is None else total - int(estimated)
        return {
            "shards_drained": len(finished),
            "shards": len(self.prefixes),
            "users": total,
            "per_shard": [int(d["rows"]) for d in finished.values()],
            "estimated": estimated,
            "difference": difference,
            "explanation": "matches the estimate"
            if not difference
            else "EstimatedNumberOfUsers is approximate and users may be created or deleted during the scan",
        }

    def summary(self) -> dict[str, Any]:
        """What a step's record says of this read: counts, times and every resume (no user in it)."""
        manifest, finished, groups = self.manifest, self.finished(), self.groups_finished()
        return {
            "pool_id": manifest["pool_id"],
            "snapshot": self.folder.name,
            "started": manifest["started"],
            "shards": len(self.prefixes),
            "shards_read": len(finished),
            "users": sum(int(d["rows"]) for d in finished.values()),
            "duplicates_dropped": sum(int(d.get("duplicates", 0)) for d in finished.values()),
            "shard_seconds": round(sum(float(d.get("seconds", 0)) for d in finished.values()), 1),
            "groups": None if manifest.get("groups") is None else len(manifest["groups"]),
            "memberships": None if manifest.get("groups") is None else sum(int(d["rows"]) for d in groups.values()),
            "estimated": manifest.get("estimated"),
            "resumed": list(manifest.get("resumed", [])),
        }

    def update_manifest(self, **changes: Any) -> None:
        """Rewrites the manifest with ``changes`` (atomically): a resume records itself this way."""
        _write_json(self.folder / "manifest.json", {**self.manifest, **changes})


def _done(folder: Path) -> dict[str, Any] | None:
    try:
        done: dict[str, Any] = json.loads((folder / "done.json").read_text())
    except FileNotFoundError:
        return None
    return done


def as_frame(arrow: pa.Table) -> pd.DataFrame:
    """Users read from Parquet as ``Snapshot.frame`` types them (the flags False where unset)."""
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


class PartWriter:
    """One folder's Parquet parts, written as rows arrive: at most CONVERT_ROWS rows as dicts, the rest as
    Arrow batches until ``batch_rows`` make a part. ``finish`` seals the folder with its done.json. Opening a
    folder that has parts but no done.json removes them first: an unfinished folder is read again whole.
    With ``unique``, a row repeating an earlier row's value of that column (a user ListUsers listed twice
    while the pool changed) is counted and dropped."""

    def __init__(self, folder: Path, schema: pa.Schema, batch_rows: int = BATCH_ROWS, unique: str | None = None):
        if _done(folder) is not None:
            raise SnapshotError(f"{folder} is already finished")
        self.folder, self.schema, self.batch_rows, self.unique = folder, schema, batch_rows, unique
        records.private_dir(folder)
        for stale in self.folder.glob("part-*.parquet*"):
            stale.unlink()
        self.pending: list[Mapping[str, Any]] = []
        self.batches: list[pa.RecordBatch] = []
        self.parts: list[str] = []
        self.rows = 0
        self.duplicates = 0
        self.columns: set[str] = set()  # columns holding a value in some row
        self._seen: set[Any] = set()
        self._started = time.monotonic()

    def add(self, row: Mapping[str, Any]) -> None:
        if self.unique is not None:
            key = row[self.unique]
            if key in self._seen:
                self.duplicates += 1
                return
            self._seen.add(key)
        self.pending.append(row)
        if len(self.pending) >= min(CONVERT_ROWS, self.batch_rows):
            self._convert()

    def _convert(self) -> None:
        if not self.pending:
            return
        for batch in table(self.pending, self.schema).to_batches():
            self.batches.append(batch)
            named = zip(batch.schema.names, batch.columns, strict=True)
            self.columns.update(name for name, column in named if column.null_count < len(column))
        self.pending = []
        if sum(b.num_rows for b in self.batches) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        """Writes what is held as the next part."""
        self._convert()
        if not self.batches:
            return
        name = f"part-{len(self.parts):05d}.parquet"
        tmp = self.folder / f"{name}.tmp"
        arrow = pa.Table.from_batches(self.batches, schema=self.schema).combine_chunks()
        with records.private_file(tmp) as handle:
            pq.write_table(arrow, handle)
        tmp.replace(self.folder / name)
        self.parts.append(name)
        self.rows += arrow.num_rows
        self.batches = []

    def finish(self, **facts: Any) -> dict[str, Any]:
        self.flush()
        done = {
            "rows": self.rows,
            "parts": self.parts,
            "finished": records.now_iso(),
            "seconds": round(time.monotonic() - self._started, 3),
            "duplicates": self.duplicates,
            "columns": sorted(self.columns),
            **facts,
        }
        _write_json(self.folder / "done.json", done)
        return done


class ShardWriter(PartWriter):
    """One shard's parts (``PartWriter``) in its snapshot."""

    def __init__(
        self,
        snapshot: Snapshot,
        prefix: str,
        schema: pa.Schema,
        batch_rows: int = BATCH_ROWS,
        unique: str | None = None,
    ) -> None:
        if snapshot.done(prefix) is not None:
            raise SnapshotError(f"shard {prefix or WHOLE_POOL} of {snapshot.folder} is already finished")
        self.snapshot, self.prefix = snapshot, prefix
        super().__init__(snapshot.shard_dir(prefix), schema, batch_rows, unique)


class MembershipWriter(PartWriter):
    """One group's (group, username) rows in its snapshot; a member listed twice is kept once."""

    def __init__(self, snapshot: Snapshot, group: str, batch_rows: int = BATCH_ROWS) -> None:
        self.snapshot, self.group = snapshot, group
        super().__init__(snapshot.group_dir(group), MEMBERSHIP_SCHEMA, batch_rows, unique="username")

    def finish(self, **facts: Any) -> dict[str, Any]:
        return super().finish(group=self.group, **facts)


def from_frame(
    frame: pd.DataFrame, folder: Path, pool_id: str = "test", shard_digits: int = 1, batch_rows: int = BATCH_ROWS
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
