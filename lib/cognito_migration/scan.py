"""Whole-pool reads that respect Cognito's quotas: ListUsers pages for users, ListGroups + ListUsersInGroup for
memberships. Never a per-user call over the whole pool (AdminGetUser is billed per user; AdminListGroupsForUser
over a million users takes hours).

Every read streams into a snapshot (``snapshot``: Parquet parts per shard, each shard sealed when drained) in
the place ``snapshot_store`` gives it, so its memory is bounded by its batches whatever the pool's size, and a
read stopped part-way (expired credentials, a kernel restart, a network error past botocore's retries) is
continued by the next read of the pool: only the shards it had not finished are read again.

How a pool is cut, by its EstimatedNumberOfUsers:

- under SHARDED_FROM (5,000): one paginator, no filter. It spends fewer requests than shards on a small pool,
  and a read that fails starts again, which costs seconds: the demo's 2,000 users are read as they always were.
- under LARGE_POOL_FROM (250,000): 16 shards, ``sub ^= "0"`` ... ``"f"``, WORKERS at a time.
- from it: 256 shards, ``sub ^= "00"`` ... ``"ff"``. A resume reads again the shards that were in flight when
  the read stopped, at most WORKERS of them: half the pool with 16 shards, 1/32 with 256. 256 shards cost
  about 128 more requests than 16 (each shard's last page is part-filled): ~9 s at the default budget of 15
  requests/s, under 3% of a read from 250,000 users (4.6 minutes at 900 users/s), where 16 shards could lose
  two minutes or more to a resume; below it the extra requests weigh more than what a resume could save.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NoReturn

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from . import memory, records
from .aws import RateLimiter, Stopped, credentials_expired, error_code, pages, paginate
from .snapshot import BATCH_ROWS, STANDARD_COLUMNS, MembershipWriter, ShardWriter, Snapshot, pool_attributes
from .snapshot_store import SnapshotStore, discard_store, let_go, open_snapshot, release
from .widgets import progress_bar  # widget bars in JupyterLab, text bars in the step's log under papermill

USER_COLUMNS = STANDARD_COLUMNS
SHARDED_FROM = 5000  # users (EstimatedNumberOfUsers) from which 16 concurrent shards beat one paginator
LARGE_POOL_FROM = 250_000  # users from which 256 shards bound what a resume reads again (see above)
WORKERS = 8  # shards (or groups) read at once, all under the one shared budget
PAGE = {"PageSize": 60}  # ListUsers' largest page


class CredentialsExpired(RuntimeError):
    """AWS refused the read's credentials part-way (they expired) and no renewed ones came within
    ``credentials_wait_minutes``; what was read is kept: renew them and run the step again to resume."""

    def __init__(self, message: str, operation: str = "", where: str = "", kept: str = "") -> None:
        super().__init__(message)
        self.operation, self.where, self.kept = operation, where, kept


def user_row(user: Mapping[str, Any]) -> dict[str, Any]:
    """One ListUsers item as a flat row: the standard columns plus every attribute the user has."""
    attributes = {a["Name"]: a.get("Value", "") for a in user.get("Attributes", [])}
    row: dict[str, Any] = {column: None for column in USER_COLUMNS}
    row.update(attributes)
    row.update(
        username=user["Username"],
        status=user.get("UserStatus", ""),
        enabled=bool(user.get("Enabled", True)),
        created=user.get("UserCreateDate"),
        legacy_sms_mfa=bool(user.get("MFAOptions")),
    )
    return row


def shard_digits(expected: int | None) -> int:
    """0 (one paginator), 1 (16 shards) or 2 (256 shards) hex digits of ``sub`` for a pool of ``expected``."""
    if expected is None or expected < SHARDED_FROM:
        return 0
    return 1 if expected < LARGE_POOL_FROM else 2


def read_snapshot(
    cognito: Any,
    pool: Mapping[str, Any] | str,
    store: SnapshotStore,
    limiter: RateLimiter | None = None,
    label: str = "",
    groups: Sequence[str] | None = None,
    *,
    expected: int | None = None,
    digits: int | None = None,
    workers: int = WORKERS,
    batch_rows: int = BATCH_ROWS,
) -> Snapshot:
    """Every user of the pool, and with ``groups`` every member of each of them, read into a snapshot of
    ``store``: an unfinished one of the same read is continued (``snapshot_store``), which is printed and kept
    in the snapshot's ``summary()["resumed"]``. ``pool`` is DescribeUserPool's ``UserPool`` or the pool's id
    (then described here); ``expected`` (default: its EstimatedNumberOfUsers) cuts the shards and gives the
    progress bar its ETA; ``digits`` forces the shards. AWS refusing the credentials part-way raises
    CredentialsExpired, unless ``store.wait_minutes`` lets the read wait for renewed ones and go on in place
    (``_wait_for_credentials``); any other error comes as it was, with a note saying what is kept. Either way
    the shards finished are sealed on disk, and running the read again resumes them."""
    described = cognito.describe_user_pool(UserPoolId=pool)["UserPool"] if isinstance(pool, str) else dict(pool)
    pool_id = described["Id"]
    expected = described.get("EstimatedNumberOfUsers") if expected is None else expected
    opened = open_snapshot(
        store,
        pool_id,
        pool_attributes(described),
        shard_digits(expected) if digits is None else digits,
        groups,
        expected,
        same_digits=digits is not None,
    )
    for line in [*opened.notes, *([opened.resumed] if opened.resumed else [])]:
        print(line)
    reader = _Reader(cognito, opened.snapshot, limiter, store.renew, workers, batch_rows)
    left = store.wait_minutes * 60  # one wait for the whole read, however many pauses it takes
    try:
        while True:
            try:
                reader.users(expected, label or f"ListUsers {pool_id}")
                if groups is not None:
                    reader.memberships()
                break
            except CredentialsExpired as expired:
                waited = _wait_for_credentials(reader, expired, left, store)
                if waited is None:
                    raise CredentialsExpired(
                        f"{expired} (no renewed credentials came in the {_minutes(store.wait_minutes)} it waited: "
                        "credentials_wait_minutes)" if store.wait_minutes else str(expired),
                        expired.operation, expired.where, expired.kept,
                    ) from expired.__cause__  # fmt: skip
                left -= waited
    except BaseException:
        let_go(opened.snapshot)  # kept, unlocked: the next read of the pool continues it
        raise
    memory.give_back()  # the pages' buffers, before the next read or the comparison
    return opened.snapshot


def _wait_for_credentials(
    reader: _Reader, expired: CredentialsExpired, seconds: float, store: SnapshotStore
) -> float | None:
    """The pause: says what to renew, then tries the refused call once every ``store.poll_seconds`` for up to
    ``seconds``. Returns the seconds it waited once the call is accepted (the read goes on, the pause recorded
    with the read's resumes), None if it never was. Credentials that refresh themselves through boto3's chain
    (SSO, an assumed role) are seen renewed by the same client; keys fixed in the kernel's environment never are."""
    if seconds <= 0:
        return None
    started = time.monotonic()
    deadline = started + seconds
    call = f" ({expired.operation})" if expired.operation else ""  # none when botocore refused before sending
    print(
        f"credentials expired at {expired.where} of {reader.pool_id}{call}: {reader.renew}. The read "
        f"waits for them up to {_minutes(seconds / 60)}, trying every {store.poll_seconds:g} s, then "
        f"goes on with the {expired.kept} already read (stop this cell to stop it; a re-run resumes)"
    )
    while time.monotonic() < deadline:
        time.sleep(min(store.poll_seconds, max(deadline - time.monotonic(), 0)))
        try:
            reader.probe(expired.operation)
        except (ClientError, BotoCoreError) as exc:
            if credentials_expired(exc):
                continue
            raise
        waited = time.monotonic() - started
        line = (
            f"credentials expired at {expired.where}{call} and were renewed {waited:.0f} s later: "
            f"the read went on with the {expired.kept} already read"
        )
        print(line)
        reader.snap.update_manifest(
            resumed=[*reader.snap.manifest.get("resumed", []), {"at": records.now_iso(), "line": line}]
        )
        return waited
    return None


def _minutes(minutes: float) -> str:
    return f"{minutes:.0f} min" if minutes >= 1 else f"{minutes * 60:.0f} s"


def frame_of(snap: Snapshot) -> pd.DataFrame:
    """The snapshot's users as a frame; read in shards, with ``attrs["completeness"]``: every shard drained,
    the total against the pool's estimate, the difference explained."""
    frame = snap.frame()
    if len(snap.prefixes) > 1:
        frame.attrs["completeness"] = snap.completeness()
    return frame


def scan_users(
    cognito: Any,
    pool_id: str,
    limiter: RateLimiter | None = None,
    expected: int | None = None,
    label: str = "",
    store: SnapshotStore | None = None,
) -> pd.DataFrame:
    """Every user of the pool, one row each (``frame_of`` a ``read_snapshot``), with a progress bar (users/s
    and ETA against ``expected``, and the ceiling the rate budget allows); shards as ``shard_digits`` says for
    ``expected`` (without it, one paginator). The snapshot goes once the frame is built: a temporary one
    without ``store``. A step that records its read keeps the snapshot with ``read_snapshot`` instead."""
    return _read_frame(cognito, pool_id, store, limiter, label, expected=expected, digits=shard_digits(expected))


def scan_pool(
    cognito: Any, pool_id: str, limiter: RateLimiter | None = None, label: str = "", store: SnapshotStore | None = None
) -> pd.DataFrame:
    """``scan_users`` with the pool's EstimatedNumberOfUsers as it is now (one DescribeUserPool), so a large
    pool is read in shards and its progress bar has an ETA."""
    return _read_frame(cognito, pool_id, store, limiter, label)


def scan_users_sharded(
    cognito: Any,
    pool_id: str,
    limiter: RateLimiter | None = None,
    expected: int | None = None,
    label: str = "",
    workers: int = WORKERS,
) -> pd.DataFrame:
    """Every user of the pool, read as 16 shards (``sub ^= "0"`` ... ``"f"``) concurrently under the one
    shared budget, with ``attrs["completeness"]`` (see ``frame_of``)."""
    label = label or f"ListUsers {pool_id} (16 shards)"
    return _read_frame(cognito, pool_id, None, limiter, label, expected=expected, digits=1, workers=workers)


@contextlib.contextmanager
def read_once(
    cognito: Any,
    pool_id: str,
    limiter: RateLimiter | None = None,
    label: str = "",
    store: SnapshotStore | None = None,
    **options: Any,
) -> Iterator[Snapshot]:
    """``read_snapshot`` of the pool (its EstimatedNumberOfUsers cuts the shards) for a step that keeps no
    record of the read: the snapshot is deleted on the way out (a temporary store without ``store``). A read
    that stops part-way is kept in ``store`` for the next read to resume."""
    own = store or SnapshotStore.temporary()
    snap: Snapshot | None = None
    try:
        snap = read_snapshot(cognito, pool_id, own, limiter, label, **options)
        yield snap
    finally:
        if store is None:
            discard_store(own)
        else:
            release(snap)


def _read_frame(
    cognito: Any, pool_id: str, store: SnapshotStore | None, limiter: RateLimiter | None, label: str, **options: Any
) -> pd.DataFrame:
    with read_once(cognito, pool_id, limiter, label, store, **options) as snap:
        return frame_of(snap)


def list_groups(cognito: Any, pool_id: str, limiter: RateLimiter | None = None) -> list[dict[str, Any]]:
    """Every group (all pages: peers stop at the first 10)."""
    return list(paginate(cognito, "list_groups", "Groups", limiter, UserPoolId=pool_id))


def scan_memberships(
    cognito: Any, pool_id: str, group_names: list[str], limiter: RateLimiter | None = None, workers: int = WORKERS
) -> pd.DataFrame:
    """(group, username) for every member of every group, via ListUsersInGroup (``read_snapshot`` with
    ``groups`` reads them into the pool's snapshot; this reads them alone, through a temporary one)."""
    store = SnapshotStore.temporary()
    try:
        snap = open_snapshot(store, pool_id, (), 0, group_names).snapshot
        _Reader(cognito, snap, limiter, store.renew, workers, BATCH_ROWS).memberships()
        return snap.memberships()
    finally:
        discard_store(store)


def list_identity_providers(cognito: Any, pool_id: str) -> list[dict[str, Any]]:
    """Every identity provider of the pool, as the list call gives them (no details, no secrets)."""
    return list(paginate(cognito, "list_identity_providers", "Providers", UserPoolId=pool_id))


def list_resource_servers(cognito: Any, pool_id: str) -> list[dict[str, Any]]:
    """Every resource server (OAuth scopes) of the pool."""
    pages = {"PageSize": 50}  # the call's maximum
    return list(
        paginate(cognito, "list_resource_servers", "ResourceServers", UserPoolId=pool_id, PaginationConfig=pages)
    )


def list_clients(cognito: Any, pool_id: str) -> list[dict[str, Any]]:
    """Every app client with its full description (DescribeUserPoolClient: the list omits the settings)."""
    return [
        cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=c["ClientId"])["UserPoolClient"]
        for c in paginate(cognito, "list_user_pool_clients", "UserPoolClients", UserPoolId=pool_id)
    ]


