"""Users who share a value, in pools too large for memory: case collisions and alias conflicts out of core.

A cross-user detector (``user_findings.collision_finding``, ``alias_conflict_finding``) is right over any frame
that holds, with each user, every other user sharing the value it compares. So the users pass once, batch by
batch, into a spill (one Parquet file in a private work folder): each user's position, username, the compared
columns, and one key per compared column, computed by the detector's own key function. DuckDB, memory-limited
and spilling to the same folder, then streams the users whose key some other user holds too, in key order, and
the detector runs on chunks of whole groups. It orders its groups by key, so its findings over the chunks,
merged in chunk order (``findings.merge``), are the ones it gives over the whole pool.

Every group goes to a Parquet record, masked as the detector lists it; the finding itself lists the first
``listed``, so neither memory nor findings.json grows with a pool that collides everywhere.
"""

from __future__ import annotations

import shutil
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import findings, records
from .findings import Finding
from .user_findings import text

RECORD = "collision_groups.parquet"  # every colliding group, as the collisions table shows it
RECORD_SCHEMA = pa.schema([("finding", pa.string()), ("users", pa.int64()), ("who", pa.string())])


@dataclass(frozen=True)
class Shared:
    """A cross-user detector and what it compares: ``detect`` finds the users sharing a value of one of
    ``columns``, compared by ``key`` (values of a column -> the keys it compares), in any frame holding every
    user who shares one; ``detail`` is the merged finding's detail, given how many groups it has in all."""

    columns: tuple[str, ...]
    key: Callable[[pd.Series, str], pd.Series]
    detect: Callable[[pd.DataFrame], Finding | None]
    detail: Callable[[Finding, int], str]


@dataclass(frozen=True)
class Limits:
    """How the shared values are found: users per detector run (whole groups: more when a group is larger),
    groups listed in a finding, and DuckDB's memory and threads."""

    chunk_rows: int = 50_000
    listed: int = 1_000
    memory: str = "512MB"
    threads: int = 2


@dataclass(frozen=True)
class GroupsRecord:
    """Every colliding group, masked, in a private folder of its own, removed with this object (or at exit);
    ``groups``: how many each finding has, of which it lists the first ``listed``."""

    path: Path
    groups: dict[str, int]
    listed: int

    def __post_init__(self) -> None:
        weakref.finalize(self, shutil.rmtree, self.path.parent, True)

    @property
    def truncated(self) -> dict[str, int]:
        """The findings listing only some of their groups, with how many they have."""
        return {kind_id: n for kind_id, n in self.groups.items() if n > self.listed}


class Spill:
    """The users as the shared-value detectors compare them, written batch by batch (personal data,
    unmasked: the folder is private and the caller removes it)."""

    def __init__(self, folder: Path, shared: Sequence[Shared]) -> None:
        self.path = records.private_dir(folder) / "spill.parquet"
        # One stream per (detector, column), its keys in the spill's column key_<position in streams>.
        self.streams = [(s, column) for s in shared for column in s.columns]
        compared = {column for _, column in self.streams}
        self.columns = list(dict.fromkeys(["username", *sorted(compared), *sorted(f"{c}_verified" for c in compared)]))
        fields = [("ordinal", pa.int64()), *((c, pa.string()) for c in self.columns)]
        fields += [(f"key_{i}", pa.string()) for i in range(len(self.streams))]
        fields += [(f"hash_{i}", pa.int64()) for i in range(len(self.streams))]
        self.schema = pa.schema(fields)
        self.writer = pq.ParquetWriter(self.path, self.schema)
        self.rows = 0

    def add(self, users: pd.DataFrame) -> None:
        """The next batch, in the pool's order."""
        columns: dict[str, Any] = {"ordinal": np.arange(self.rows, self.rows + len(users), dtype=np.int64)}
        for column in self.columns:
            columns[column] = text(users, column).to_numpy(dtype=object)
        for i, (shared, column) in enumerate(self.streams):
            values = text(users, column)
            held = (values != "").to_numpy(dtype=bool)
            keys = np.full(len(users), None, dtype=object)
            keys[held] = shared.key(values[held], column).to_numpy(dtype=object)
            columns[f"key_{i}"] = keys
            hashes = np.zeros(len(users), dtype=np.int64)
            hashes[held] = pd.util.hash_array(keys[held]).view(np.int64)
            columns[f"hash_{i}"] = pa.array(hashes, mask=~held)
        self.writer.write_table(pa.table(columns, schema=self.schema))
        self.rows += len(users)

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def find(spill: Spill, shared: Sequence[Shared], record: Path, limits: Limits) -> tuple[list[Finding], GroupsRecord]:
    """Each detector's finding over the spilled users (those it makes, in ``shared``'s order), and the record of
    every group, written to ``record`` (a file in a private folder of its own, which goes with the record)."""
    found: list[Finding] = []
    groups: dict[str, int] = {}
    connection = duckdb.connect()
    try:
        for setting in (
            f"SET memory_limit = '{limits.memory}'",
            f"SET threads = {int(limits.threads)}",
            "SET temp_directory = " + _literal(str(records.private_dir(spill.path.parent / "duckdb"))),
        ):
            connection.execute(setting)
        with records.private_file(record) as handle, pq.ParquetWriter(handle, RECORD_SCHEMA) as writer:
            for detector in shared:
                finding, n_groups = _run(connection, spill, detector, writer, limits)
                if finding is not None:
                    found.append(finding)
                    groups[finding.id] = n_groups
    finally:
        connection.close()
    return found, GroupsRecord(record, groups, limits.listed)


