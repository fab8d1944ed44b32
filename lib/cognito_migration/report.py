"""Step 5: who has migrated and who has not.

Both pools are read once with paged ListUsers calls; the comparison is vectorised (pandas over Arrow
strings) on usernames normalised to the new pool's case rules, so a million users per pool take about a
second (benchmarks/report_bench.py). Every old-pool user is exactly one of: migrated, not yet, or cannot
migrate lazily (with the reason). New-pool users that never existed in the old pool are counted apart.
Breakdowns by group, status, MFA and creation cohort each add up to the same totals, and a check says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Figures are built with matplotlib.figure.Figure, never pyplot: the operator's kernel keeps its own backend,
# and a figure nobody registered with pyplot is freed with its last reference. Notebooks show the saved PNG.
from matplotlib.figure import Figure

from . import identity
from .checks import Check
from .params import Params
from .records import Masker, now_iso, save_figure, save_frame, save_json
from .trigger import migration_trigger

MIGRATED, NOT_YET, CANNOT = "migrated", "not yet", "cannot migrate lazily"
CATEGORIES = (MIGRATED, NOT_YET, CANNOT)
COLORS = {MIGRATED: "#2e7d32", NOT_YET: "#f9a825", CANNOT: "#c62828"}
# In precedence order: a user matching several conditions gets the first reason.
REASONS = (
    "username differs only by case from a migrated user",
    "disabled in the old pool",
    "unconfirmed: the old pool refuses the sign-in",
    "temporary password, no verified email or phone",
    "federated user: signs in through its identity provider",
    "no verified email or phone number: the new pool signs in with one",
    "MFA user and mfa_policy is refuse",
    "username is an email address, which a pool with email aliases takes from no one as a username",
    "its verified email or phone number is a migrated user's alias in the new pool",
)
MFA_REFUSED = REASONS[6]
# Stand-ins for a missing name (see ``identity.names``): they never equal each other, nor any real name.
NO_OLD_NAME, NO_NEW_NAME = "\x00no name (old pool)", "\x00no name (new pool)"
NO_GROUP = "(no group)"
SNAPSHOT_COLUMNS = ("username", "status", "enabled", "created", "cohort", "mfa", "groups", "state", "reason")


def normalise(usernames: pd.Series, case_sensitive: bool) -> pd.Series:
    """Usernames as the new pool compares them: unchanged, or case-folded."""
    return pd.Series(_keys(usernames, case_sensitive), index=usernames.index, dtype="str")


def _arrow(values: pd.Series) -> pa.Array:
    """The column as an Arrow string array, without a copy when it already is one."""
    if isinstance(values.array, pd.arrays.ArrowStringArray):
        return pa.array(values.array)
    return pa.array(values.astype("str").array)


def _keys(usernames: pd.Series, case_sensitive: bool) -> pa.Array:
    names = _arrow(usernames)
    if case_sensitive or len(names) == 0:
        return names
    folded = pc.utf8_lower(names)  # Arrow's C++ kernel: fast, and exact for ASCII
    non_ascii = np.flatnonzero(~pc.string_is_ascii(names).to_numpy(zero_copy_only=False))
    if len(non_ascii) == 0:
        return folded
    # str.casefold handles what lowercasing does not ("Straße" == "STRASSE"); only non-ASCII names need it.
    keys = folded.to_pandas()
    keys.iloc[non_ascii] = [names[int(i)].as_py().casefold() for i in non_ascii]
    return pa.array(keys, type=folded.type)


def sign_in_names(
    old_users: pd.DataFrame, new_users: pd.DataFrame, sign_in: Sequence[str]
) -> tuple[pd.Series, pd.Series]:
    """Each pool's users by the name that links them in the new pool's sign-in model (``identity.names``),
    a missing one replaced by a stand-in that matches nothing."""
    if not sign_in:  # usernames: never missing, and kept as they are (Arrow strings stay zero-copy)
        return old_users["username"], new_users.get("username", pd.Series([], dtype=object))
    if new_users.empty:
        return _names(old_users, sign_in, True), pd.Series([], dtype=object)
    return _names(old_users, sign_in, True), _names(new_users, sign_in, False)


def _names(users: pd.DataFrame, sign_in: Sequence[str], old_pool: bool) -> pd.Series:
    if old_pool:  # the trigger finds old users by verified values only
        return identity.names(users, sign_in, verified_only=True).fillna(NO_OLD_NAME)
    return identity.names(users, sign_in, verified_only=False).fillna(NO_NEW_NAME)


def matching_keys(users: pd.DataFrame, case_sensitive: bool, sign_in: Sequence[str], old_pool: bool) -> pa.Array:
    """The key ``classify`` matches each user of one pool by (its sign-in name, folded), for partitioning a
    pool by key: users who share a key always land together. A user without a name matches nobody, so the
    key given to it is its username behind a NUL, which no name has: such users spread instead of piling up."""
    if not sign_in or len(users) == 0:
        return _keys(users["username"], case_sensitive)
    names = _names(users, sign_in, old_pool)
    keys = _keys(names, case_sensitive)
    missing = (names == (NO_OLD_NAME if old_pool else NO_NEW_NAME)).to_numpy(dtype=bool)
    if not missing.any():
        return keys
    text = pa.large_string()  # one string type for the kernels below
    spread = pc.binary_join_element_wise(
        pa.scalar("\x00", text), _arrow(users["username"]).cast(text), pa.scalar("", text)
    )
    return pc.if_else(pa.array(missing), spread, keys.cast(text))


def classify(
    old_users: pd.DataFrame,
    new_users: pd.DataFrame,
    case_sensitive: bool,
    sign_in: Sequence[str] = (),
    *,
    mfa_policy: str = "reset_required",
    pool_mfa: str | None = None,
    aliases: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per old-pool user with ``state`` (migrated / not yet / cannot migrate lazily) and ``reason``.
    Users are matched by username, or, in a new pool that signs in by email or phone number (``sign_in``,
    its UsernameAttributes), by the verified email or phone number the trigger found them by.
    ``mfa_policy`` and the old pool's MfaConfiguration (``pool_mfa``) say who the trigger refuses for MFA;
    the new pool's AliasAttributes (``aliases``) who it refuses as an alias pool does (``alias_refusals``)."""
    old_raw, new_raw = sign_in_names(old_users, new_users, sign_in)
    old_names = _arrow(old_raw)
    old_keys = _keys(old_raw, case_sensitive)
    new_names = _arrow(new_raw) if len(new_users) else pa.array([], type=old_names.type)
    position = pc.index_in(old_keys, value_set=_keys(new_raw, case_sensitive) if len(new_users) else new_names)
    found = position.is_valid().to_numpy(zero_copy_only=False)
    exact = pc.fill_null(pc.equal(pc.take(new_names, position), old_names), False).to_numpy(zero_copy_only=False)
    # A key held by one old user can only be that user, whatever case it signed in with; a key shared by
    # case variants belongs to the one whose exact name is in the new pool.
    shared = _shared_keys(old_keys, found & ~exact)
    migrated = exact | (found & ~shared)
    taken = found & ~migrated
    is_email, held = alias_refusals(old_users, migrated, aliases, case_sensitive)
    status = _arrow(old_users["status"].fillna(""))
    no_contact = ~(_verified(old_users, "email") | _verified(old_users, "phone_number"))
    conditions = [
        taken,
        ~old_users["enabled"].astype(bool).to_numpy(),
        _equals(status, "UNCONFIRMED"),
        _equals(status, "FORCE_CHANGE_PASSWORD") & no_contact,
        _equals(status, "EXTERNAL_PROVIDER"),
        (old_raw == NO_OLD_NAME).to_numpy(dtype=bool),
        mfa_refused(old_users, mfa_policy, pool_mfa),
        is_email,
    ]
    reason_code = np.where(migrated, 0, np.select(conditions, range(1, len(REASONS)), default=0))
    state_code = np.where(migrated, 0, np.where(reason_code > 0, 2, 1))
    classified = old_users.assign(
        state=pd.Categorical.from_codes(state_code, categories=pd.Index(CATEGORIES)),
        reason=pd.Categorical.from_codes(reason_code, categories=pd.Index(["", *REASONS])),
    )
    return refuse_held(classified, held)