# --- the read: shards (and groups) drained concurrently into the snapshot -------------------------------------


@dataclass
class _Reader:
    cognito: Any
    snap: Snapshot
    limiter: RateLimiter | None
    renew: str
    workers: int
    batch_rows: int

    @property
    def pool_id(self) -> str:
        return str(self.snap.manifest["pool_id"])

    def users(self, expected: int | None, label: str) -> None:
        """Drains every unfinished shard; each is sealed as it ends (a ListUsers stream, paged)."""
        snap, prefixes = self.snap, self.snap.prefixes
        todo = [p for p in prefixes if snap.done(p) is None]
        if not todo:
            return
        schema = snap.schema
        with _progress(expected, label, initial=snap.rows) as bar:
            tally = _Tally(bar, "shards", len(prefixes), len(prefixes) - len(todo), self.limiter)

            def read_shard(prefix: str, stop: threading.Event) -> None:
                writer = ShardWriter(snap, prefix, schema, self.batch_rows, unique="username")
                shard = {"Filter": f'sub ^= "{prefix}"'} if prefix else {}
                listed = pages(
                    self.cognito, "list_users", "Users", self.limiter, stop, UserPoolId=self.pool_id,
                    PaginationConfig=PAGE, **shard,
                )  # fmt: skip
                for page in listed:
                    for user in page:
                        writer.add(user_row(user))
                    bar.update(len(page))
                writer.finish()
                tally.one_done()

            failed = _run_all([functools.partial(read_shard, p) for p in todo], self.workers, "shard")
        if failed is not None:
            index, exc = failed
            self._stopped(f"shard {prefixes.index(todo[index]) + 1}/{len(prefixes)}", exc)

    def memberships(self) -> None:
        """Drains every unfinished group of the snapshot (each a ListUsersInGroup stream: the API has no filter
        to cut one; groups are read concurrently). No API gives their total: the bar has no ETA."""
        snap, groups = self.snap, self.snap.groups or []
        finished = snap.groups_finished()
        todo = [g for g in groups if g not in finished]
        if not todo:
            return
        initial = sum(int(d["rows"]) for d in finished.values())
        with progress_bar(desc="group memberships", unit="member", mininterval=2.0, initial=initial) as bar:
            tally = _Tally(bar, "groups", len(groups), len(finished), self.limiter, always=True)

            def read_group(group: str, stop: threading.Event) -> None:
                writer = MembershipWriter(snap, group, self.batch_rows)
                listed = pages(
                    self.cognito, "list_users_in_group", "Users", self.limiter, stop, UserPoolId=self.pool_id,
                    GroupName=group,
                )  # fmt: skip
                for page in listed:
                    for user in page:
                        writer.add({"group": group, "username": user["Username"]})
                    bar.update(len(page))
                writer.finish()
                tally.one_done()

            failed = _run_all([functools.partial(read_group, g) for g in todo], self.workers, "group")
        if failed is not None:
            index, exc = failed
            self._stopped(f"group {groups.index(todo[index]) + 1}/{len(groups)}", exc)

    def probe(self, operation: str) -> None:
        """One request of ``operation`` (ListUsers or ListUsersInGroup, a single user): are the credentials
        accepted again?"""
        if self.limiter is not None:
            self.limiter.acquire()
        if operation == "ListUsersInGroup" and self.snap.groups:
            self.cognito.list_users_in_group(UserPoolId=self.pool_id, GroupName=self.snap.groups[0], Limit=1)
        else:
            self.cognito.list_users(UserPoolId=self.pool_id, Limit=1)

    def _stopped(self, where: str, exc: BaseException) -> NoReturn:
        snap = self.snap
        kept = f"{len(snap.finished())} of {len(snap.prefixes)} shards ({snap.rows:,} users)"
        if snap.groups is not None:
            kept += f" and the memberships of {len(snap.groups_finished())} of {len(snap.groups)} groups"
        if credentials_expired(exc):
            operation = exc.operation_name if isinstance(exc, ClientError) else ""
            raise CredentialsExpired(
                f"credentials expired at {where} of {self.pool_id} ({error_code(exc) or type(exc).__name__}): "
                f"{self.renew}, then run the step again: it resumes {snap.folder} with the {kept} already read",
                operation,
                where,
                kept,
            ) from exc
        exc.add_note(
            f"the read of {self.pool_id} stopped at {where}; {kept} are kept in {snap.folder}: run the step again "
            "to resume with them"
        )
        raise exc


