"""Steps 5 and 6 compare pools of any size through comparison.compare: split into buckets by the matching key,
it gives exactly what the in-memory comparison gives (every user's state and reason, the sign-ups, the last
lazy migration, the summaries, breakdowns and checks), the alias rule across buckets included, in memory
bounded by a bucket; and the stragglers' import written from it bucket by bucket is today's file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cognito_migration import buckets, comparison, cutover, identity, records, report, snapshot, stragglers
from cognito_migration.local import legacy
from cognito_migration.params import Params

OLD_POOL = {"MfaConfiguration": "OPTIONAL"}
BUCKETS = 7


def params(**overrides: Any) -> Params:
    values: dict[str, Any] = {"old_user_pool_id": "us-east-1_Old00001", "old_client_id": "oldclient", **overrides}
    return Params(**values)


def old_pool_rows(count: int = 2000, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The demo's generated users (every quirk: case-variant usernames and emails, unconfirmed, disabled,
    temporary passwords, no verified contact, bad phones, SMS MFA, groups) as ListUsers rows, and their
    memberships."""
    users = legacy.generate_users(count, seed)
    rows = [
        {
            **dict.fromkeys(snapshot.STANDARD_COLUMNS),
            **user.attributes,
            "username": user.username,
            "status": user.status,
            "enabled": user.enabled,
            "created": pd.Timestamp(user.created_at),
            "sub": user.sub,
            "legacy_sms_mfa": user.mfa == "SMS_MFA",
        }
        for user in users
    ]
    members = [(group, user.username) for user in users for group in user.groups]
    frame = pd.DataFrame(rows)
    frame["created"] = pd.to_datetime(frame["created"], utc=True)
    return frame, pd.DataFrame(members + [("viewers", "gone.user")], columns=["group", "username"])


def new_pool_rows(old: pd.DataFrame, sign_in: tuple[str, ...], seed: int = 3) -> pd.DataFrame:
    """About 60% of the old users arrived (some under another case of their name), and some sign-ups."""
    rng = np.random.default_rng(seed)
    could = old["enabled"] & old["status"].isin(["CONFIRMED", "RESET_REQUIRED"])
    came = old[could & (rng.random(len(old)) < 0.65)]
    flip = rng.random(len(came)) < 0.2  # signed in as JANE.DOE: the same user where case does not matter
    if sign_in:  # the new pool names its users itself; they are linked by the value they signed in with
        names = came[list(sign_in)].bfill(axis=1).iloc[:, 0]
        names = names.where(~flip, names.str.upper())
        new = pd.DataFrame({"username": [f"id-{i}" for i in range(len(came))], sign_in[0]: names.to_numpy()})
    else:
        new = pd.DataFrame({"username": np.where(flip, came["username"].str.upper(), came["username"])})
        new["email"], new["phone_number"] = came["email"].to_numpy(), came["phone_number"].to_numpy()
    # One new user per name, whatever its case: what a case-insensitive pool allows (and the pool's order
    # then does not matter).
    name = new[sign_in[0]] if sign_in else new["username"]
    new = new[~name.str.lower().duplicated()].copy()
    new["status"] = "CONFIRMED"
    new["created"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 86400 * 30, len(new)), "s")
    signups = pd.DataFrame({"username": [f"newcomer.{i}" for i in range(25)], "status": "CONFIRMED"})
    signups["created"] = pd.Timestamp("2026-02-15", tz="UTC")
    return pd.concat([new, signups], ignore_index=True)


CASES = {
    "usernames, case-insensitive": ({}, {}),
    "usernames, case-sensitive": ({"target_case_sensitive": True}, {}),
    "email sign-in": ({}, {"UsernameAttributes": ["email"]}),
    "email or phone sign-in, case-sensitive": (
        {"target_case_sensitive": True},
        {"UsernameAttributes": ["email", "phone_number"]},
    ),
    "email and phone aliases, MFA refuse": ({"mfa_policy": "refuse"}, {"AliasAttributes": ["email", "phone_number"]}),
}


@pytest.fixture(scope="module")
def pools() -> tuple[pd.DataFrame, pd.DataFrame]:
    return old_pool_rows()


def both(
    old: pd.DataFrame, new: pd.DataFrame, members: pd.DataFrame | None, overrides: dict[str, Any], pool: dict[str, Any]
) -> tuple[comparison.PoolComparison, comparison.PoolComparison]:
    args = (
        old,
        new,
        params(**overrides),
        OLD_POOL,
        pool,
        [(pd.Timestamp("2026-01-10", tz="UTC"), pd.Timestamp("2026-01-11", tz="UTC"))],
    )
    return comparison.compare(*args, memberships=members), comparison.compare(
        *args, memberships=members, bucket_total=BUCKETS
    )


