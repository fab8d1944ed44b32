"""Step 5's logic on in-memory frames: classification edge cases, breakdowns that add up, progress over
several snapshots, the stragglers' import CSV (header, rows, the trigger's mapping), the widgets' fallbacks,
and step 6's readiness checklist."""

from __future__ import annotations

import csv
import io
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from cognito_migration import comparison, cutover, progress, records, report, stragglers, widgets
from cognito_migration.params import Params
from cognito_migration.trigger import migration_trigger

MASK = records.Masker(b"\x07" * 32)  # a fixed key: the tokens these tests expect
HEADER = [
    *"name given_name family_name email email_verified phone_number phone_number_verified".split(),
    "custom:tier",
    "cognito:mfa_enabled",
    "cognito:username",
]
NEW_POOL = {
    "Id": "us-east-1_New00001",
    "UsernameConfiguration": {"CaseSensitive": False},
    "AutoVerifiedAttributes": ["email"],
    "SchemaAttributes": [{"Name": "custom:tier"}, {"Name": "email"}, {"Name": "name"}],
}


def params(**overrides: object) -> Params:
    values: dict[str, object] = {
        "old_user_pool_id": "us-east-1_Old00001",
        "old_client_id": "oldclient",
        "target_required_attributes": ("email", "name"),
        "attribute_defaults": {"name": "Unknown"},
        **overrides,
    }
    return Params(**values)  # type: ignore[arg-type]


def old_users() -> pd.DataFrame:
    rows = [
        # username, status, enabled, email, email_verified, phone, phone_verified, name, tier, created
        ("ann", "CONFIRMED", True, "ann@example.com", "true", None, None, "Ann A", "pro", "2019-02-01"),
        ("Bob", "CONFIRMED", True, "bob@example.com", "true", "+15550000001", "true", None, None, "2019-05-01"),
        ("bob", "CONFIRMED", True, "bob2@example.com", "true", None, None, "Bob B", None, "2020-01-01"),
        ("cy", "UNCONFIRMED", False, "cy@example.com", "false", None, None, "Cy C", None, "2020-08-01"),
        ("dee", "FORCE_CHANGE_PASSWORD", True, "dee@example.com", "false", None, None, "Dee D", None, "2021-01-01"),
        ("eve", "CONFIRMED", False, "eve@example.com", "true", None, None, "Eve E", "free", "2021-04-01"),
        ("fay", "CONFIRMED", True, "fay@example.com", "false", None, None, "Fay F", None, "2021-07-01"),
        ("Straße", "CONFIRMED", True, "s@example.com", "true", None, None, "S S", None, "2021-10-01"),
        ("gus", "EXTERNAL_PROVIDER", True, "gus@example.com", "true", None, None, "Gus G", None, "2022-01-01"),
        ("hal", "RESET_REQUIRED", True, "hal,x@example.com", "true", None, None, "Hal, H", None, "2022-03-01"),
    ]
    columns = "username status enabled email email_verified phone_number phone_number_verified name custom:tier created"
    frame = pd.DataFrame(rows, columns=columns.split())
    frame["created"] = pd.to_datetime(frame["created"], utc=True)
    frame["legacy_sms_mfa"] = frame["username"] == "Bob"
    frame["sub"] = [f"sub-{i}" for i in range(len(frame))]
    return frame


def new_users() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "username": ["ann", "Bob", "STRASSE", "eve", "zed"],
            "status": ["CONFIRMED", "RESET_REQUIRED", "CONFIRMED", "CONFIRMED", "CONFIRMED"],
            "created": ["2026-01-02", "2026-01-05", "2026-01-03", "2026-01-04", "2026-01-09"],
        }
    )
    frame["created"] = pd.to_datetime(frame["created"], utc=True)
    return frame


def memberships() -> pd.DataFrame:
    rows = [("admins", "ann"), ("editors", "ann"), ("editors", "Bob"), ("viewers", "eve"), ("viewers", "gone")]
    return pd.DataFrame(rows, columns=["group", "username"])


def enriched() -> pd.DataFrame:
    classified = report.classify(old_users(), new_users(), case_sensitive=False)
    return report.enrich(classified, memberships(), "OPTIONAL")


# --- classification ------------------------------------------------------------------------------------