Job = Callable[[threading.Event], None]  # one shard's (or group's) read; its listing stops once the event is set


def _run_all(jobs: Sequence[Job], workers: int, name: str) -> tuple[int, BaseException] | None:
    """Runs ``jobs`` ``workers`` at a time. At the first failure the others stop before their next request
    (their shards stay unfinished) and the ones not started never start; returns that job's index and its
    error, or None. An interrupt of the waiting thread (a notebook's stop button) stops them the same way."""
    stop = threading.Event()
    failures: list[tuple[int, BaseException]] = []
    lock = threading.Lock()

    def guarded(index: int, job: Job) -> None:
        if stop.is_set():
            return
        try:
            job(stop)
        except Stopped:
            pass  # told to stop by another job's failure, which is the one reported
        except Exception as exc:  # every error of a job is the read's: kept and re-raised by the caller
            with lock:
                failures.append((index, exc))
            stop.set()

    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    try:
        for future in [executor.submit(guarded, i, job) for i, job in enumerate(jobs)]:
            future.result()
    except BaseException:
        stop.set()
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    return failures[0] if failures else None


class _Tally:
    """The bar's postfix: shards (or groups) finished of all, how many a resume kept, the budget's ceiling."""

    def __init__(
        self, bar: Any, noun: str, total: int, kept: int, limiter: RateLimiter | None, always: bool = False
    ) -> None:
        self.bar, self.noun, self.total, self.kept, self.done = bar, noun, total, kept, kept
        self.shown = always or total > 1  # one paginator's bar shows the budget alone, as it always did
        self.ceiling = _ceiling(limiter)
        self._lock = threading.Lock()
        self._show()

    def one_done(self) -> None:
        with self._lock:
            self.done += 1
            self._show()

    def _show(self) -> None:
        parts = [f"{self.done}/{self.total} {self.noun}" + (f" ({self.kept} resumed)" if self.kept else "")]
        text = "; ".join([*(parts if self.shown else []), *([self.ceiling] if self.ceiling else [])])
        self.bar.set_postfix_str(text, refresh=False)


def _ceiling(limiter: RateLimiter | None) -> str:
    return f"budget {limiter.rate:g} pages/s = {limiter.rate * 60:,.0f} users/s max" if limiter else ""


def _progress(expected: int | None, label: str, initial: int = 0) -> Any:
    # EstimatedNumberOfUsers is approximate: the ETA is too, and the bar may end a little short or over.
    return progress_bar(total=expected, desc=label, unit="user", mininterval=2.0, initial=initial)