def refuse_held(classified: pd.DataFrame, held: np.ndarray) -> pd.DataFrame:
    """The last reason, applied: a ``held`` user (``alias_refusals``) cannot migrate lazily unless an earlier
    reason already says so or it migrated, i.e. only users still 'not yet'. ``classify`` applies it to the
    users it holds; a comparison out of core applies it again with what other users' partitions hold."""
    hit = held & (classified["state"] == NOT_YET).to_numpy(dtype=bool)
    if not hit.any():
        return classified
    state, reason = classified["state"].cat.codes.to_numpy().copy(), classified["reason"].cat.codes.to_numpy().copy()
    state[hit], reason[hit] = CATEGORIES.index(CANNOT), len(REASONS)
    return classified.assign(
        state=pd.Categorical.from_codes(state, categories=pd.Index(CATEGORIES)),
        reason=pd.Categorical.from_codes(reason, categories=pd.Index(["", *REASONS])),
    )


def alias_refusals(
    users: pd.DataFrame, migrated: np.ndarray, aliases: Sequence[str], case_sensitive: bool
) -> tuple[np.ndarray, np.ndarray]:
    """In a new pool with aliases: users whose username is an email address (the trigger refuses them when
    the pool takes email aliases), and users whose verified email or phone number a migrated user already
    holds as an alias (Cognito refuses the second: AliasExistsException, and so would the import)."""
    is_email = np.zeros(len(users), dtype=bool)
    if "email" in aliases:
        # what the trigger itself takes for an email address: one pattern, the trigger's
        is_email = users["username"].astype(str).str.match(migration_trigger.EMAIL.pattern).to_numpy(dtype=bool)
    held = np.zeros(len(users), dtype=bool)
    for attribute in alias_contacts(users, aliases):
        values = alias_values(users, attribute, case_sensitive)
        taken = set(values[migrated].dropna())
        held |= (values.isin(taken) & ~migrated).to_numpy(dtype=bool)
    return is_email, held


