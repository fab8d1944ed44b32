"""After the cutover's import: the import file's users and the old pool's disabled users beside the new pool's
users of the same sign-in name, for pools of any size.

The new pool is looked up by each user's name in its sign-in model, folded as it folds names (the key the
comparison matches by). Pools that fit are looked up in memory, whole; larger ones are split into buckets by
that key (``buckets.split``), and so are the import file's users (its manifest) and the disabled users, so a
bucket holds everyone who can share a name and the look-up runs a bucket at a time. The rules (who counts as
arrived, as missing, as enabled) stay the cutover's: this module only brings the right users together.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa

from . import buckets, comparison, identity, report
from .buckets import Users
from .snapshot import Snapshot
from .stragglers import ImportFile

PEOPLE = ("username", "name", "excluded", "explained")  # what the cutover reads of the import file's users
PEOPLE_SCHEMA = pa.schema([(c, pa.string()) for c in PEOPLE])

Part = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]  # (import file's users, disabled old users, arrived)


def arrived(new_users: pd.DataFrame, sign_in: Sequence[str], case_sensitive: bool) -> pd.DataFrame:
    """The new pool's users indexed by their (folded) name in its sign-in model."""
    if new_users.empty:
        return new_users.set_index(pd.Index([], dtype=object))
    keys = identity.fold(identity.names(new_users, sign_in, verified_only=False), case_sensitive)
    return new_users.set_index(pd.Index(keys)).loc[lambda f: f.index.notna()]


def parts(
    import_file: ImportFile,
    new_users: Users,
    case_sensitive: bool,
    sign_in: Sequence[str],
    old_users: Users | None = None,
    work_dir: Path | None = None,
) -> Iterator[Part]:
    """The import file's users (PEOPLE), the old pool's disabled users and the new pool's (``arrived``), in
    parts that each hold every user of a name: one part when they fit in memory."""
    everyone = import_file.users + sum(import_file.exclusions().values())
    largest = max(everyone, buckets.count(new_users), buckets.count(old_users) if old_users is not None else 0)
    total = comparison.bucket_count(largest)
    if total == 1:
        people = pd.concat([*import_file.people(PEOPLE), pd.DataFrame(columns=list(PEOPLE))], ignore_index=True)
        new = new_users if isinstance(new_users, pd.DataFrame) else new_users.frame()
        yield people, _disabled_frame(old_users), arrived(new, sign_in, case_sensitive)
        return
    with tempfile.TemporaryDirectory(prefix="cognito-arrivals-", dir=work_dir) as work:
        yield from _bucketed(Path(work), total, import_file, new_users, case_sensitive, sign_in, old_users)


def _bucketed(
    folder: Path,
    total: int,
    import_file: ImportFile,
    new_users: Users,
    case_sensitive: bool,
    sign_in: Sequence[str],
    old_users: Users | None,
) -> Iterator[Part]:
    new_schema = buckets.schema(new_users)
    wanted = [c for c in (*comparison.name_columns(sign_in), "status", "enabled") if c in new_schema.names]
    new = comparison.split_by_name(
        new_users, False, case_sensitive, sign_in, folder / "new", total, columns=list(dict.fromkeys(wanted))
    )
    people = buckets.split(
        import_file.people(PEOPLE),
        lambda frame: pa.array(report.normalise(frame["name"], case_sensitive)),
        ["name"],
        folder / "people",
        total,
        fixed=PEOPLE_SCHEMA,
    )
    disabled = None
    if old_users is not None:
        disabled = comparison.split_by_name(
            _disabled_batches(old_users),
            True,
            case_sensitive,
            sign_in,
            folder / "disabled",
            total,
            fixed=buckets.schema(old_users),
        )
    for bucket in range(total):
        held = disabled.read(bucket) if disabled is not None else _disabled_frame(None)
        yield people.read(bucket), held, arrived(new.read(bucket), sign_in, case_sensitive)


def _disabled_frame(old_users: Users | None) -> pd.DataFrame:
    if old_users is None:
        return pd.DataFrame(columns=["username", "enabled"])
    old = old_users if isinstance(old_users, pd.DataFrame) else old_users.frame()
    return old.loc[~old["enabled"].astype(bool)]


def _disabled_batches(old_users: Users) -> Iterator[pd.DataFrame]:
    if isinstance(old_users, Snapshot):
        for batch in old_users.batches():
            yield batch[~batch["enabled"]]
    else:
        yield old_users.loc[~old_users["enabled"].astype(bool)]
