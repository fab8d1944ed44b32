"""A legacy pool of any size as a snapshot on disk, written batch by batch: never a list of every user.

For the tests and benchmarks of the largest pools, which need millions of users without a pool to read them
from. Each user is the row step 1 reads (ListUsers' item, as moto answers it, through ``scan.user_row``).
Batch i holds the users of ``legacy.generate_users(batch, seed + i % distinct)``, so every batch carries the
generator's exact quirk shares; from the second batch on, usernames and email mailboxes end with the batch's
tag (``james.smith42.b3``, ``James.Smith42.b3@example.com``: the case duplicates stay case duplicates), E.164
phone numbers with its number (``+155512345670003``, still E.164) and every sub is new, so users stay as
unique as within one batch. Generating a batch costs ten times what writing it does: only ``distinct``
batches are generated, the others are those again under another tag.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .. import scan, snapshot
from ..snapshot import STANDARD_ATTRIBUTES
from ..user_findings import E164
from .legacy import LegacyUser, generate_users

# Every attribute of the legacy pool's schema, as ListUsers names them (legacy.pool_config declares these).
ATTRIBUTES = (*STANDARD_ATTRIBUTES, "custom:tier", "custom:signup_year")
MEMBERSHIPS = pa.schema([("group", pa.string()), ("username", pa.string())])


def user_row(user: LegacyUser) -> dict[str, Any]:
    """The user as step 1 reads it: ListUsers' item (as moto answers it: no MFAOptions) through scan.user_row."""
    attributes = {**user.attributes, "sub": user.sub}
    return scan.user_row(
        {
            "Username": user.username,
            "Attributes": [{"Name": name, "Value": value} for name, value in attributes.items()],
            "UserStatus": user.status,
            "Enabled": user.enabled,
            "UserCreateDate": user.created_at,
            "MFAOptions": [],
        }
    )


Generated = tuple[dict[str, Any], tuple[str, ...]]  # a user's row, and the groups it is in


def users(count: int, seed: int = 7, batch: int = 50_000, distinct: int = 4) -> Iterator[list[Generated]]:
    """``count`` users in lists of at most ``batch``; the first list is ``generate_users(min(count, batch),
    seed)``'s users exactly."""
    generated: dict[int, list[Generated]] = {}
    for i, start in enumerate(range(0, count, batch)):
        size = min(batch, count - start)
        if i == 0:
            yield [(user_row(u), u.groups) for u in generate_users(size, seed)]
            continue
        base = i % distinct
        if base not in generated:
            generated[base] = [(user_row(u), u.groups) for u in generate_users(batch, seed + base)]
        subs = random.Random(seed * 1_000_003 + i)
        yield [(retagged(row, i, subs), groups) for row, groups in generated[base][:size]]


def retagged(row: dict[str, Any], batch: int, subs: random.Random) -> dict[str, Any]:
    """The row of batch ``batch``: its tag after the username and the email's mailbox, its number after an
    E.164 phone number, and a new sub drawn from ``subs``."""
    tag = f".b{batch}"
    mailbox, at, domain = (row.get("email") or "").partition("@")
    phone = row.get("phone_number")
    return {
        **row,
        "username": row["username"] + tag,
        "email": f"{mailbox}{tag}@{domain}" if at else row.get("email"),
        "phone_number": f"{phone}{batch:04d}" if phone and E164.match(phone) else phone,
        "sub": str(uuid.UUID(int=subs.getrandbits(128), version=4)),
    }


def write(
    folder: Path,
    count: int,
    seed: int = 7,
    batch: int = 50_000,
    shard_digits: int = 1,
    part_rows: int = 10_000,
    memberships: Path | None = None,
) -> snapshot.Snapshot:
    """A finished snapshot of ``count`` generated users in ``folder``, written through the shards' writers as
    the batches come: memory bounded by a few batches, whatever ``count``. With ``memberships``, their
    (group, username) rows go there as Parquet, as ListUsersInGroup would give them."""
    snap = snapshot.create(folder, "legacy", ATTRIBUTES, shard_digits)
    schema = snap.schema
    writers = {p: snapshot.ShardWriter(snap, p, schema, part_rows) for p in snap.prefixes}
    with contextlib.ExitStack() as stack:
        members = stack.enter_context(pq.ParquetWriter(memberships, MEMBERSHIPS)) if memberships else None
        for batch_users in users(count, seed, batch):
            for row, _ in batch_users:
                writers[row["sub"][:shard_digits]].add(row)
            if members is not None:
                pairs = [(group, row["username"]) for row, groups in batch_users for group in groups]
                columns = {"group": [g for g, _ in pairs], "username": [u for _, u in pairs]}
                members.write_table(pa.table(columns, schema=MEMBERSHIPS))
    for writer in writers.values():
        writer.finish()
    return snap
