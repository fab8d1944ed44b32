"""The generator's truth about a virtual pool, by arithmetic on its layout (``virtual_users``), never by listing
its users: what a whole read of the pool must find, for benchmarks and tests to check their counts against."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .legacy import GROUP_NAMES
from .virtual_users import (
    CUSTOM_SLOTS,
    GROUP_SLOTS,
    NAME_SLOTS,
    PAIR_BLOCK,
    SHARD_PERIOD,
    STATE_SLOTS,
    SUB_DIGITS,
    VirtualUsers,
)


def in_class(count: int, residue: int, modulus: int) -> int:
    """How many of 0 .. count-1 are ``residue`` mod ``modulus``."""
    return (count - residue + modulus - 1) // modulus if residue < count else 0


@dataclass(frozen=True)
class Truth:
    """What a complete read of a virtual pool of ``users`` users made with ``seed`` finds."""

    users: int
    seed: int
    shards: dict[str, int] = field(repr=False)  # users per sub prefix: "0".."f" and "00".."ff"
    statuses: dict[str, int]  # UserStatus -> users
    quirks: dict[str, int]  # the legacy generator's quirk names (legacy.quirk_quotas) -> users
    groups: dict[str, int]  # group -> members
    disabled: int  # Enabled false
    legacy_sms_mfa: int  # users whose ListUsers entry carries MFAOptions (SMS)

    @property
    def memberships(self) -> int:
        return sum(self.groups.values())


def users_with_sub_prefix(users: VirtualUsers, prefix: str) -> int:
    """How many users' subs start with ``prefix`` (up to 8 hex digits; 0 for what no sub starts with)."""
    if len(prefix) > SUB_DIGITS:
        raise ValueError(f"count users by the sub's first {SUB_DIGITS} hex digits at most, not {prefix!r}")
    residue = users.residue_of_sub_prefix(prefix)
    return 0 if residue is None else in_class(users.users, residue, 16 ** len(prefix))


def truth(users: int, seed: int = 7) -> Truth:
    """The counts of a virtual pool of ``users`` users made with ``seed``, in O(256 x 200) steps whatever N."""
    pool = VirtualUsers(users, seed)
    shards = {f"{p:0{d}x}": users_with_sub_prefix(pool, f"{p:0{d}x}") for d in (1, 2) for p in range(16**d)}
    slots = _state_slot_counts(pool)
    statuses: Counter[str] = Counter()
    quirks: Counter[str] = Counter()
    disabled = 0
    for slot, count in enumerate(slots):
        state = pool.states[slot]
        statuses[state.status] += count
        disabled += 0 if state.enabled else count
        for quirk in state.quirks:
            quirks[quirk] += count
    quirks["missing_name"] = _rows_in_slot(pool, "name", NAME_SLOTS)
    quirks["no_custom_attributes"] = _rows_in_slot(pool, "custom", CUSTOM_SLOTS)
    quirks["case_duplicate_username"] = quirks["case_duplicate_email"] = 2 * (users // PAIR_BLOCK)
    members: Counter[str] = Counter()
    for slot, names in enumerate(pool.group_slots):
        count = in_class(users, slot, GROUP_SLOTS)
        quirks["multi_group"] += count if len(names) > 1 else 0
        for name in names:
            members[name] += count
    return Truth(
        users=users,
        seed=seed,
        shards=shards,
        statuses=dict(statuses),
        quirks=dict(quirks),
        groups={name: members[name] for name in GROUP_NAMES},
        disabled=disabled,
        legacy_sms_mfa=quirks["sms_mfa"],
    )


def _state_slot_counts(pool: VirtualUsers) -> list[int]:
    """Users per state slot: shard r's rows 0 .. K-1 fall in slots (row + offset[r]) mod 200."""
    cycles, counts = 0, [0] * STATE_SLOTS
    for shard, offset in enumerate(pool.offsets["state"]):
        full, partial = divmod(in_class(pool.users, shard, SHARD_PERIOD), STATE_SLOTS)
        cycles += full
        for row in range(partial):
            counts[(row + offset) % STATE_SLOTS] += 1
    return [count + cycles for count in counts]


def _rows_in_slot(pool: VirtualUsers, kind: str, slots: int) -> int:
    """Users whose ``kind`` slot ((row + offset) mod slots) is 0."""
    return sum(
        in_class(in_class(pool.users, shard, SHARD_PERIOD), (-offset) % slots, slots)
        for shard, offset in enumerate(pool.offsets[kind])
    )