def test_each_old_user_has_one_state_with_the_first_reason_that_applies() -> None:
    states = {r.username: (r.state, r.reason) for r in enriched().itertuples()}

    assert states == {
        "ann": (report.MIGRATED, ""),
        "Bob": (report.MIGRATED, ""),
        "bob": (report.CANNOT, "username differs only by case from a migrated user"),
        "cy": (report.CANNOT, "disabled in the old pool"),  # disabled wins over unconfirmed
        "dee": (report.CANNOT, "temporary password, no verified email or phone"),
        "eve": (report.MIGRATED, ""),  # disabled after migrating: migrated is what counts
        "fay": (report.NOT_YET, ""),
        "Straße": (report.MIGRATED, ""),  # case-folded: STRASSE in the new pool is this user
        "gus": (report.CANNOT, "federated user: signs in through its identity provider"),
        "hal": (report.NOT_YET, ""),  # RESET_REQUIRED: can migrate through forgot-password
    }


def refuse_mfa(pool_mfa: str | None) -> pd.DataFrame:
    """The sample pools classified under mfa_policy refuse, Bob not yet migrated (he holds the SMS option)."""
    new = new_users()
    classified = report.classify(
        old_users(), new[new["username"] != "Bob"], False, mfa_policy="refuse", pool_mfa=pool_mfa
    )
    return report.enrich(classified, memberships(), pool_mfa)


@pytest.mark.parametrize(
    "pool_mfa, refused",
    [
        ("ON", {"Bob", "bob", "fay", "hal"}),  # everyone who would otherwise be not yet: all have a factor to pass
        ("OPTIONAL", {"Bob"}),  # only the legacy SMS option is visible to ListUsers
        (None, {"Bob"}),  # unknown: as OPTIONAL
        ("OFF", set()),  # the old pool asks nobody for a second factor
    ],
)
def test_mfa_users_under_refuse_cannot_migrate_lazily(pool_mfa: str | None, refused: set[str]) -> None:
    table = refuse_mfa(pool_mfa)
    states = {r.username: (r.state, r.reason) for r in table.itertuples()}
    assert {u for u, (_, reason) in states.items() if reason == report.MFA_REFUSED} == refused
    assert all(states[u][0] == report.CANNOT for u in refused)
    # Migrated users stay migrated, and an earlier reason still comes first.
    assert states["ann"] == (report.MIGRATED, "") and states["cy"][1] == "disabled in the old pool"
    assert {"fay", "hal"} - refused <= {u for u, (state, _) in states.items() if state == report.NOT_YET}
    tables = report.breakdowns(table, memberships())
    assert all(check.passed for check in report.verify(table, old_users(), tables, memberships()))
    assert report.by_reason(table).set_index("reason")["users"].get(report.MFA_REFUSED, 0) == len(refused)


def test_other_mfa_policies_refuse_nobody_for_mfa() -> None:
    for policy in ("reset_required", "sms"):
        classified = report.classify(old_users(), new_users(), False, mfa_policy=policy, pool_mfa="ON")
        assert report.MFA_REFUSED not in set(classified["reason"])


def test_the_mfa_note_says_what_list_users_cannot_see() -> None:
    assert "invisible to ListUsers" in report.mfa_note("refuse", "OPTIONAL")
    assert "refuses all" in report.mfa_note("refuse", "ON")
    assert "refuses nobody" in report.mfa_note("reset_required", "ON")


def test_a_user_alone_under_its_key_is_migrated_whatever_case_it_signed_in_with() -> None:
    old = pd.DataFrame({"username": ["Jane.Doe"], "status": ["CONFIRMED"], "enabled": [True]})
    new = pd.DataFrame({"username": ["jane.doe"]})

    assert report.classify(old, new, case_sensitive=False)["state"].tolist() == [report.MIGRATED]
    assert report.classify(old, new, case_sensitive=True)["state"].tolist() == [report.NOT_YET]


def test_sign_ups_and_the_last_lazy_migration_ignore_each_other() -> None:
    assert report.sign_ups(old_users(), new_users(), case_sensitive=False)["username"].tolist() == ["zed"]
    # zed signed up on 9 January; the newest user who came from the old pool arrived on the 5th.
    assert report.last_lazy_migration(old_users(), new_users(), False) == pd.Timestamp("2026-01-05", tz="UTC")
    assert report.last_lazy_migration(old_users(), new_users().iloc[:0], False) is None


def test_classify_handles_a_million_users_per_pool() -> None:
    # How fast is for benchmarks/report_bench.py (docs/benchmarks.md): a shared machine makes wall-clock asserts lie.
    names = pd.Series([f"user.{i}" for i in range(1_000_000)], dtype="str")
    old = pd.DataFrame({"username": names, "status": "CONFIRMED", "enabled": True})
    new = pd.DataFrame({"username": names.iloc[::2].str.upper()})
    counts = report.summary(report.classify(old, new, case_sensitive=False)).set_index("state")["users"]
    assert counts[report.MIGRATED] == 500_000 and counts[report.NOT_YET] == 500_000