def alias_contacts(users: pd.DataFrame, aliases: Sequence[str]) -> tuple[str, ...]:
    """The contact attributes a user can hold as an alias in the new pool (``aliases``), that ``users`` have."""
    return tuple(a for a in ("email", "phone_number") if a in aliases and a in users.columns)


def alias_values(users: pd.DataFrame, attribute: str, case_sensitive: bool) -> pd.Series:
    """Each user's verified ``attribute`` as the new pool compares aliases (folded; None when unverified)."""
    return identity.fold(identity.names(users, (attribute,), verified_only=True), case_sensitive)


def mfa_refused(users: pd.DataFrame, mfa_policy: str, pool_mfa: str | None) -> np.ndarray:
    """Users the trigger refuses under ``mfa_policy`` refuse, as far as ListUsers shows: everyone when the old
    pool's MFA is ON (a user without a factor is made to set one up); when OPTIONAL (or unknown), the users
    with the legacy SMS option (MFAOptions); when OFF, nobody. TOTP and the newer SMS setting are invisible to
    ListUsers (only AdminGetUser, billed per user, shows them): those users are counted not yet, and the
    trigger refuses them all the same."""
    if mfa_policy != "refuse" or pool_mfa == "OFF":
        return np.zeros(len(users), dtype=bool)
    if pool_mfa == "ON":
        return np.ones(len(users), dtype=bool)
    if "legacy_sms_mfa" not in users.columns:
        return np.zeros(len(users), dtype=bool)
    return users["legacy_sms_mfa"].fillna(False).astype(bool).to_numpy()