def per_user(compared: comparison.PoolComparison) -> pd.DataFrame:
    columns = [c for c in ("username", "state", "reason", "groups", "cohort", "mfa") if c in compared.frame().columns]
    frame = compared.frame(columns).astype(str)
    return frame.sort_values("username").reset_index(drop=True)


@pytest.mark.parametrize("case", list(CASES))
def test_bucketed_comparison_gives_what_the_in_memory_one_gives(pools, case: str) -> None:
    old, members = pools
    overrides, pool = CASES[case]
    new = new_pool_rows(old, tuple(pool.get("UsernameAttributes", ())))
    whole, bucketed = both(old, new, members, overrides, pool)

    today = report.compare(
        old,
        new,
        params(**overrides),
        OLD_POOL,
        pool,
        [(pd.Timestamp("2026-01-10", tz="UTC"), pd.Timestamp("2026-01-11", tz="UTC"))],
    )
    assert whole.classified is not None and bucketed.classified is None and bucketed.bucket_total == BUCKETS
    pd.testing.assert_frame_equal(
        whole.classified[["username", "state", "reason"]], today.classified[["username", "state", "reason"]]
    )
    pd.testing.assert_frame_equal(per_user(bucketed), per_user(whole))
    pd.testing.assert_frame_equal(bucketed.summary, whole.summary)
    pd.testing.assert_frame_equal(bucketed.by_reason, whole.by_reason)
    assert bucketed.tables.keys() == whole.tables.keys() == {"status", "group", "mfa", "cohort"}
    for name, table in whole.tables.items():
        pd.testing.assert_frame_equal(bucketed.tables[name], table, obj=name)
    assert [c.__dict__ for c in bucketed.checks] == [c.__dict__ for c in whole.checks]
    assert all(c.passed for c in bucketed.checks)
    assert bucketed.sign_ups == whole.sign_ups == len(today.sign_ups) >= 25
    assert bucketed.last_migration == whole.last_migration == today.last_migration is not None
    # the quirks are there to be compared
    states = whole.summary.set_index("state")["users"]
    assert min(states) > 0 and len(whole.by_reason) >= 3, whole.by_reason
    bucketed.close()


def test_the_alias_rule_holds_across_buckets() -> None:
    # ann migrated with ann@example.com; ANN.B (another user, another bucket) has the same address verified:
    # the new pool refuses it as an alias. dan has it too, but is disabled: the earlier reason stays his.
    rows = [
        ("ann", True, "ann@example.com", "+15550000001"),
        ("ann.b", True, "ANN@example.com", None),
        ("dan", False, "ann@example.com", None),
        ("phil", True, "phil@example.com", "+15550000001"),
        ("zoe", True, "zoe@example.com", None),
    ]
    old = pd.DataFrame(rows, columns=["username", "enabled", "email", "phone_number"])
    old = old.assign(status="CONFIRMED", email_verified="true", phone_number_verified="true")
    new = old.iloc[[0]][["username", "email", "phone_number"]].assign(status="CONFIRMED")
    pool = {"AliasAttributes": ["email", "phone_number"]}
    key = report.matching_keys(old, False, (), True)
    spread = next(n for n in range(2, 50) if len(set(buckets.bucket_ids(key, n)[[0, 1, 2, 3]])) == 4)

    whole = comparison.compare(old, new, params(), OLD_POOL, pool)
    bucketed = comparison.compare(old, new, params(), OLD_POOL, pool, bucket_total=spread)

    reasons = dict(zip(bucketed.frame()["username"], bucketed.frame()["reason"].astype(str), strict=True))
    assert reasons == dict(zip(whole.classified["username"], whole.classified["reason"].astype(str), strict=True))
    assert reasons["ann.b"] == reasons["phil"] == report.REASONS[8], "held by ann, in another bucket"
    assert reasons["dan"] == "disabled in the old pool", "an earlier reason comes first"
    assert reasons["zoe"] == "" and bucketed.count(report.CANNOT) == 3
    bucketed.close()