# --- breakdowns ----------------------------------------------------------------------------------------


def test_breakdowns_add_up_and_the_gate_says_so() -> None:
    classified = enriched()
    tables = report.breakdowns(classified, memberships())

    checks = report.verify(classified, old_users(), tables, memberships())

    assert [c.name for c in checks] == [
        "every old-pool user counted once",
        "breakdown by status adds up",
        "breakdown by group adds up",
        "breakdown by mfa adds up",
        "breakdown by cohort adds up",
    ]
    assert all(c.passed for c in checks), checks
    group = tables["group"].set_index("group")
    assert group.loc["editors", report.MIGRATED] == 2 and group.loc["viewers", "users"] == 1  # "gone" is nobody
    assert group.loc[report.NO_GROUP, "users"] == 7
    assert tables["cohort"].set_index("cohort").loc["2019Q1", "users"] == 1
    assert dict(zip(tables["mfa"]["mfa"], tables["mfa"]["users"], strict=True)) == {
        "SMS (MFAOptions)": 1,
        "unknown: not visible to ListUsers": 9,
    }


def test_a_breakdown_that_lost_a_row_fails_the_gate() -> None:
    classified = enriched()
    tables = report.breakdowns(classified, memberships())
    tables["status"] = tables["status"].iloc[1:]

    failed = [c.name for c in report.verify(classified, old_users(), tables, memberships()) if not c.passed]

    assert failed == ["breakdown by status adds up"]


def test_mfa_visibility_follows_the_pool_setting() -> None:
    users = old_users()
    assert set(report.mfa_visibility(users, "OFF")) == {"none (MFA off in the pool)"}
    assert set(report.mfa_visibility(users, "ON")) == {"required by the pool"}


def test_saved_report_keeps_counts_and_breakdowns_and_masks_the_snapshot(tmp_path: Path) -> None:
    classified = enriched()
    run_dir = tmp_path / "local" / "20260101T000000Z"

    data = report.save(
        run_dir,
        classified,
        report.sign_ups(old_users(), new_users(), False),
        MASK,
        report.breakdowns(classified, memberships()),
    )

    saved = json.loads((run_dir / "report.json").read_text())
    assert saved["states"] == {report.MIGRATED: 4, report.NOT_YET: 2, report.CANNOT: 4} == data["states"]
    assert saved["run_id"] == "20260101T000000Z" and saved["new_pool_only"] == 1
    assert saved["breakdowns"]["group"]["editors"] == {report.MIGRATED: 2, report.NOT_YET: 0, report.CANNOT: 0}
    snapshot = pd.read_parquet(run_dir / "report_users.parquet")
    assert MASK.text("ann") in set(snapshot["username"]) and "ann" not in set(snapshot["username"])
    assert {"groups", "cohort", "mfa", "state", "reason"} <= set(snapshot.columns)


# --- progress over time --------------------------------------------------------------------------------


def write_snapshot(env_dir: Path, when: datetime, migrated: int, not_yet: int, cannot: int = 10) -> None:
    run_dir = env_dir / when.strftime("%Y%m%dT%H%M%SZ")
    states = {report.MIGRATED: migrated, report.NOT_YET: not_yet, report.CANNOT: cannot}
    records.save_json(
        run_dir, "report", {"generated": when.isoformat(), "users": sum(states.values()), "states": states}
    )


def test_progress_rate_and_projection_from_several_runs(tmp_path: Path) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for day, migrated in enumerate((100, 200, 300, 400, 500, 600)):
        write_snapshot(tmp_path, start + timedelta(days=day), migrated, 1000 - migrated)
    (tmp_path / "imports" / "x").mkdir(parents=True)  # the import folder is no run

    history = progress.history(tmp_path)
    projection = progress.project(history)

    assert len(history) == 6 and history["migrated"].is_monotonic_increasing
    assert projection.runs == progress.RECENT_RUNS
    assert projection.users_per_day == pytest.approx(100)
    assert projection.remaining == 400 and projection.days_left == pytest.approx(4)
    assert projection.done_by == pd.Timestamp(start + timedelta(days=9))
    assert progress.chart(history, projection, tmp_path / "p.png").stat().st_size > 1000