def mfa_note(mfa_policy: str, pool_mfa: str | None) -> str:
    """What the count of MFA refusals can and cannot see, for the report's reader."""
    if mfa_policy != "refuse":
        return f"mfa_policy {mfa_policy}: the trigger refuses nobody for MFA"
    if pool_mfa == "OFF":
        return "mfa_policy refuse, old pool MFA OFF: the old pool asks nobody for a second factor; nobody is refused"
    if pool_mfa == "ON":
        return "mfa_policy refuse, old pool MFA ON: every user has a second factor to pass, so the trigger refuses all"
    return (
        f"mfa_policy refuse, old pool MFA {pool_mfa or 'unknown'}: counted are the users ListUsers shows with the "
        "legacy SMS option (MFAOptions); other factors (TOTP, the newer SMS setting) are invisible to ListUsers, "
        "so some users counted 'not yet' will be refused too"
    )


def _shared_keys(keys: pa.Array, candidates: np.ndarray) -> np.ndarray:
    """Which rows' key is held by more than one old-pool user; only ``candidates`` (found in the new pool
    under another spelling, usually a handful) can need it, so only their keys are counted."""
    if not candidates.any():
        return np.zeros(len(keys), dtype=bool)
    wanted = keys.filter(pa.array(candidates))
    rows = np.flatnonzero(pc.is_in(keys, value_set=wanted).to_numpy(zero_copy_only=False))
    subset = pd.Series(keys.take(pa.array(rows)).to_numpy(zero_copy_only=False), index=rows)
    shared = np.zeros(len(keys), dtype=bool)
    shared[subset.index[subset.duplicated(keep=False)]] = True
    return shared


def _equals(values: pa.Array, text: str) -> np.ndarray:
    return pc.fill_null(pc.equal(values, text), False).to_numpy(zero_copy_only=False)


def _verified(users: pd.DataFrame, contact: str) -> np.ndarray:
    if contact not in users.columns or f"{contact}_verified" not in users.columns:
        return np.zeros(len(users), dtype=bool)
    return (users[contact].notna() & (users[f"{contact}_verified"] == "true")).to_numpy(dtype=bool)


def sign_ups(
    old_users: pd.DataFrame, new_users: pd.DataFrame, case_sensitive: bool, sign_in: Sequence[str] = ()
) -> pd.DataFrame:
    """New-pool users with no old-pool user of the same (normalised) name in the new pool's sign-in model."""
    if new_users.empty:
        return new_users
    old_raw, new_raw = sign_in_names(old_users, new_users, sign_in)
    in_old = pc.is_in(_keys(new_raw, case_sensitive), value_set=_keys(old_raw, case_sensitive))
    return new_users[~in_old.to_numpy(zero_copy_only=False)]


def last_lazy_migration(
    old_users: pd.DataFrame,
    new_users: pd.DataFrame,
    case_sensitive: bool,
    imports: Sequence[tuple[pd.Timestamp, pd.Timestamp]] = (),
    sign_in: Sequence[str] = (),
) -> pd.Timestamp | None:
    """UserCreateDate of the newest new-pool user that came from the old pool lazily: sign-ups excluded, and
    users created while one of ``imports`` (a user import job's start and end) ran, which the cutover brought
    (a lazy migration in those few minutes is taken for an import)."""
    if new_users.empty or "created" not in new_users.columns:
        return None
    came_over = new_users.drop(index=sign_ups(old_users, new_users, case_sensitive, sign_in).index)
    created = pd.to_datetime(came_over["created"], utc=True)
    for start, end in imports:
        created = created[(created < start) | (created > end)]
    newest = created.max()
    return None if pd.isna(newest) else newest


@dataclass(frozen=True)
class Comparison:
    """The two pools compared as the trigger sees them: every old user's state, the sign-ups, and when the
    newest lazy migration happened."""

    classified: pd.DataFrame
    sign_ups: pd.DataFrame
    last_migration: pd.Timestamp | None