def test_snapshots_are_compared_as_their_frames(pools, tmp_path: Path) -> None:
    old, members = pools
    new = new_pool_rows(old, ())
    old_snap = snapshot.from_frame(old, tmp_path / "old")
    new_snap = snapshot.from_frame(new.assign(sub=[f"{i % 16:x}-{i}" for i in range(len(new))]), tmp_path / "new")
    members_file = tmp_path / "memberships.parquet"
    members.to_parquet(members_file)
    old_snap.update_manifest(groups=sorted(set(members["group"])))  # the read of the groups, as step 5's
    for group, rows in members.groupby("group"):
        writer = snapshot.MembershipWriter(old_snap, str(group))
        for name in rows["username"]:
            writer.add({"group": group, "username": name})
        writer.finish()

    from_frames = comparison.compare(old, new, params(), OLD_POOL, {}, memberships=members)
    for source in (members_file, old_snap):
        from_disk = comparison.compare(old_snap, new_snap, params(), OLD_POOL, {}, memberships=source, bucket_total=3)
        pd.testing.assert_frame_equal(per_user(from_disk), per_user(from_frames))
        for name, table in from_frames.tables.items():
            pd.testing.assert_frame_equal(from_disk.tables[name], table, obj=name)
        assert from_disk.sign_ups == from_frames.sign_ups
        from_disk.close()
    in_memory = comparison.compare(old_snap, new_snap, params(), OLD_POOL, {}, memberships=old_snap)
    assert in_memory.classified is not None
    pd.testing.assert_frame_equal(per_user(in_memory), per_user(from_frames))


def test_the_saved_report_is_the_same_whichever_way_it_was_compared(pools, tmp_path: Path) -> None:
    old, members = pools
    new = new_pool_rows(old, ())
    whole, bucketed = both(old, new, members, {}, {})
    mask = params().masker()

    saved = [
        comparison.save(tmp_path / name / "20260101T000000Z", c, mask) for name, c in (("a", whole), ("b", bucketed))
    ]

    assert {k: v for k, v in saved[0].items() if k != "generated"} == {
        k: v for k, v in saved[1].items() if k != "generated"
    }
    users = [pd.read_parquet(tmp_path / n / "20260101T000000Z" / "report_users.parquet") for n in ("a", "b")]
    order = [u.sort_values("username").reset_index(drop=True).astype(str) for u in users]
    pd.testing.assert_frame_equal(order[1], order[0])
    assert "ann" not in " ".join(users[1]["username"]) or mask.key is None
    bucketed.close()


def test_group_lists_are_each_users_groups_sorted(pools) -> None:
    old, members = pools
    expected = members.groupby("username")["group"].agg(lambda groups: ", ".join(sorted(groups)))

    lists = report.group_lists(old, members)

    assert (lists == old["username"].map(expected).fillna("")).all() and (lists != "").sum() > len(old) // 2


# --- memory bounded by a bucket ------------------------------------------------------------------------

# The peak is the process's VmHWM, which starts afresh at exec (getrusage's ru_maxrss would start at pytest's).
MEASURE = """
import json, re, sys
from pathlib import Path
import pandas as pd
from cognito_migration import comparison, snapshot
from cognito_migration.params import Params
def high_water_kb():
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
folder, buckets = Path(sys.argv[1]), int(sys.argv[2])
old, new = snapshot.Snapshot(folder / "old"), snapshot.Snapshot(folder / "new")
params = Params(old_user_pool_id="us-east-1_Old00001", old_client_id="oldclient")
# warmed up first (pandas', Arrow's and DuckDB's first use), so what is measured is what the pools take
few = next(old.batches(rows=1000))
members = pd.DataFrame({"group": ["admins"], "username": few["username"].iloc[:1]})
for total in (1, 2):
    comparison.compare(few, few, params, {}, {}, memberships=members, work_dir=folder, bucket_total=total).close()
start = high_water_kb()
if buckets == 1:  # what steps 5 and 6 did before: both pools and the memberships in memory
    members = pd.read_parquet(folder / "memberships.parquet")
    compared = comparison.compare(old.frame(), new.frame(), params, {}, {}, memberships=members)
else:
    compared = comparison.compare(old, new, params, {}, {}, memberships=folder / "memberships.parquet",
                                  work_dir=folder, bucket_total=buckets)
assert all(c.passed for c in compared.checks)
peak = high_water_kb()
states = compared.summary["users"].tolist()
print(json.dumps({"growth_mb": (peak - start) / 1024, "users": compared.users, "states": states}))
compared.close()
"""