def test_progress_needs_two_runs_apart_and_some_progress(tmp_path: Path) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    write_snapshot(tmp_path, start, 100, 900)
    assert progress.project(progress.history(tmp_path)).users_per_day is None
    write_snapshot(tmp_path, start + timedelta(days=2), 100, 900)
    stalled = progress.project(progress.history(tmp_path))
    assert stalled.done_by is None and "no progress" in stalled.note
    assert progress.project(progress.history(tmp_path / "empty")).note == "no report runs yet"


def test_runs_with_the_same_count_are_no_progress_and_a_crawl_has_no_date_past_the_calendar(tmp_path: Path) -> None:
    # five runs at uneven times, nobody migrating: a least-squares slope of a flat line is not exactly 0
    # (here about 1e-14 users/day), and the date it would give overflowed pandas' calendar
    start = datetime(2026, 11, 30, 3, 21, 59, tzinfo=UTC)
    for offset in (0, 0.0095, 0.1627, 0.1644, 0.2401):
        write_snapshot(tmp_path, start + timedelta(days=offset), 53, 230)
    flat = progress.project(progress.history(tmp_path))
    assert flat.done_by is None and flat.days_left is None and "no progress" in flat.note

    crawl = tmp_path / "crawl"
    write_snapshot(crawl, start, 53, 1_000_000_000)
    write_snapshot(crawl, start + timedelta(days=365), 54, 999_999_999)  # one user in a year
    slow = progress.project(progress.history(crawl))
    assert slow.users_per_day == pytest.approx(1 / 365) and slow.done_by is None
    assert "more than 100 years at this rate" in slow.note
    assert progress.chart(progress.history(crawl), slow, tmp_path / "slow.png").stat().st_size > 1000


def test_hand_runs_are_points_of_their_own_labelled_on_the_chart(tmp_path: Path) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    write_snapshot(tmp_path, start, 100, 900)
    states = {report.MIGRATED: 150, report.NOT_YET: 850, report.CANNOT: 10}
    for hand_run in ("manual-20260101T060000Z", "manual-20260101T070000Z"):
        records.save_json(
            tmp_path / hand_run, "report", {"generated": "2026-01-01T06:00:00+00:00", "users": 1010, "states": states}
        )

    history = progress.history(tmp_path)

    assert list(history["by"]) == ["runner", progress.BY_HAND, progress.BY_HAND]
    chart = progress.chart(history, progress.project(history), tmp_path / "p.png")
    assert chart.stat().st_size > 1000


def test_a_report_without_a_date_is_dated_by_its_run_id(tmp_path: Path) -> None:
    records.save_json(tmp_path / "20250301T120000Z", "report", {"users": 10, "states": {report.MIGRATED: 5}})

    (date,) = progress.history(tmp_path)["date"]

    assert date == pd.Timestamp("2025-03-01T12:00:00Z")


# --- the stragglers' import file -----------------------------------------------------------------------


def settings() -> migration_trigger.Settings:
    return stragglers.trigger_settings(params(), NEW_POOL)


def test_import_rows_follow_the_header_and_the_trigger_mapping() -> None:
    built = stragglers.build(enriched(), HEADER, settings(), ["email"], "reset_required")

    assert built.usernames == ["hal"]  # fay's email is not verified: the import would fail her
    assert built.excluded == {"fay": "no verified email: the import refuses it; support must set a password"}
    (row,) = built.rows
    values = dict(zip(HEADER, row, strict=True))
    hal = next(r for r in enriched().to_dict("records") if r["username"] == "hal")
    expected = stragglers.map_attributes(stragglers.old_attributes(hal), "hal", settings())
    assert {k: v for k, v in values.items() if v and not k.startswith("cognito:")} == expected
    assert values["cognito:username"] == "hal" and values["cognito:mfa_enabled"] == "false"
    assert "sub" not in values and values["name"] == "Hal, H"


def test_mapping_is_the_triggers_own() -> None:
    old = [{"Name": "email", "Value": "x@example.com"}, {"Name": "sub", "Value": "s-1"}, {"Name": "zz", "Value": "1"}]
    mapped = stragglers.map_attributes(old, "x", settings())
    expected = migration_trigger.build_user_attributes(
        old, settings().allowed_attributes, settings().attribute_defaults, settings().legacy_sub_attribute
    )

    assert {k: v for k, v in mapped.items() if k != migration_trigger.GROUPS_MARKER} == expected
    assert mapped["name"] == "Unknown" and "sub" not in mapped and "zz" not in mapped


