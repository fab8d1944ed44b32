"""Pools larger than memory, a part at a time: a pool's users split into buckets by a hash of the key they are
matched by, so that two users who can match always share a bucket, and each bucket can be compared alone.

A pool is a ``Snapshot`` (a Parquet dataset on disk) or, for pools read into memory, a DataFrame; either is
read in bounded batches. Each user goes to bucket ``hash(key) % count``; a bucket is one Parquet file written
as the batches arrive (so a bucket keeps the order the pool was read in), and read back whole: memory holds
one batch while splitting, and one bucket while comparing. The key is computed in Python by the caller
(``report.matching_keys``: the one place names are folded). Files live in a work folder the caller owns: they
hold personal data unmasked. DuckDB (``connection``) joins what crosses buckets, in bounded memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import records
from .snapshot import Snapshot, as_frame

BATCH_ROWS = 65_536  # users per batch read: what splitting holds in memory at once
DUCKDB_MEMORY = "256MB"  # DuckDB's own limit: it spills to its temp folder beyond it
DUCKDB_THREADS = 1  # each thread holds buffers of its own; its joins are not the bottleneck

Users = pd.DataFrame | Snapshot
Key = Callable[[pd.DataFrame], pa.Array]


def count(users: Users) -> int:
    """How many users: a snapshot's finished shards' rows, or the frame's length."""
    return users.rows if isinstance(users, Snapshot) else len(users)


def schema(users: Users) -> pa.Schema:
    return users.schema if isinstance(users, Snapshot) else pa.Schema.from_pandas(users, preserve_index=False)


def arrow_batches(
    users: Users | Iterable[pd.DataFrame], rows: int = BATCH_ROWS, fixed: pa.Schema | None = None
) -> Iterator[pa.Table]:
    """The users in Arrow tables of at most ``rows`` (frames as they come), all of one schema (``fixed``,
    which frames that come one by one need: the schema cannot be read from a first frame that has no rows)."""
    if not isinstance(users, Snapshot | pd.DataFrame):
        if fixed is None:
            raise ValueError("frames that come one by one need their schema")
        for frame in users:
            yield pa.Table.from_pandas(frame, schema=fixed, preserve_index=False)
        return
    if isinstance(users, Snapshot):
        # No read-ahead, one thread: otherwise the scanner reads ahead of a slow consumer without bound
        # (hundreds of MB of batches waiting while the buckets are written).
        scan = users.dataset().to_batches(batch_size=rows, batch_readahead=0, fragment_readahead=0, use_threads=False)
        pending: list[pa.RecordBatch] = []
        for batch in scan:  # a batch per part file at most: gathered up to ``rows``, fewer and larger writes
            pending.append(batch)
            if sum(b.num_rows for b in pending) >= rows:
                yield pa.Table.from_batches(pending)
                pending = []
        if pending:
            yield pa.Table.from_batches(pending)
        return
    fixed = fixed or schema(users)
    for start in range(0, len(users), rows):
        yield pa.Table.from_pandas(users.iloc[start : start + rows], schema=fixed, preserve_index=False)