def compare(
    old_users: pd.DataFrame,
    new_users: pd.DataFrame,
    params: Params,
    old_pool: Mapping[str, Any],
    new_pool: Mapping[str, Any],
    imports: Sequence[tuple[pd.Timestamp, pd.Timestamp]] = (),
) -> Comparison:
    """``classify``, ``sign_ups`` and ``last_lazy_migration`` with everything the pools and the parameters say
    about whom the trigger takes: the new pool's sign-in model and aliases, the case rule, the MFA policy and
    the old pool's MFA. Step 5 and step 6 compare through this one function, so they never disagree."""
    sign_in = identity.sign_in_attributes(new_pool)
    case_sensitive = params.target_case_sensitive
    classified = classify(
        old_users,
        new_users,
        case_sensitive,
        sign_in,
        mfa_policy=params.mfa_policy,
        pool_mfa=old_pool.get("MfaConfiguration"),
        aliases=identity.alias_attributes(new_pool),
    )
    return Comparison(
        classified,
        sign_ups(old_users, new_users, case_sensitive, sign_in),
        last_lazy_migration(old_users, new_users, case_sensitive, imports, sign_in),
    )


def summary(classified: pd.DataFrame) -> pd.DataFrame:
    """Counts and shares per state; the counts add up to the number of old-pool users."""
    return state_table(state_counts(classified))


def state_counts(classified: pd.DataFrame) -> dict[str, int]:
    """Users per state, every state named (0 when none): what ``summary`` shows, summable across parts."""
    counts = classified["state"].value_counts().reindex(list(CATEGORIES), fill_value=0)
    return {str(state): int(users) for state, users in counts.items()}


def state_table(counts: Mapping[str, int]) -> pd.DataFrame:
    """``summary`` of users counted per state."""
    users = [int(counts.get(state, 0)) for state in CATEGORIES]
    total = sum(users)
    return pd.DataFrame(
        {
            "state": list(CATEGORIES),
            "users": users,
            "share": [round(100 * v / total, 1) if total else 0.0 for v in users],
        }
    )


def by_reason(classified: pd.DataFrame) -> pd.DataFrame:
    """Users who cannot migrate lazily, per reason: the most first (ties in precedence order)."""
    return reason_table(reason_counts(classified))


def reason_counts(classified: pd.DataFrame) -> dict[str, int]:
    """Users who cannot migrate lazily, per reason they have (summable across parts)."""
    cannot = classified.loc[classified["state"] == CANNOT, "reason"].astype(str)
    return {str(reason): int(users) for reason, users in cannot.value_counts().items()}


def reason_table(counts: Mapping[str, int]) -> pd.DataFrame:
    """``by_reason`` of users counted per reason."""
    order = sorted((r for r in counts if counts[r]), key=lambda r: (-counts[r], _precedence(r)))
    table = pd.DataFrame({"reason": order, "users": [int(counts[r]) for r in order]})
    return table.astype({"reason": "str", "users": "int64"})


def _precedence(reason: str) -> int:
    return REASONS.index(reason) if reason in REASONS else len(REASONS)


# --- breakdowns ------------------------------------------------------------------------------------------


def cohorts(created: pd.Series) -> pd.Series:
    """Creation cohort of each user, e.g. '2019Q3' (year and quarter of UserCreateDate)."""
    stamps = pd.to_datetime(created, utc=True)
    codes = (stamps.dt.year * 10 + stamps.dt.quarter).astype("Int64")
    labels = {c: f"{c // 10}Q{c % 10}" for c in codes.dropna().unique()}
    return codes.map(labels).fillna("unknown").astype("category")


def mfa_visibility(users: pd.DataFrame, pool_mfa: str | None) -> pd.Series:
    """What ListUsers lets us know of each user's MFA. Per-user factors are only in AdminGetUser (billed per
    user), so with optional MFA all we see is the legacy SMS setting (MFAOptions)."""
    if pool_mfa == "OFF":
        label = np.full(len(users), "none (MFA off in the pool)", dtype=object)
    elif pool_mfa == "ON":
        label = np.full(len(users), "required by the pool", dtype=object)
    else:
        sms = users["legacy_sms_mfa"].fillna(False).astype(bool) if "legacy_sms_mfa" in users else False
        label = np.where(sms, "SMS (MFAOptions)", "unknown: not visible to ListUsers")
    return pd.Series(label, index=users.index, dtype="category")