def large_pools(folder: Path, users: int) -> None:
    """Snapshots of ``users`` old users (60% of them in the new pool) and their memberships, built from
    vectorised columns."""
    ids = np.arange(users)
    names = pd.Series(ids.astype(str)).radd("user.")
    rng = np.random.default_rng(5)
    old = pd.DataFrame(
        {
            "username": names,
            "status": np.where(rng.random(users) < 0.95, "CONFIRMED", "UNCONFIRMED"),
            "enabled": rng.random(users) > 0.02,
            "created": pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(ids, "min"),
            "email": names + "@example.com",
            "email_verified": "true",
            "name": "Name " + names,
            "sub": [f"{i % 16:x}{i:031x}" for i in ids],
        }
    )
    came = old[rng.random(users) < 0.6]
    new = came[["username", "email", "sub"]].assign(status="CONFIRMED", created=pd.Timestamp("2026-01-02", tz="UTC"))
    snapshot.from_frame(old, folder / "old")
    snapshot.from_frame(new, folder / "new")
    pd.DataFrame({"group": np.array(["admins", "editors", "viewers"])[ids % 3], "username": names}).to_parquet(
        folder / "memberships.parquet"
    )


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak from Linux's /proc")
def test_a_comparison_out_of_core_holds_a_bucket_not_the_pools(tmp_path: Path) -> None:
    large_pools(tmp_path, 300_000)

    def measure(buckets_total: int) -> dict[str, Any]:
        # Arrow's default allocator (mimalloc) keeps what it freed, about 100 MB whatever the size: the system's
        # gives it back, so what is measured is what the comparison holds.
        environment = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system"}
        done = subprocess.run(
            [sys.executable, "-c", MEASURE, str(tmp_path), str(buckets_total)],
            capture_output=True,
            text=True,
            env=environment,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    whole, bucketed = measure(1), measure(20)

    assert bucketed["states"] == whole["states"] and whole["users"] == 300_000
    # Loading everything at once takes what the pools take; 20 buckets hold a twentieth of them at a time.
    assert bucketed["growth_mb"] < 0.5 * whole["growth_mb"], (bucketed, whole)


@pytest.mark.parametrize("case", list(CASES))
def test_sign_ups_counted_bucket_by_bucket_are_those_counted_whole(pools, case: str) -> None:
    # what rollback --delete counts before deleting the new pool: users it would lose
    old, _ = pools
    pool = CASES[case][1]
    sign_in = identity.sign_in_attributes(pool)
    new = new_pool_rows(old, tuple(pool.get("UsernameAttributes", ())))
    counted = {}
    for case_sensitive in (False, True):
        whole = len(report.sign_ups(old, new, case_sensitive, sign_in))
        assert comparison.sign_ups(old, new, case_sensitive, sign_in) == whole
        assert comparison.sign_ups(old, new, case_sensitive, sign_in, bucket_total=BUCKETS) == whole
        counted[case_sensitive] = whole
    assert 25 <= counted[False] < counted[True], "the 25 newcomers; and users signed in as JANE.DOE differ by case"


# --- the stragglers' import, written bucket by bucket ---------------------------------------------------

IMPORT_POOL = {
    "Id": "us-east-1_New00001",
    "AutoVerifiedAttributes": ["email"],
    "MfaConfiguration": "OPTIONAL",
    "SchemaAttributes": [{"Name": n} for n in ("email", "name", "given_name", "family_name", "phone_number")],
}
IMPORT_HEADER = [
    *"name given_name family_name email email_verified phone_number phone_number_verified".split(),
    "cognito:mfa_enabled",
    "cognito:username",
]


class Cognito:
    """What prepare asks the new pool: its import header."""

    def get_csv_header(self, UserPoolId: str) -> dict[str, Any]:  # noqa: N803 (boto3's keyword)
        return {"CSVHeader": IMPORT_HEADER}


def csv_rows(paths: list[Path]) -> list[str]:
    return sorted(line for path in paths for line in path.read_text().splitlines()[1:])


def test_the_import_written_bucket_by_bucket_is_todays_file(pools, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(stragglers, "MAX_USERS_PER_FILE", 150)  # several files either way
    monkeypatch.setattr(stragglers, "SLICE_ROWS", 3)  # a bucket's users made into rows three at a time
    old, members = pools
    new = new_pool_rows(old, ()).iloc[::4]  # a quarter arrived: case twins both 'not yet', both left out
    whole, bucketed = both(old, new, members, {"mfa_policy": "sms"}, {})
    cfg = params(mfa_policy="sms", attribute_defaults={"name": "Unknown"})

    today = stragglers.prepare(Cognito(), cfg, IMPORT_POOL, OLD_POOL, whole.frame(), tmp_path / "today")
    streamed = stragglers.prepare(Cognito(), cfg, IMPORT_POOL, OLD_POOL, bucketed, tmp_path / "streamed")

    assert streamed.manifest is not None and today.manifest is None and today.users > 300
    assert csv_rows(streamed.paths) == csv_rows(today.paths)
    assert sum(streamed.lines) == sum(today.lines) == today.users == streamed.users
    assert len(streamed.paths) == len(today.paths) and max(streamed.lines) == 150
    assert [p.read_text().splitlines()[0] for p in streamed.paths] == [",".join(IMPORT_HEADER)] * len(streamed.paths)
    summaries = [stragglers.summary(f) for f in (today, streamed)]
    for summary in summaries:
        summary.pop("folder")
        summary["excluded_by_reason"] = sorted(summary["excluded_by_reason"].items())
    assert summaries[0] == summaries[1] and stragglers.CASE_VARIANT in dict(summaries[0]["excluded_by_reason"])
    people = [pd.concat(list(f.people())).sort_values("username").reset_index(drop=True) for f in (today, streamed)]
    pd.testing.assert_frame_equal(people[1].drop(columns="file"), people[0].drop(columns="file"))
    for number in range(1, len(streamed.paths) + 1):  # each file's users, in line order, for the job's log
        lines = streamed.paths[number - 1].read_text().splitlines()[1:]
        assert [line.rsplit(",", 1)[1] for line in lines] == streamed.file_usernames(number)
    sample = bucketed.sample(40, states=[report.NOT_YET, report.CANNOT])
    shown = [stragglers.table(sample, f, records.Masker(None)).set_index("username") for f in (today, streamed)]
    pd.testing.assert_frame_equal(shown[1], shown[0])
    # the notebook's table: all of them, or the first ones of a pool kept on disk; the counts always whole
    whole_table = stragglers.table(whole, today, records.Masker(None))
    first = stragglers.table(bucketed, streamed, records.Masker(None), rows=40)
    assert len(whole_table) == whole.count(report.NOT_YET, report.CANNOT) and len(first) == 40
    counted = stragglers.actions(whole, today, whole_table)["users"]
    assert counted.to_dict() == stragglers.actions(bucketed, streamed, first)["users"].to_dict()
    assert counted.sum() == len(whole_table) and counted[stragglers.IMPORT] == today.users
    bucketed.close()


def test_the_cutover_finds_the_same_arrivals_bucket_by_bucket(pools, tmp_path: Path, monkeypatch) -> None:
    old, members = pools
    new = new_pool_rows(old, ())
    cfg = params(mask_pii=False, attribute_defaults={"name": "Unknown"})
    whole = comparison.compare(old, new, cfg, OLD_POOL, {})
    import_file = stragglers.prepare(Cognito(), cfg, IMPORT_POOL, OLD_POOL, whole, tmp_path / "imports")
    # After the import: all but five arrived, one of them not RESET_REQUIRED; a disabled user came back enabled.
    arrived = import_file.usernames[5:]
    imported = pd.DataFrame({"username": arrived, "status": "RESET_REQUIRED", "enabled": True})
    imported.loc[0, "status"] = "CONFIRMED"
    disabled = old.loc[~old["enabled"], "username"].iloc[:1]
    enabled = pd.DataFrame({"username": disabled, "status": "CONFIRMED", "enabled": True})
    after = pd.concat([new.assign(enabled=True), imported, enabled], ignore_index=True)
    jobs = [
        {
            "failed": 3,
            "problems": [
                {"username": import_file.usernames[0], "outcome": "FAILED"},
                {"username": arrived[1], "outcome": "SKIPPED"},
            ],
        }
    ]

    def cutover_sees() -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
        left = cutover.left_behind(import_file, after, cfg, ())
        checks = cutover._arrivals(import_file, jobs, after, old, cfg, ())
        return sorted(left), [c.__dict__ for c in checks]

    in_memory = cutover_sees()
    monkeypatch.setattr(comparison, "IN_MEMORY_USERS", 100)
    monkeypatch.setattr(comparison, "BUCKET_USERS", 300)
    bucketed = cutover_sees()

    assert bucketed == in_memory
    left, checks = in_memory
    assert len(left) == 5 + len(import_file.excluded)
    details = {c["name"]: c["detail"] for c in checks}
    assert details["every importable straggler is in the new pool"].endswith("; 2 unexplained")  # 4 unnamed, 2 failed
    assert details["stragglers arrived RESET_REQUIRED"].startswith(f"{len(arrived) - 2} of {len(arrived) - 1}")
    assert details["disabled users were not enabled"].startswith("1 of ")