def test_sms_mfa_stays_on_only_under_the_sms_policy() -> None:
    table = enriched()
    table.loc[table["username"] == "Bob", "state"] = report.NOT_YET  # as if Bob had not migrated

    def mfa(policy: str) -> str:
        built = stragglers.build(table, HEADER, settings(), ["email"], policy, case_sensitive=True)
        return built.rows[built.usernames.index("Bob")][HEADER.index("cognito:mfa_enabled")]

    assert mfa("sms") == "true" and mfa("reset_required") == "false"
    refused = stragglers.build(table, HEADER, settings(), ["email"], "refuse", case_sensitive=True)
    assert refused.excluded["Bob"] == "MFA user and mfa_policy is refuse: decide by hand"


@pytest.mark.parametrize(
    "pool_mfa, excluded",
    [("ON", {"Bob", "fay", "hal"}), ("OPTIONAL", {"Bob"}), (None, {"Bob"}), ("OFF", set())],
)
def test_import_file_leaves_out_whom_refuse_refuses(pool_mfa: str | None, excluded: set[str]) -> None:
    # Classified without the policy, as the cutover reads the pools: the import file applies it by itself.
    table = enriched()
    table.loc[table["username"] == "Bob", "state"] = report.NOT_YET

    built = stragglers.build(table, HEADER, settings(), ["email"], "refuse", True, pool_mfa=pool_mfa)

    assert {u for u, why in built.excluded.items() if why == stragglers.MFA_REFUSED} == excluded
    assert not excluded & set(built.usernames)
    assert {"Bob", "hal"} - excluded <= set(built.usernames)


def test_import_file_of_a_report_under_refuse_holds_only_who_can_migrate() -> None:
    built = stragglers.build(refuse_mfa("ON"), HEADER, settings(), ["email"], "refuse", False, pool_mfa="ON")
    assert built.usernames == [] and set(built.excluded.values()) <= {stragglers.CASE_VARIANT}


def test_case_variants_are_left_for_a_person_to_decide() -> None:
    table = enriched()
    table.loc[table["username"].isin(["Bob", "bob"]), "state"] = report.NOT_YET

    built = stragglers.build(table, HEADER, settings(), ["email"], "reset_required", case_sensitive=False)

    assert built.excluded["Bob"] == built.excluded["bob"] == stragglers.CASE_VARIANT
    assert "bob" in stragglers.build(table, HEADER, settings(), ["email"], "reset_required", True).usernames


def test_import_file_refuses_a_header_without_the_cognito_columns() -> None:
    with pytest.raises(stragglers.ImportFileError, match="cognito:mfa_enabled"):
        stragglers.build(enriched(), HEADER[:-2] + ["cognito:username"], settings(), ["email"], "reset_required")


def test_a_pool_without_an_auto_verified_attribute_gets_no_import_and_every_user_is_told_why() -> None:
    built = stragglers.build(enriched(), HEADER, settings(), [], "reset_required")

    not_yet = sorted(r.username for r in enriched().itertuples() if r.state == report.NOT_YET)
    assert built.rows == [] and built.cannot_import == stragglers.NO_AUTO_VERIFIED
    assert sorted(built.excluded) == not_yet and set(built.excluded.values()) == {stragglers.NO_AUTO_VERIFIED}
    assert set(built.explained.values()) == {"no_auto_verified_attribute"}
    shown = stragglers.table(enriched(), built, records.Masker(None)).set_index("username")
    assert all(shown.loc[name, "action"] == f"not imported: {stragglers.NO_AUTO_VERIFIED}" for name in not_yet)
    summary = stragglers.summary_table(built).set_index("import file")["value"]
    assert summary["import"].startswith("cannot be imported: the new pool auto-verifies neither")
    assert stragglers.summary(built)["cannot_import"] == stragglers.NO_AUTO_VERIFIED


WITH_DATES = [*HEADER[:-2], "birthdate", "updated_at", *HEADER[-2:]]


def dated(**values: object) -> pd.DataFrame:
    table = enriched()
    for column, value in values.items():
        table.loc[table["username"] == "hal", column] = value
    return table


def test_birthdate_and_updated_at_are_written_in_the_imports_format() -> None:
    def hal(table: pd.DataFrame) -> dict[str, str]:
        built = stragglers.build(table, WITH_DATES, settings(), ["email"], "reset_required")
        return dict(zip(WITH_DATES, built.rows[built.usernames.index("hal")], strict=True))

    written = hal(dated(birthdate="1985-02-01", updated_at="1471453471"))
    assert (written["birthdate"], written["updated_at"]) == ("02/01/1985", "1471453471")
    iso = hal(dated(updated_at="2016-08-17T17:04:31Z"))
    assert iso["updated_at"] == "1471453471"
    assert hal(dated(updated_at="1471453471000"))["updated_at"] == "1471453471"  # milliseconds
    built = stragglers.build(dated(birthdate="0000-02-01"), WITH_DATES, settings(), ["email"], "reset_required")
    assert dict(zip(WITH_DATES, built.rows[0], strict=True))["birthdate"] == "" and built.blanked == {"birthdate": 1}