def group_lists(users: pd.DataFrame, memberships: pd.DataFrame) -> pd.Series:
    """Each user's groups as one sorted, comma-separated string ('' for none)."""
    if memberships.empty:
        return pd.Series("", index=users.index, dtype="str")
    # Arrow's kernels: a Python join per user takes seconds per 100,000 users. Sorted by group first, each
    # user's list keeps that order (grouping without threads keeps the rows' order).
    members = pa.table({"username": _arrow(memberships["username"]), "group": _arrow(memberships["group"])})
    lists = members.sort_by("group").group_by("username", use_threads=False).aggregate([("group", "list")])
    joined = pc.binary_join(lists["group_list"], pa.scalar(", ", lists["group_list"].type.value_type))
    found = pc.take(joined, pc.index_in(_arrow(users["username"]), value_set=lists["username"]))
    return pd.Series(pc.fill_null(found, "").to_numpy(zero_copy_only=False), index=users.index, dtype="str")


def enrich(classified: pd.DataFrame, memberships: pd.DataFrame, pool_mfa: str | None) -> pd.DataFrame:
    """Adds the columns the breakdowns use: cohort, mfa, groups."""
    created = classified["created"] if "created" in classified else pd.Series(pd.NaT, index=classified.index)
    return classified.assign(
        cohort=cohorts(created),
        mfa=mfa_visibility(classified, pool_mfa),
        groups=group_lists(classified, memberships),
    )


def breakdown(classified: pd.DataFrame, column: str) -> pd.DataFrame:
    """Users per value of ``column`` and state, with a total and the migrated share per row."""
    return _crosstab(classified[column].astype(str), classified["state"], column)


def by_status(classified: pd.DataFrame) -> pd.DataFrame:
    """States broken down by the old pool's user status."""
    return breakdown(classified, "status")


def by_group(classified: pd.DataFrame, memberships: pd.DataFrame) -> pd.DataFrame:
    """States per group (a user in three groups counts in each), plus a row for the users in no group."""
    position = _member_positions(classified, memberships)
    known = position.is_valid().to_numpy(zero_copy_only=False)
    state = classified["state"].astype(str)
    member_states = pd.Series(state.to_numpy()[position.drop_null().to_numpy()])
    grouped = pc.is_in(_arrow(classified["username"]), value_set=_arrow(memberships["username"][known]))
    alone = state[~grouped.to_numpy(zero_copy_only=False)]
    members = memberships["group"][known].astype(str)
    keys = pd.concat([members, pd.Series(NO_GROUP, index=alone.index)], ignore_index=True)
    states = pd.concat([member_states, alone], ignore_index=True)
    return _crosstab(keys, states.astype(pd.CategoricalDtype(list(CATEGORIES))), "group")


def _member_positions(classified: pd.DataFrame, memberships: pd.DataFrame) -> pa.Array:
    """Each membership's user's row in ``classified`` (null: a user the pool no longer has), by Arrow's hash
    look-up: pandas' isin on Arrow strings goes through Python lists."""
    return pc.index_in(_arrow(memberships["username"]), value_set=_arrow(classified["username"]))


def _crosstab(keys: pd.Series, states: pd.Series, name: str) -> pd.DataFrame:
    table = (
        pd.DataFrame({name: keys.to_numpy(), "state": states.to_numpy()})
        .groupby([name, "state"], observed=False)
        .size()
        .unstack("state", fill_value=0)
        .reindex(columns=list(CATEGORIES), fill_value=0)
    )
    return _with_totals(table).reset_index().rename_axis(columns=None)


def _with_totals(table: pd.DataFrame) -> pd.DataFrame:
    """Rows with some user, each with its total and migrated share."""
    table = table[table.sum(axis=1) > 0].astype(int)
    table["users"] = table.sum(axis=1)
    table["migrated %"] = (100 * table[MIGRATED] / table["users"]).round(1)
    return table