def frames(users: Users, columns: Sequence[str] | None = None, rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
    """The users in frames of at most ``rows``, typed as ``Snapshot.frame`` types them."""
    if isinstance(users, Snapshot):
        yield from users.batches(columns, rows)
        return
    for start in range(0, len(users), rows):
        batch = users.iloc[start : start + rows]
        yield batch[list(columns)] if columns else batch


@contextlib.contextmanager
def connection(work: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with bounded memory, spilling into ``work``; closed on the way out (an open one
    makes the interpreter print leak noise at exit)."""
    spill = records.private_dir(work / "duckdb")
    con = duckdb.connect(
        config={"memory_limit": DUCKDB_MEMORY, "temp_directory": str(spill), "threads": DUCKDB_THREADS}
    )
    try:
        yield con
    finally:
        con.close()


def bucket_ids(keys: pa.Array, buckets: int) -> np.ndarray:
    """Each key's bucket in ``range(buckets)``: the same for equal keys, whatever their Arrow string type
    (pandas' hash of the UTF-8 text, a fixed key: the same in every process)."""
    text = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([keys]).cast(pa.large_string())))
    return (pd.util.hash_pandas_object(text, index=False).to_numpy() % np.uint64(buckets)).astype(np.int64)


@dataclass(frozen=True)
class Buckets:
    """A pool split into ``count`` buckets: ``folder/bucket=<b>/*.parquet`` (hive-style, so DuckDB reads the
    bucket number as a column); a bucket nobody fell into has no folder and reads as no rows."""

    folder: Path
    count: int
    schema: pa.Schema

    def directory(self, bucket: int) -> Path:
        return self.folder / f"bucket={bucket}"

    def read(self, bucket: int, columns: Sequence[str] | None = None) -> pd.DataFrame:
        return as_frame(read_bucket(self.directory(bucket), self.schema, columns))

    def glob(self) -> str:
        """Every bucket's files, for DuckDB's read_parquet(..., hive_partitioning = true)."""
        return str(self.folder / "bucket=*" / "*.parquet")

    def remove(self, bucket: int) -> None:
        for path in self.directory(bucket).glob("*.parquet"):
            path.unlink()


def read_bucket(directory: Path, schema: pa.Schema, columns: Sequence[str] | None = None) -> pa.Table:
    """A bucket's files as one table (none: no rows, of ``schema``)."""
    wanted = list(columns) if columns else None
    files = sorted(directory.glob("*.parquet"))
    if not files:
        empty = schema.empty_table()
        return empty.select(wanted) if wanted else empty
    return pa.concat_tables([pq.read_table(f, columns=wanted) for f in files])


def split(
    users: Users | Iterable[pd.DataFrame],
    key: Key,
    key_columns: Sequence[str],
    folder: Path,
    count: int,
    rows: int = BATCH_ROWS,
    fixed: pa.Schema | None = None,
    columns: Sequence[str] | None = None,
) -> Buckets:
    """``users`` written into ``count`` buckets by ``key`` (computed on each batch's ``key_columns``): all
    their columns, or only ``columns``. Frames that come one by one need their schema (``fixed``)."""
    if fixed is None:
        if not isinstance(users, Snapshot | pd.DataFrame):
            raise ValueError("frames that come one by one need their schema")
        fixed = schema(users)
    source = fixed
    kept = source.remove_metadata() if columns is None else pa.schema([source.field(c) for c in columns])
    buckets = Buckets(records.private_dir(folder), count, kept)
    wanted = [c for c in key_columns if c in source.names]
    writers: dict[int, pq.ParquetWriter] = {}
    try:
        for batch in arrow_batches(users, rows, fixed):
            table = batch if columns is None else batch.select(list(columns))
            ids = bucket_ids(key(as_frame(batch.select(wanted))), count)
            order = np.argsort(ids, kind="stable")  # stable: each bucket keeps the pool's order
            bounds = np.searchsorted(ids[order], np.arange(count + 1))
            ordered = table.take(pa.array(order))
            for bucket in (int(b) for b in np.flatnonzero(np.diff(bounds))):
                if bucket not in writers:
                    writers[bucket] = writer(buckets.directory(bucket) / "part.parquet", kept)
                part = ordered.slice(bounds[bucket], bounds[bucket + 1] - bounds[bucket])
                writers[bucket].write_table(part.replace_schema_metadata(None))
    finally:
        for open_writer in writers.values():
            open_writer.close()
    return buckets


def writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A Parquet writer of a new owner-only file (in an owner-only folder)."""
    records.private_dir(path.parent)
    with records.private_file(path):
        pass  # created 0600 first: the writer then truncates it and keeps its mode
    return pq.ParquetWriter(str(path), schema)