@pytest.mark.parametrize(("level", "expected"), [("OFF", "false"), ("ON", "true"), ("OPTIONAL", "true")])
def test_mfa_enabled_follows_the_new_pools_mfa_configuration(level: str, expected: str) -> None:
    table = enriched()
    table.loc[table["username"] == "Bob", "state"] = report.NOT_YET

    built = stragglers.build(table, HEADER, settings(), ["email"], "sms", True, mfa_configuration=level)

    column = HEADER.index("cognito:mfa_enabled")
    assert built.rows[built.usernames.index("Bob")][column] == expected  # Bob has SMS MFA in the old pool
    if level == "ON":  # hal has no phone number for SMS MFA: the import would fail his row
        assert built.excluded["hal"] == stragglers.MFA_ON_NO_PHONE and built.explained["hal"] == "mfa_users"
    else:
        assert built.rows[built.usernames.index("hal")][column] == "false"


def test_a_row_longer_than_16000_characters_is_left_out_with_the_reason() -> None:
    table = dated(name="x" * 16_000)

    built = stragglers.build(table, HEADER, settings(), ["email"], "reset_required")

    assert "hal" not in built.usernames and built.excluded["hal"] == stragglers.ROW_TOO_LONG
    shown = stragglers.table(table, built, records.Masker(None)).set_index("username")
    assert shown.loc["hal", "action"] == f"not imported: {stragglers.ROW_TOO_LONG}"


