"""Steps 5 and 6 compare the pools here, whatever their size: every old-pool user classified, the sign-ups and
the last lazy migration counted and, given the memberships (step 5), the breakdowns and the checks that they
add up.

The rules are ``report``'s, in one place. Pools of up to IN_MEMORY_USERS users each (the demo's, and most)
are compared in memory, exactly as ``report.compare``, ``enrich``, ``breakdowns`` and ``verify`` do. Larger
ones are split into buckets (``buckets``) by the key ``classify`` matches users by (``report.matching_keys``),
about BUCKET_USERS users each, so any two users who can match share a bucket, and ``report.compare`` runs on
one bucket at a time: memory holds a bucket, whatever the pool's size. What crosses buckets is done apart,
out of core in DuckDB:

- the alias rule (a user whose verified email or phone number a migrated user, in any bucket, holds as an
  alias): each bucket's alias values (``report.alias_values``) are kept, a semi-join finds the held ones, and
  ``report.refuse_held`` applies them after every earlier reason, as ``classify`` itself does;
- the memberships: joined to the buckets by username, so each bucket's users get their groups;
- the counts, tables and checks: summed over the buckets (``report.combine``, ``report.Tally``).

The classified users stay on disk, one Parquet file per bucket, in a work folder that holds personal data
unmasked (owner-only, removed with the comparison): for the masked report_users.parquet, the stragglers'
import and the tables the notebooks show (whole for small pools, a bounded sample otherwise). The counts are
always whole.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import buckets, identity, memory, records, report, scan
from .buckets import Buckets, Users
from .checks import Check
from .params import Params
from .snapshot import MEMBERSHIP_SCHEMA, Snapshot, as_frame

IN_MEMORY_USERS = 500_000  # pools up to this size (the larger of the two) are compared in memory, whole
BUCKET_USERS = 250_000  # users of the larger pool per bucket beyond it: what memory holds at once
TEXT_COLUMNS = ("state", "reason", "cohort", "mfa", "groups")  # what the comparison adds to a user's row

# (group, username) rows: in memory, in a Parquet file or folder, or the old pool's snapshot (its groups' read)
Memberships = pd.DataFrame | Path | Snapshot
ImportWindows = Sequence[tuple[pd.Timestamp, pd.Timestamp]]


@dataclass
class PoolComparison:
    """The two pools compared: the tables (whole counts), and the classified users, in memory when the pool
    fits (``classified``), else on disk a bucket per file (``folder``)."""

    summary: pd.DataFrame
    by_reason: pd.DataFrame
    tables: dict[str, pd.DataFrame]  # the breakdowns by status, group, mfa and cohort (with the memberships)
    checks: list[Check]  # report.verify's: every user counted once, every breakdown adds up
    sign_ups: int  # new-pool users who never existed in the old pool
    last_migration: pd.Timestamp | None
    classified: pd.DataFrame | None = field(default=None, repr=False)
    folder: Path | None = None
    bucket_total: int = 1
    work: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)  # removed with the object

    @property
    def users(self) -> int:
        return int(self.summary["users"].sum())

    def count(self, *states: str) -> int:
        """Users in any of ``states``."""
        return int(self.summary.loc[self.summary["state"].isin(states), "users"].sum())

    def parts(self, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        """The classified users a bucket at a time, so users who share a sign-in key are in the same frame
        (the stragglers' import needs them together); in memory, all of them at once."""
        if self.classified is not None:
            yield self.classified[list(columns)] if columns else self.classified
            return
        assert self.folder is not None
        for bucket in range(self.bucket_total):  # every bucket has its file, if only of no rows
            path = self.folder / f"bucket={bucket}" / "part.parquet"
            yield _typed(pq.read_table(path, columns=list(columns) if columns else None))

    def batches(
        self, columns: Sequence[str] | None = None, states: Sequence[str] = (), rows: int = buckets.BATCH_ROWS
    ) -> Iterator[pd.DataFrame]:
        """The classified users (only those in ``states``, when given) in frames of at most ``rows``."""
        read = list(dict.fromkeys([*columns, *(["state"] if states else [])])) if columns else None
        for part in self.parts(read):
            selected = part[part["state"].isin(states)] if states else part
            for start in range(0, len(selected), rows):
                batch = selected.iloc[start : start + rows]
                yield batch[list(columns)] if columns else batch

    def frame(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Every classified user in memory: for pools that fit."""
        if self.classified is not None:
            return self.classified[list(columns)] if columns else self.classified
        # each bucket has its own cohorts: concatenated, they are categories again only once all are known
        whole = pd.concat(list(self.parts(columns)), ignore_index=True)
        return whole.astype({c: "category" for c in ("cohort", "mfa") if c in whole.columns})

    def sample(self, rows: int, states: Sequence[str] = ()) -> pd.DataFrame:
        """The first ``rows`` users (of ``states``): what a notebook can show of a pool too large to list."""
        taken: list[pd.DataFrame] = []
        left = rows
        for batch in self.batches(states=states, rows=rows):
            taken.append(batch.iloc[:left])
            left -= len(taken[-1])
            if left <= 0:
                break
        return pd.concat(taken, ignore_index=True) if taken else next(self.parts()).iloc[:0]

    def close(self) -> None:
        """Removes the work folder (also done when the object is freed, or at exit)."""
        if self.work is not None:
            self.work.cleanup()


def in_memory(
    classified: pd.DataFrame,
    sign_ups: int = 0,
    last_migration: pd.Timestamp | None = None,
    tables: Mapping[str, pd.DataFrame] | None = None,
    checks: Sequence[Check] = (),
) -> PoolComparison:
    """A comparison of users classified in memory (``report.classify``, perhaps ``enrich``ed)."""
    return PoolComparison(
        report.summary(classified),
        report.by_reason(classified),
        dict(tables or {}),
        list(checks),
        sign_ups,
        last_migration,
        classified=classified,
    )


def users_of(read: Snapshot) -> Users:
    """A read's users as a step hands them to ``compare``: a frame when they fit in memory (as the steps always
    had them), else the snapshot itself."""
    return scan.frame_of(read) if read.rows <= IN_MEMORY_USERS else read


def bucket_count(users: int) -> int:
    """1 (in memory) up to IN_MEMORY_USERS users, else enough buckets of about BUCKET_USERS."""
    return 1 if users <= IN_MEMORY_USERS else math.ceil(users / BUCKET_USERS)


def compare(
    old_users: Users,
    new_users: Users,
    params: Params,
    old_pool: Mapping[str, Any],
    new_pool: Mapping[str, Any],
    imports: ImportWindows = (),
    memberships: Memberships | None = None,
    work_dir: Path | None = None,
    bucket_total: int | None = None,
) -> PoolComparison:
    """``report.compare`` of two pools of any size (snapshots or frames), with, given the old pool's
    ``memberships``, ``enrich``, ``breakdowns`` and ``verify``. ``bucket_total`` forces the number of buckets
    (1: in memory); by default ``bucket_count`` of the larger pool. ``work_dir``: where the work folder goes
    (default: the system's temporary folder)."""
    total = bucket_total or bucket_count(max(buckets.count(old_users), buckets.count(new_users)))
    if total == 1:
        return _in_memory(old_users, new_users, params, old_pool, new_pool, imports, memberships)
    work = tempfile.TemporaryDirectory(prefix="cognito-compare-", dir=work_dir)
    compared = _Bucketed(Path(work.name), total, params, old_pool, new_pool, imports).compare(
        old_users, new_users, memberships
    )
    compared.work = work
    memory.give_back()  # what the buckets took, before the step's next phase (the import file) takes its own
    return compared


def sign_ups(
    old_users: Users,
    new_users: Users,
    case_sensitive: bool,
    sign_in: Sequence[str] = (),
    bucket_total: int | None = None,
) -> int:
    """How many new-pool users have no old-pool user of the same name (``report.sign_ups``), for pools of any
    size: in memory up to IN_MEMORY_USERS users, else a bucket at a time, both pools split by the key
    ``classify`` matches users by (a user and its counterpart always share a bucket)."""
    total = bucket_total or bucket_count(max(buckets.count(old_users), buckets.count(new_users)))
    if total == 1:
        old = old_users if isinstance(old_users, pd.DataFrame) else old_users.frame()
        new = new_users if isinstance(new_users, pd.DataFrame) else new_users.frame()
        return len(report.sign_ups(old, new, case_sensitive, sign_in))
    with tempfile.TemporaryDirectory(prefix="cognito-sign-ups-") as work:
        split = [
            split_by_name(
                users,
                old_pool,
                case_sensitive,
                sign_in,
                Path(work) / name,
                total,
                columns=[c for c in name_columns(sign_in) if c in buckets.schema(users).names],
            )
            for users, name, old_pool in ((old_users, "old", True), (new_users, "new", False))
        ]
        counted = sum(
            len(report.sign_ups(split[0].read(b), split[1].read(b), case_sensitive, sign_in)) for b in range(total)
        )
    memory.give_back()
    return counted


def name_columns(sign_in: Sequence[str]) -> list[str]:
    """The columns ``report.matching_keys`` reads: the username, each sign-in attribute and its _verified flag."""
    return ["username", *sign_in, *(f"{a}_verified" for a in sign_in)]


def split_by_name(
    users: Users | Iterable[pd.DataFrame],
    old_pool: bool,
    case_sensitive: bool,
    sign_in: Sequence[str],
    folder: Path,
    total: int,
    columns: Sequence[str] | None = None,
    fixed: pa.Schema | None = None,
) -> Buckets:
    """``buckets.split`` of one pool's users by the key ``classify`` matches them by (``report.matching_keys``),
    so a user and any user it can match share a bucket; ``columns`` and ``fixed`` as ``buckets.split`` takes
    them."""
    key = partial(report.matching_keys, case_sensitive=case_sensitive, sign_in=sign_in, old_pool=old_pool)
    return buckets.split(users, key, name_columns(sign_in), folder, total, columns=columns, fixed=fixed)


def _in_memory(
    old_users: Users,
    new_users: Users,
    params: Params,
    old_pool: Mapping[str, Any],
    new_pool: Mapping[str, Any],
    imports: ImportWindows,
    memberships: Memberships | None,
) -> PoolComparison:
    old = old_users if isinstance(old_users, pd.DataFrame) else old_users.frame()
    new = new_users if isinstance(new_users, pd.DataFrame) else new_users.frame()
    members = _members_frame(memberships)
    compared = report.compare(old, new, params, old_pool, new_pool, imports)
    classified, tables = compared.classified, {}
    if members is not None:
        classified = report.enrich(classified, members, old_pool.get("MfaConfiguration"))
        tables = report.breakdowns(classified, members)
    checks = report.verify(classified, old, tables, members)
    return in_memory(classified, len(compared.sign_ups), compared.last_migration, tables, checks)


class _Bucketed:
    """One comparison out of core, in ``folder``: split, compare bucket by bucket, apply what crosses."""

    def __init__(
        self,
        folder: Path,
        total: int,
        params: Params,
        old_pool: Mapping[str, Any],
        new_pool: Mapping[str, Any],
        imports: ImportWindows,
    ) -> None:
        self.folder, self.total = folder, total
        self.params, self.old_pool, self.new_pool, self.imports = params, old_pool, new_pool, imports
        self.sign_in = identity.sign_in_attributes(new_pool)
        self.pool_mfa = old_pool.get("MfaConfiguration")
        self.members: Buckets | None = None
        self.tally = report.Tally({s: 0 for s in report.CATEGORIES}, True)
        self.reasons: Counter[str] = Counter()
        self.tables: list[dict[str, pd.DataFrame]] = []
        self.sign_ups = 0
        self.last_migration: pd.Timestamp | None = None
        self.output = pa.schema([])  # the classified users' columns

    def split(self, users: Users, old_pool: bool) -> Buckets:
        case_sensitive = self.params.target_case_sensitive
        folder = self.folder / ("old" if old_pool else "new")
        return split_by_name(users, old_pool, case_sensitive, self.sign_in, folder, self.total)

    def compare(self, old_users: Users, new_users: Users, memberships: Memberships | None) -> PoolComparison:
        old, new = self.split(old_users, True), self.split(new_users, False)
        # DuckDB's memory is given back (the connection closed) before the buckets take theirs
        with buckets.connection(self.folder) as con:
            unique = _unique(con, old)
            if memberships is not None:
                self.members = _members_by_bucket(con, memberships, old, self.folder / "memberships")
                self.tally = replace(self.tally, memberships=0, in_some_group=0)
        extra = ["state", "reason", *(["cohort", "mfa", "groups"] if self.members is not None else [])]
        self.output = _with_text(old.schema, extra)
        stage = _with_text(old.schema, ["state", "reason"])
        contacts = report.alias_contacts(
            pd.DataFrame(columns=old.schema.names), identity.alias_attributes(self.new_pool)
        )
        for bucket in range(self.total):
            compared = report.compare(
                old.read(bucket), new.read(bucket), self.params, self.old_pool, self.new_pool, self.imports
            )
            old.remove(bucket)  # read: the disk it took is given back as the buckets go
            new.remove(bucket)
            self.sign_ups += len(compared.sign_ups)
            self.last_migration = _later(self.last_migration, compared.last_migration)
            if contacts:  # the alias rule crosses buckets: finished once every bucket's migrated users are known
                _store(compared.classified, self.folder / "stage" / f"bucket={bucket}" / "part.parquet", stage)
                self._keep_aliases(compared.classified, contacts, bucket)
            else:
                self.finish(bucket, compared.classified)
        if contacts:
            with buckets.connection(self.folder) as con:
                held = _held(con, self.folder / "aliases", self.folder / "held.parquet")
            for bucket in range(self.total):
                staged = self.folder / "stage" / f"bucket={bucket}" / "part.parquet"
                classified = _typed(pq.read_table(staged))
                staged.unlink()
                self.finish(bucket, classified, _held_rows(held, bucket, len(classified)))
        tables = report.combine(self.tables)
        checks = report.verify_tally(replace(self.tally, unique=unique), buckets.count(old_users), tables)
        return PoolComparison(
            report.state_table(self.tally.states),
            report.reason_table(self.reasons),
            tables,
            checks,
            self.sign_ups,
            self.last_migration,
            folder=self.folder / "classified",
            bucket_total=self.total,
        )

    def finish(self, bucket: int, classified: pd.DataFrame, held: np.ndarray | None = None) -> None:
        """A bucket's users as the whole pool classifies them; its counts and tables; written to disk."""
        if held is not None:
            classified = report.refuse_held(classified, held)
        members = self.members.read(bucket) if self.members is not None else None
        if members is not None:
            classified = report.enrich(classified, members, self.pool_mfa)
            self.tables.append(report.breakdowns(classified, members))
        self.tally += report.tally(classified, members)
        self.reasons.update(report.reason_counts(classified))
        _store(classified, self.folder / "classified" / f"bucket={bucket}" / "part.parquet", self.output)
        pa.default_memory_pool().release_unused()  # what Arrow's allocator kept of this bucket, given back

    def _keep_aliases(self, classified: pd.DataFrame, contacts: Sequence[str], bucket: int) -> None:
        """Each user's verified alias values, if migrated (they hold it) or not yet (they may be refused)."""
        migrated = (classified["state"] == report.MIGRATED).to_numpy(dtype=bool)
        waiting = (classified["state"] == report.NOT_YET).to_numpy(dtype=bool)
        parts = []
        for attribute in contacts:
            values = report.alias_values(classified, attribute, self.params.target_case_sensitive)
            keep = np.flatnonzero(values.notna().to_numpy(dtype=bool) & (migrated | waiting))
            parts.append(
                pa.table(
                    {
                        "position": pa.array(keep, pa.int64()),
                        "attribute": pa.array([attribute] * len(keep), pa.string()),
                        "value": pa.array(values.iloc[keep].astype(object), pa.string()),
                        "migrated": pa.array(migrated[keep]),
                        "candidate": pa.array(waiting[keep]),
                    }
                )
            )
        table = pa.concat_tables(parts)
        with buckets.writer(self.folder / "aliases" / f"bucket={bucket}" / "part.parquet", table.schema) as out:
            out.write_table(table)


def _later(a: pd.Timestamp | None, b: pd.Timestamp | None) -> pd.Timestamp | None:
    return b if a is None else a if b is None else max(a, b)


def _with_text(schema: pa.Schema, columns: Sequence[str]) -> pa.Schema:
    kept = schema.remove_metadata()
    return pa.schema([*(f for f in kept if f.name not in columns), *((c, pa.string()) for c in columns)])


def _store(frame: pd.DataFrame, path: Path, schema: pa.Schema) -> None:
    """A bucket's classified users as one Parquet file (the added columns as text)."""
    text = {c: frame[c].astype(str) for c in TEXT_COLUMNS if c in frame.columns}
    table = pa.Table.from_pandas(frame.assign(**text), schema=schema, preserve_index=False)
    with buckets.writer(path, schema) as out:
        out.write_table(table)


def _typed(table: pa.Table) -> pd.DataFrame:
    """Classified users read back, typed as ``report.classify`` and ``report.enrich`` type them."""
    frame = as_frame(table)
    if "state" in frame.columns:
        frame["state"] = pd.Categorical(frame["state"], categories=list(report.CATEGORIES))
    if "reason" in frame.columns:
        frame["reason"] = pd.Categorical(frame["reason"], categories=["", *report.REASONS])
    for column in ("cohort", "mfa"):
        if column in frame.columns:
            frame[column] = frame[column].astype("category")
    return frame


def _literal(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _unique(con: duckdb.DuckDBPyConnection, old: Buckets) -> bool:
    """No username twice in the old pool (a page read twice), across buckets."""
    query = f"SELECT count(*) = count(DISTINCT username) FROM read_parquet({_literal(old.glob())})"
    return bool(con.execute(query).fetchall()[0][0])


def _members_frame(memberships: Memberships | None) -> pd.DataFrame | None:
    if isinstance(memberships, Snapshot):
        return memberships.memberships()
    return as_frame(pq.read_table(memberships)) if isinstance(memberships, Path) else memberships


def _members_by_bucket(con: duckdb.DuckDBPyConnection, memberships: Memberships, old: Buckets, folder: Path) -> Buckets:
    """The memberships of the old pool's users, split as the users are (by their username's bucket);
    memberships of users the pool no longer has are left out, as the tables leave them out."""
    files = memberships.membership_files() if isinstance(memberships, Snapshot) else None
    if isinstance(memberships, Path):
        source = f"read_parquet({_literal(memberships / '**' / '*.parquet' if memberships.is_dir() else memberships)})"
    elif files:  # the groups finished reading (a group's unfinished parts are never read)
        source = f"read_parquet([{', '.join(_literal(f) for f in files)}])"
    else:
        frame = memberships if isinstance(memberships, pd.DataFrame) else MEMBERSHIP_SCHEMA.empty_table().to_pandas()
        con.register("memberships_frame", frame[["group", "username"]])
        source = "memberships_frame"
    records.private_dir(folder)
    con.execute(
        f"""COPY (
            SELECT m."group", m.username, u.bucket
            FROM {source} m
            JOIN (SELECT username, bucket FROM read_parquet({_literal(old.glob())}, hive_partitioning = true)) u
            USING (username)
        ) TO {_literal(folder)} (FORMAT parquet, PARTITION_BY (bucket), OVERWRITE_OR_IGNORE)"""
    )
    if source == "memberships_frame":
        con.unregister("memberships_frame")
    return Buckets(folder, old.count, MEMBERSHIP_SCHEMA)


def _held(con: duckdb.DuckDBPyConnection, aliases: Path, out: Path) -> Path:
    """(bucket, position) of every user still 'not yet' whose verified alias value some migrated user holds,
    in any bucket: the users ``alias_refusals`` finds held, across buckets."""
    values = f"read_parquet({_literal(aliases / 'bucket=*' / '*.parquet')}, hive_partitioning = true)"
    con.execute(
        f"""COPY (
            SELECT DISTINCT c.bucket, c.position
            FROM {values} c
            SEMI JOIN (SELECT attribute, value FROM {values} WHERE migrated) m
                ON c.attribute = m.attribute AND c.value = m.value
            WHERE c.candidate
            ORDER BY c.bucket, c.position
        ) TO {_literal(out)} (FORMAT parquet)"""
    )
    return out


def _held_rows(held: Path, bucket: int, rows: int) -> np.ndarray:
    positions = pq.read_table(held, columns=["position"], filters=[("bucket", "=", bucket)])["position"]
    mask = np.zeros(rows, dtype=bool)
    mask[positions.to_numpy()] = True
    return mask


def save(
    run_dir: Path, compared: PoolComparison, mask: records.Masker, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``report.save`` of a comparison: report.json from its tables, and report_users.parquet, masked, written
    batch by batch when the users are on disk."""
    data = report.record(run_dir, compared.summary, compared.by_reason, compared.sign_ups, compared.tables, extra)
    records.save_json(run_dir, "report", data)
    if compared.classified is not None:
        records.save_frame(run_dir, "report_users", report.user_rows(compared.classified, mask))
    else:
        records.save_frames(run_dir, "report_users", (report.user_rows(b, mask) for b in compared.batches()))
    return data
