"""Where whole-pool reads keep their snapshots, which one a read continues, and when they are deleted.

    outputs/<env>/.snapshots/<pool id>/<UTC start>/     (0700, files 0600: users unmasked; never a record)

Beside the run folders, never inside one: a dot-folder, so the records' seal, ``verify`` and the index leave
it out. A read first surveys its pool's folder:

- it continues the newest UNFINISHED snapshot of the same read (the same pool, the same attributes, users
  alone or users and memberships) started less than ``snapshot_resume_hours`` ago (its oldest shard is that
  old: older data would make a picture of the pool taken over days), keeping its finished shards and groups
  and reading the rest; it says so;
- it removes an unfinished one older than that, one superseded by a newer unfinished one, one with nothing
  finished, and a finished one nobody holds (its step ended, failed or killed, before deleting it);
- it leaves alone, with a message, one another read is using and one of another kind of read (the pool's
  attributes changed, or memberships differ): they go once older than ``snapshot_resume_hours``.

A snapshot in use is locked (``flock`` on its folder) by the process that opened it until ``release`` or the
process ends, so a killed kernel never leaves one that looks in use. A finished read's snapshot is kept until
its step has saved its records (``release``: audit.save_records, the report's and the cutover's), then deleted:
the records keep the masked copy. The runner sweeps the environment's snapshots after every step, so one a
failed step left behind does not wait for the next read of its pool.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import records
from .snapshot import Snapshot, SnapshotError, create

if TYPE_CHECKING:
    from .params import Params

SNAPSHOTS = ".snapshots"
RENEW = (
    "renew them (e.g. `aws sso login`, or export fresh AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / "
    "AWS_SESSION_TOKEN where the kernel reads them)"
)

_held: dict[Path, int] = {}  # snapshot folders this process uses, and the descriptor holding each one's lock
_held_lock = threading.Lock()


@dataclass(frozen=True)
class SnapshotStore:
    """Where one environment's reads keep their snapshots, how long an unfinished one may be resumed, and what
    to tell the operator to renew when the credentials expire mid-read."""

    root: Path
    resume_hours: float = 24.0
    renew: str = RENEW
    wait_minutes: float = 0.0  # how long a read waits for expired credentials to be renewed (0: it stops)
    poll_seconds: float = 30.0  # how often it tries them meanwhile (one request of the call that was refused)

    @classmethod
    def of(cls, params: Params) -> SnapshotStore:
        """``outputs/<env>/.snapshots``, beside the environment's run folders (hand runs' too)."""
        renew = RENEW
        if params.aws_profile:
            renew = f"renew them (e.g. `aws sso login --profile {params.aws_profile}`, or refresh that profile's keys)"
        return cls(
            params.records_dir.parent / SNAPSHOTS, params.snapshot_resume_hours, renew, params.credentials_wait_minutes
        )

    @classmethod
    def temporary(cls) -> SnapshotStore:
        """A private folder of its own (resuming nothing), for reads that want a frame and keep no snapshot."""
        return cls(Path(tempfile.mkdtemp(prefix="cognito-snapshots-")), resume_hours=0.0)

    def pool_dir(self, pool_id: str) -> Path:
        return self.root / pool_id


@dataclass
class Opened:
    """The snapshot a read writes into, the line saying what it continued, and what the survey did."""

    snapshot: Snapshot
    resumed: str | None = None
    notes: list[str] = field(default_factory=list)


def open_snapshot(
    store: SnapshotStore,
    pool_id: str,
    attributes: Sequence[str],
    shard_digits: int,
    groups: Sequence[str] | None = None,
    estimated: int | None = None,
    same_digits: bool = False,
) -> Opened:
    """The snapshot a read of ``pool_id`` continues (see the module's rules), or a new one with
    ``shard_digits``; locked for this process either way. A resumed snapshot keeps its own shard digits (the
    estimate may have crossed a threshold since: any digits partition the pool) unless ``same_digits``."""
    pool_dir = store.pool_dir(pool_id)
    opened: Opened | None = None
    notes: list[str] = []
    for folder in sorted(_folders(pool_dir), reverse=True):  # newest first
        if _in_use_here(folder):
            continue  # an earlier read of this step, still in use
        if not _lock(folder):
            notes.append(f"left alone {folder}: another read is using it")
            continue
        verdict = _survey(store, Snapshot(folder), attributes, groups, shard_digits if same_digits else None)
        if verdict == "resume" and opened is None:
            opened = Opened(Snapshot(folder))
        elif verdict == "resume" or verdict.startswith("remove"):
            reason = "superseded by a newer unfinished read" if verdict == "resume" else verdict.split(": ", 1)[1]
            _delete(folder)
            notes.append(f"removed {folder}: {reason}")
        else:
            _unlock(folder)
            notes.append(f"left alone {folder}: {verdict}; removed once older than {store.resume_hours:g} h")
    if opened is None:
        folder = _new_folder(pool_dir)
        snap = create(folder, pool_id, attributes, shard_digits, estimated=estimated, groups=_list(groups), resumed=[])
        return Opened(snap, None, notes)
    opened.notes, opened.resumed = notes, _resume(opened.snapshot, groups, estimated)
    return opened


def _survey(
    store: SnapshotStore,
    snap: Snapshot,
    attributes: Sequence[str],
    groups: Sequence[str] | None,
    digits: int | None,
) -> str:
    """'resume', 'remove: <why>', or why the snapshot is another read's."""
    try:
        manifest = snap.manifest
        finished = snap.finished_reading
        started = datetime.fromisoformat(manifest["started"])
    except (SnapshotError, KeyError, ValueError) as exc:
        return f"remove: not a snapshot this version can continue ({exc})"
    hours = (datetime.now(UTC) - started).total_seconds() / 3600
    if finished:
        return "remove: a finished read its step did not delete (the step failed or was stopped after reading)"
    if hours >= store.resume_hours:
        return f"remove: started {hours:.1f} h ago, snapshot_resume_hours is {store.resume_hours:g}"
    if not snap.finished() and not snap.groups_finished():
        return "remove: nothing in it was finished"
    if list(manifest["attributes"]) != list(attributes):
        return "the pool's attributes differ from this read's (its schema changed since)"
    if (manifest.get("groups") is None) != (groups is None):
        return "another kind of read (users alone, or with memberships)"
    if digits is not None and int(manifest["shard_digits"]) != digits:
        return f"read in shards of {manifest['shard_digits']} digit(s), this read asks for {digits}"
    return "resume"


def _resume(snap: Snapshot, groups: Sequence[str] | None, estimated: int | None) -> str:
    """Records the resume in the manifest (groups no longer in the pool are dropped) and says what it keeps."""
    finished, total = snap.finished(), len(snap.prefixes)
    line = (
        f"resumed snapshot {snap.folder}: {len(finished)} of {total} shards already read "
        f"({snap.rows:,} users), reading {total - len(finished)}"
    )
    if groups is not None:
        for gone in set(snap.groups or []) - set(groups):
            shutil.rmtree(snap.group_dir(gone), ignore_errors=True)
        snap.update_manifest(groups=list(groups))
        kept = len(snap.groups_finished())
        line += f"; memberships of {kept} of {len(groups)} groups already read, reading {len(groups) - kept}"
    resumed = [*snap.manifest.get("resumed", []), {"at": records.now_iso(), "line": line}]
    snap.update_manifest(resumed=resumed, estimated=estimated)
    return line


def release(*snapshots: Snapshot | None) -> list[str]:
    """Deletes each snapshot whose step has saved its records (and its lock); a snapshot another process is
    using is left. Returns the folders deleted."""
    deleted = []
    for snap in snapshots:
        if snap is None or not snap.folder.exists():
            continue
        if _in_use_here(snap.folder) or _lock(snap.folder):
            _delete(snap.folder)
            deleted.append(str(snap.folder))
    return deleted


def let_go(snapshot: Snapshot) -> None:
    """Unlocks a snapshot this process holds, keeping it: a read that stopped leaves it for the next read of
    its pool (in this process too: a notebook's cell run again) to continue."""
    _unlock(snapshot.folder)


def sweep(store: SnapshotStore) -> list[str]:
    """Removes every snapshot of the store nobody is using that is finished, has nothing finished, or is older
    than ``resume_hours``: the runner calls it after each step. Returns what it removed, and why."""
    removed = []
    for pool_dir in sorted(_folders(store.root)):
        for folder in sorted(_folders(pool_dir)):
            if _in_use_here(folder) or not _lock(folder):
                continue
            verdict = _survey(store, Snapshot(folder), (), None, None)
            if verdict.startswith("remove"):
                _delete(folder)
                removed.append(f"{folder}: {verdict.split(': ', 1)[1]}")
            else:
                _unlock(folder)
    return removed


def discard_store(store: SnapshotStore) -> None:
    """Deletes a temporary store whole (``SnapshotStore.temporary``), its snapshots' locks with it."""
    root = store.root.resolve()
    for folder in held():
        if root in folder.parents:
            _unlock(folder)
    shutil.rmtree(root, ignore_errors=True)


# --- folders and locks --------------------------------------------------------------------------------------


def _list(groups: Sequence[str] | None) -> list[str] | None:
    return None if groups is None else list(groups)


def _folders(parent: Path) -> list[Path]:
    """The folders in ``parent`` (a store's pools, or a pool's snapshots); none when another process has just
    removed it, empty (``_delete``)."""
    try:
        return [p for p in parent.iterdir() if p.is_dir()]
    except FileNotFoundError:
        return []


def _new_folder(pool_dir: Path) -> Path:
    """A new folder named by the UTC second the read starts (-2, -3... if taken), created and locked before
    its manifest is written, so no survey takes it for an abandoned one. Another process deleting its last
    snapshot removes the empty pool folder and ``.snapshots`` (``_delete``), maybe just as this one creates
    them: they are created again."""
    base = records.new_run_id()
    for attempt in range(1, 1000):
        folder = pool_dir / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            records.private_dir(pool_dir)
            folder.mkdir(mode=records.DIR_MODE)
        except FileExistsError:
            continue
        except FileNotFoundError:  # a parent removed between the two: created again
            continue
        if _lock(folder):
            return folder
    raise SnapshotError(f"{pool_dir}: cannot create a new snapshot folder")


def _in_use_here(folder: Path) -> bool:
    with _held_lock:
        return folder.resolve() in _held


def _lock(folder: Path) -> bool:
    """Takes ``folder``'s lock for this process; False when another process (or this one) holds it."""
    key = folder.resolve()
    with _held_lock:
        if key in _held:
            return False
        try:
            descriptor = os.open(key, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        _held[key] = descriptor
        return True


def _unlock(folder: Path) -> None:
    with _held_lock:
        descriptor = _held.pop(folder.resolve(), None)
    if descriptor is not None:
        os.close(descriptor)


def _delete(folder: Path) -> None:
    """Removes ``folder`` while holding its lock, then lets the lock go."""
    key = folder.resolve()
    shutil.rmtree(key, ignore_errors=True)
    with _held_lock:
        descriptor = _held.pop(key, None)
    if descriptor is not None:
        os.close(descriptor)
    for parent in (key.parent, key.parent.parent):  # the pool's folder, then .snapshots, once empty
        try:
            parent.rmdir()
        except OSError:
            break


def held() -> list[Path]:
    """The snapshot folders this process holds (for tests and diagnostics)."""
    with _held_lock:
        return sorted(_held)