def breakdowns(classified: pd.DataFrame, memberships: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every breakdown of an ``enrich``ed classification, by name."""
    return {
        "status": breakdown(classified, "status"),
        "group": by_group(classified, memberships),
        "mfa": breakdown(classified, "mfa"),
        "cohort": breakdown(classified, "cohort"),
    }


def combine(parts: Sequence[Mapping[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """The breakdowns of users split into parts (no user in two), from each part's: the same tables as
    ``breakdowns`` of all of them at once."""
    combined = {}
    for name in parts[0] if parts else ():
        tables = [part[name] for part in parts]
        column = tables[0].columns[0]
        summed = pd.concat(tables, ignore_index=True).groupby(column)[list(CATEGORIES)].sum()
        combined[name] = _with_totals(summed).reset_index().rename_axis(columns=None)
    return combined


# --- checks and records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """What ``verify`` checks the tables against, counted over the classified users (or summed over parts
    holding no user twice): users per state, whether no username repeats, and, with the memberships, how many
    belong to classified users and how many of those users are in some group."""

    states: Mapping[str, int]
    unique: bool
    memberships: int | None = None
    in_some_group: int | None = None

    def __add__(self, other: Tally) -> Tally:
        def plus(a: int | None, b: int | None) -> int | None:
            return None if a is None or b is None else a + b

        return Tally(
            {s: self.states.get(s, 0) + other.states.get(s, 0) for s in CATEGORIES},
            self.unique and other.unique,
            plus(self.memberships, other.memberships),
            plus(self.in_some_group, other.in_some_group),
        )


def tally(classified: pd.DataFrame, memberships: pd.DataFrame | None = None) -> Tally:
    unique = bool(classified["username"].is_unique)
    if memberships is None:
        return Tally(state_counts(classified), unique)
    known = _member_positions(classified, memberships).is_valid()
    users = pc.count_distinct(pc.filter(_arrow(memberships["username"]), known)).as_py()
    return Tally(state_counts(classified), unique, int(pc.sum(known).as_py() or 0), int(users))


def verify(
    classified: pd.DataFrame,
    old_users: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame] | None = None,
    memberships: pd.DataFrame | None = None,
) -> list[Check]:
    """Every old-pool user is counted exactly once, and every breakdown adds up to the same totals."""
    return verify_tally(tally(classified, memberships), len(old_users), tables)


def verify_tally(counted: Tally, read: int, tables: Mapping[str, pd.DataFrame] | None = None) -> list[Check]:
    """``verify`` of users counted (``tally``) against the ``read`` old-pool users."""
    totals = counted.states
    users = sum(totals.values())
    result = [
        Check(
            "every old-pool user counted once",
            users == read and counted.unique,
            "blocker",
            f"{users} counted, {read} read",
            "re-run the report: a page was lost",
        )
    ]
    for name, table in (tables or {}).items():
        if name == "group":
            adds_up, detail = _group_adds_up(users, table, counted)
        else:
            sums = table[list(CATEGORIES)].sum()
            adds_up = all(int(sums[s]) == int(totals[s]) for s in CATEGORIES) and int(table["users"].sum()) == users
            detail = ", ".join(f"{s}: {int(sums[s])}" for s in CATEGORIES)
        result.append(Check(f"breakdown by {name} adds up", adds_up, "blocker", detail, "re-run the report"))
    return result


def _group_adds_up(users: int, table: pd.DataFrame, counted: Tally) -> tuple[bool, str]:
    """Rows of the group table = memberships of known users + users in no group; and users in no group plus
    users in some group = every user."""
    alone = int(table.loc[table["group"] == NO_GROUP, "users"].sum())
    rows = int(table["users"].sum())
    if counted.memberships is None or counted.in_some_group is None:
        return rows >= users, f"{rows} memberships and users in no group"
    adds_up = rows == counted.memberships + alone and alone + counted.in_some_group == users
    return adds_up, f"{counted.memberships} memberships of {counted.in_some_group} users, {alone} users in no group"


def save(
    run_dir: Path,
    classified: pd.DataFrame,
    new_only: pd.DataFrame,
    mask: Masker,
    tables: Mapping[str, pd.DataFrame] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report's record: counts and breakdowns (report.json, also this run's point in the progress chart)
    and the masked per-user snapshot (report_users.parquet)."""
    data = record(run_dir, summary(classified), by_reason(classified), len(new_only), tables, extra)
    save_json(run_dir, "report", data)
    save_frame(run_dir, "report_users", user_rows(classified, mask))
    return data


def record(
    run_dir: Path,
    totals: pd.DataFrame,
    reasons: pd.DataFrame,
    new_only: int,
    tables: Mapping[str, pd.DataFrame] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """report.json's content: the ``summary``, ``by_reason`` and breakdown tables, the sign-ups counted."""
    return {
        "run_id": run_dir.name,
        "generated": now_iso(),
        "users": int(totals["users"].sum()),
        "states": dict(zip(totals["state"], totals["users"], strict=True)),
        "cannot_by_reason": dict(zip(reasons["reason"], reasons["users"].astype(int), strict=True)),
        "new_pool_only": new_only,
        "breakdowns": {name: _as_dict(table) for name, table in (tables or {}).items()},
        **(extra or {}),
    }


def user_rows(classified: pd.DataFrame, mask: Masker) -> pd.DataFrame:
    """The rows of report_users.parquet: the snapshot's columns, categories as text, masked."""
    columns = [c for c in SNAPSHOT_COLUMNS if c in classified.columns]
    categorical = [c for c in columns if isinstance(classified[c].dtype, pd.CategoricalDtype)]
    return mask.frame(classified[columns].assign(**{c: classified[c].astype(str) for c in categorical}))


def _as_dict(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{row value: {state: users}} of a breakdown table."""
    keyed = table.set_index(table.columns[0])[list(CATEGORIES)]
    return {str(key): {str(s): int(v) for s, v in row.items()} for key, row in keyed.iterrows()}


# --- charts ----------------------------------------------------------------------------------------------


def chart(classified: pd.DataFrame, path: Path) -> Path:
    """Migrated / not yet / cannot, overall and by old-pool status; saved as PNG at ``path``."""
    return tables_chart(summary(classified), by_status(classified), path)


def tables_chart(totals: pd.DataFrame, by_status: pd.DataFrame, path: Path) -> Path:
    """``chart`` of the ``summary`` and status breakdown tables (of a pool of any size)."""
    status = by_status.set_index("status")[list(CATEGORIES)]
    fig = Figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2]})
    left.bar(totals["state"].str.replace(" ", "\n", n=1), totals["users"], color=[COLORS[s] for s in totals["state"]])
    for x, (users, share) in enumerate(zip(totals["users"], totals["share"], strict=True)):
        left.annotate(f"{users}\n{share}%", (x, users), ha="center", va="bottom", fontsize=9)
    left.set_title(f"{int(totals['users'].sum())} old-pool users")
    left.set_ylabel("users")
    left.margins(y=0.25)
    status.plot.barh(stacked=True, ax=right, color=[COLORS[c] for c in status.columns])
    right.set_title("by status in the old pool")
    right.set_xlabel("users")
    right.set_ylabel("")
    return _save_figure(fig, path)


def breakdown_chart(tables: Mapping[str, pd.DataFrame], path: Path) -> Path:
    """Stacked bars per group and per creation cohort; saved as PNG at ``path``."""
    fig = Figure(figsize=(12, 5))
    axes = fig.subplots(1, 2)
    for ax, name in zip(axes, ("group", "cohort"), strict=True):
        table = tables[name].set_index(name)[list(CATEGORIES)]
        table.plot.barh(stacked=True, ax=ax, color=[COLORS[c] for c in CATEGORIES], legend=name == "group")
        ax.set_title(f"by {name}")
        ax.set_xlabel("users")
        ax.set_ylabel("")
    return _save_figure(fig, path)


def _save_figure(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    save_figure(fig, path)
    return path