def test_written_files_are_owner_only_escaped_and_split_at_the_limit(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(stragglers, "MAX_USERS_PER_FILE", 1)
    table = enriched()
    table.loc[table["username"] == "fay", "email_verified"] = "true"
    built = stragglers.build(table, HEADER, settings(), ["email"], "reset_required")
    folder = stragglers.import_dir(tmp_path / "local" / "20260101T000000Z")

    paths = stragglers.write(built, folder)

    assert folder == tmp_path / "local" / "imports" / "20260101T000000Z"
    assert [p.name for p in paths] == ["users-001.csv", "users-002.csv"] and built.lines == [1, 1]
    assert stat.S_IMODE(paths[0].stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    rows = list(csv.reader(io.StringIO(paths[1].read_text()), quoting=csv.QUOTE_NONE, escapechar="\\"))
    assert rows[0] == HEADER
    assert dict(zip(HEADER, rows[1], strict=True))["email"] == "hal,x@example.com"  # the comma survived


FORMULA = '=HYPERLINK("http://x")'


def test_a_value_that_starts_like_a_formula_is_kept_and_its_user_flagged(tmp_path: Path) -> None:
    # The attack: a user names themselves =HYPERLINK(...); an operator opens the import file in a spreadsheet.
    table = enriched()
    table["given_name"] = [FORMULA if name == "hal" else None for name in table["username"]]
    table.loc[table["username"] == "Bob", "state"] = report.NOT_YET  # Bob's phone +15550000001 is a number
    pool = {**NEW_POOL, "SchemaAttributes": [*NEW_POOL["SchemaAttributes"], {"Name": "given_name"}]}
    trigger = stragglers.trigger_settings(params(), pool)
    built = stragglers.build(table, HEADER, trigger, ["email"], "reset_required", case_sensitive=True)

    with pytest.warns(stragglers.SpreadsheetFormulaWarning, match="never open the import file in a spreadsheet"):
        (path,) = stragglers.write(built, tmp_path / "imports")

    rows = list(csv.DictReader(io.StringIO(path.read_text()), quoting=csv.QUOTE_NONE, escapechar="\\"))
    by_user = {row["cognito:username"]: row for row in rows}
    assert by_user["hal"]["given_name"] == FORMULA, "the import gets the value unaltered"
    assert by_user["Bob"]["phone_number"] == "+15550000001"
    assert built.formulas == {"hal": ["given_name"]}
    shown = stragglers.table(table, built, MASK).set_index("username")
    assert shown.loc[MASK.text("hal"), stragglers.FORMULA_COLUMN] == "given_name"
    assert shown.loc[MASK.text("Bob"), stragglers.FORMULA_COLUMN] == ""
    assert "HYPERLINK" not in shown.to_csv()
    summary = stragglers.summary_table(built).set_index("import file")["value"]
    assert summary[summary.index.str.contains("never open the import file in a spreadsheet")].tolist() == ["1"]


def test_plain_numbers_do_not_start_like_a_formula() -> None:
    values = {"phone_number": "+15550000001", "custom:balance": "-12.5", "family_name": "-Ann", "nickname": "@x"}

    assert stragglers.formula_columns(values) == ["family_name", "nickname"]
    assert stragglers.formula_columns({"phone_number": "+1 555 0100"}) == ["phone_number"], "not E.164"


def test_straggler_table_is_masked_and_says_what_happens() -> None:
    built = stragglers.build(enriched(), HEADER, settings(), ["email"], "reset_required")

    table = stragglers.table(enriched(), built, MASK).set_index("username")

    assert set(table.index) == {MASK.text(n) for n in ("bob", "cy", "dee", "fay", "gus", "hal")}
    assert table.loc[MASK.text("hal"), "action"] == stragglers.IMPORT
    assert table.loc[MASK.text("fay"), "action"].startswith("not imported: no verified email")
    assert table.loc[MASK.text("cy"), "action"] == "decide: disabled in the old pool"


# --- widgets: what papermill gets ----------------------------------------------------------------------


def test_filter_table_falls_back_to_the_parameters() -> None:
    table = stragglers.table(enriched(), None, records.Masker(None))

    shown = widgets.filter_table(table, group="editors")

    assert not widgets.interactive()
    assert shown["username"].tolist() == []  # Bob, the only other editor, has migrated
    assert widgets.filtered(table, status="CONFIRMED")["username"].tolist() == ["bob", "fay"]
    picker = widgets.FilterTable(enriched(), group="editors")
    assert picker.current["username"].tolist() == ["ann", "Bob"]
    assert picker.select(widgets.ALL, "UNCONFIRMED")["username"].tolist() == ["cy"]
    assert picker.options()[0] == [widgets.ALL, "admins", "editors", "viewers"]


def test_a_write_runs_only_when_confirmed_and_not_a_dry_run() -> None:
    calls: list[int] = []

    def act() -> int:
        calls.append(1)
        return 7

    dry = widgets.confirm(act, dry_run=True, confirmed=True, label="go")
    waiting = widgets.confirm(act, dry_run=False, confirmed=False, label="go")
    done = widgets.confirm(act, dry_run=False, confirmed=True, label="go")

    assert (dry.state, waiting.state, done.state) == ("dry run", "not confirmed", "done")
    assert calls == [1] and done.result == 7
    assert widgets.message(waiting).startswith("not confirmed: nothing written")


def test_widgets_filter_and_confirm_once_in_jupyterlab() -> None:
    picker = widgets.FilterTable(enriched())
    changes: list[int] = []
    group, status = picker.controls(changed=lambda: changes.append(1)).children
    group.value = "viewers"
    assert picker.current["username"].tolist() == ["eve"]
    group.value, status.value = widgets.ALL, "FORCE_CHANGE_PASSWORD"
    assert picker.current["username"].tolist() == ["dee"] and len(changes) == 3

    calls: list[int] = []
    approval = widgets.Confirmation(lambda: calls.append(1), "go")
    button, _ = approval.widget()
    button.click()
    button.click()
    assert calls == [1] and approval.state == "done" and button.disabled


# --- step 6's readiness --------------------------------------------------------------------------------


def state(last: pd.Timestamp | None) -> cutover.State:
    classified = report.classify(old_users(), new_users(), False)
    return cutover.State({}, NEW_POOL, old_users(), new_users(), comparison.in_memory(classified, last_migration=last))


def test_readiness_blocks_writes_after_a_recent_migration_or_an_open_audit_blocker(tmp_path: Path) -> None:
    run_dir = tmp_path / "local" / "20260110T000000Z"
    findings = [
        {"id": "username_case_collisions", "severity": "blocker", "count": 2, "accepted": True},
        {"id": "invalid_phone_numbers", "severity": "blocker", "count": 1, "accepted": False},
        {"id": "sub_changes", "severity": "warning", "count": 5},
    ]
    records.save_json(tmp_path / "local" / "20260101T000000Z", "findings", findings)
    now = datetime(2026, 1, 10, tzinfo=UTC)
    writing = params(dry_run=False, cutover_confirm=True, cutover_min_quiet_days=7.0, run_dir=str(run_dir))

    checks = {c.name: c for c in cutover.readiness(state(pd.Timestamp("2026-01-05", tz="UTC")), writing, now)}
    dry = {c.name: c for c in cutover.readiness(state(None), params(run_dir=str(run_dir)), now)}

    quiet, audit = checks["no lazy migration for 7 days"], checks["no open audit blocker"]
    assert not quiet.passed and quiet.severity == "blocker" and "5.0 days ago" in quiet.detail
    assert not audit.passed and audit.detail == "20260101T000000Z/findings.json: invalid_phone_numbers"
    assert checks["audit warnings read"].detail == "sub_changes"
    assert dry["no open audit blocker"].severity == "warning", "a dry run only shows it"
    assert dry["no lazy migration for 14 days"].passed  # nobody migrated yet
    assert "40.0% of old-pool users" in checks["migrated share"].detail


def test_cutover_counts_import_failures_from_the_job_even_when_its_log_comes_back_short() -> None:
    from cognito_migration import cutover
    from cognito_migration.stragglers import ImportFile

    wanted = [f"user{n:02d}" for n in range(10)]
    import_file = ImportFile(header=[], rows=[[]] * 10, usernames=wanted, excluded={})
    arrived = pd.DataFrame({"username": wanted[:7], "status": "RESET_REQUIRED", "enabled": True})
    old_users = pd.DataFrame({"username": wanted, "enabled": True})
    named = [{"username": params().masker().text("user07"), "outcome": "FAILED", "line": 9, "detail": "bad phone"}]

    # The job failed three rows; its log (read short) names one of them.
    checks = {
        c.name: c
        for c in cutover._arrivals(import_file, [{"failed": 3, "problems": named}], arrived, old_users, params(), ())
    }
    assert checks["every importable straggler is in the new pool"].passed
    assert (
        "3 failed by the job's count (1 named in its log); 0 unexplained"
        in checks["every importable straggler is in the new pool"].detail
    )

    # The job failed only one row: the two others are missing without explanation.
    checks = {
        c.name: c
        for c in cutover._arrivals(import_file, [{"failed": 1, "problems": named}], arrived, old_users, params(), ())
    }
    assert not checks["every importable straggler is in the new pool"].passed
    assert "2 unexplained" in checks["every importable straggler is in the new pool"].detail


def test_cutover_without_an_import_plans_none_and_keeps_the_trigger_for_everyone_left() -> None:
    built = stragglers.build(enriched(), HEADER, settings(), [], "reset_required")
    config = {"UserMigration": "arn:aws:lambda:us-east-1:123456789012:function:m"}
    cut = cutover.Cutover(None, params(mask_pii=False), NEW_POOL, built, config, [])  # type: ignore[arg-type]

    plan = cut.actions.set_index("action")["what"]
    assert plan["import job"] == f"none will run: {stragglers.NO_AUTO_VERIFIED}"
    left = cutover.left_behind(built, new_users(), params(mask_pii=False), [])
    assert sorted(name for name, _ in left) == ["fay", "hal"]
    assert {why for _, why in left} == {"no_auto_verified_attribute"}  # cutover_accept_unimported can name it


def test_an_alias_pool_refuses_what_the_trigger_refuses_and_the_report_says_so() -> None:
    old = pd.DataFrame(
        {
            "username": ["bob", "rob", "ann@example.com", "cy"],
            "status": "CONFIRMED",
            "enabled": True,
            "email": ["bob@example.com", "BOB@example.com", "ann@example.com", "cy@example.com"],
            "email_verified": "true",
        }
    )
    new = pd.DataFrame({"username": ["bob"], "email": ["bob@example.com"], "status": "CONFIRMED"})

    plain = report.classify(old, new, False)
    aliased = report.classify(old, new, False, aliases=("email",))

    assert plain["state"].tolist() == [report.MIGRATED, report.NOT_YET, report.NOT_YET, report.NOT_YET]
    assert aliased["state"].tolist() == [report.MIGRATED, report.CANNOT, report.CANNOT, report.NOT_YET]
    assert aliased.loc[1, "reason"] == "its verified email or phone number is a migrated user's alias in the new pool"
    assert aliased.loc[2, "reason"].startswith("username is an email address")
    counts = report.summary(aliased).set_index("state")["users"]
    assert int(counts.sum()) == len(old)


def test_charts_leave_the_operators_matplotlib_backend_alone(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import matplotlib; matplotlib.use('svg')\n"
        "from cognito_migration import progress, report\n"
        "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n"
        "import matplotlib.pyplot as plt\n"
        "assert plt.get_fignums() == []\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    history = progress.history(tmp_path)
    assert progress.chart(history, progress.project(history), tmp_path / "p.png").stat().st_size > 1000
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == [], "figures are not left open in pyplot"