def _run(
    connection: duckdb.DuckDBPyConnection, spill: Spill, detector: Shared, writer: pq.ParquetWriter, limits: Limits
) -> tuple[Finding | None, int]:
    parts: list[Finding] = []
    listed: list[tuple[str, ...]] = []
    n_groups = 0
    streams = [(i, column) for i, (owner, column) in enumerate(spill.streams) if owner is detector]
    for i, column in streams:
        for chunk in _chunks(connection, spill, i, column, limits.chunk_rows):
            part = detector.detect(chunk)
            if part is None:
                continue
            writer.write_table(
                pa.table(
                    {
                        "finding": [part.id] * len(part.groups),
                        "users": [len(g) for g in part.groups],
                        "who": [" / ".join(g) for g in part.groups],
                    },
                    schema=RECORD_SCHEMA,
                )
            )
            n_groups += len(part.groups)
            listed += part.groups[: max(0, limits.listed - len(listed))]
            parts.append(replace(part, groups=()))
    merged = findings.merge(parts, render=lambda m: detector.detail(m, n_groups))
    if merged is None:
        return None, 0
    facts = dict(merged.facts)
    if n_groups > len(listed):
        facts.update(groups_listed=len(listed), groups_record=RECORD)
    return replace(merged, groups=tuple(listed), facts=facts), n_groups


def _chunks(
    connection: duckdb.DuckDBPyConnection, spill: Spill, stream: int, column: str, rows: int
) -> Iterator[pd.DataFrame]:
    """The users whose key in ``stream`` another user holds too, in key then pool order, as frames of about
    ``rows`` users, never splitting a key's users between two frames."""
    key, hashed = f"key_{stream}", f"hash_{stream}"
    wanted = ["username", column, f"{column}_verified"] if column != "username" else ["username"]
    selected = ", ".join(_quoted(c) for c in dict.fromkeys(wanted) if c in spill.columns)
    # Keys are grouped by their 64-bit hash, a tenth of their size: a hash two keys share only adds users
    # the detector finds sharing nothing.
    query = (
        f"SELECT ordinal, {key} AS key, {selected} FROM read_parquet($spill) "
        f"WHERE {hashed} IN (SELECT {hashed} FROM read_parquet($spill) WHERE {hashed} IS NOT NULL "
        f"GROUP BY {hashed} HAVING count(*) > 1) ORDER BY {key}, ordinal"
    )
    reader = connection.sql(query, params={"spill": str(spill.path)}).to_arrow_reader(rows)
    pending: pa.Table | None = None
    for batch in reader:
        table = pa.Table.from_batches([batch])
        if pending is not None:
            table = pa.concat_tables([pending, table])
        if table.num_rows < rows:
            pending = table
            continue
        # The last key's users may go on in the next batch: they wait for it.
        last = pc.index(table["key"], table["key"][-1]).as_py()
        if last == 0:
            pending = table
            continue
        yield _frame(table.slice(0, last))
        pending = table.slice(last)
    if pending is not None and pending.num_rows:
        yield _frame(pending)


def _frame(table: pa.Table) -> pd.DataFrame:
    frame: pd.DataFrame = table.drop_columns(["key"]).to_pandas()
    return frame.set_index("ordinal", drop=True).rename_axis(None)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
