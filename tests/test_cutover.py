"""Step 6 never writes past a failed readiness check, whichever way it is confirmed, and never detaches the
migration trigger while a straggler it meant to import is missing (unless accepted by name). Over the local
AWS: real import jobs, real UpdateUserPool."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cognito_migration import (
    aws,
    checks,
    comparison,
    cutover,
    records,
    report,
    snapshot_store,
    stragglers,
    user_import,
    widgets,
)
from cognito_migration.stragglers import ImportFile
from step_support import step_params


def masked(tmp_path: Path, name: str) -> str:
    """``name`` as the records of plan()'s runs show it: they share the environment folder tmp_path/local."""
    return records.masker(tmp_path / "local" / "any-run").text(name)


TRIGGER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:cognito-user-migration"


def no_sleep(_: float) -> None:
    return None


@pytest.fixture
def new_pool(cognito) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    created = cognito.create_user_pool(
        PoolName=f"cutover-{uuid.uuid4().hex[:8]}",
        AutoVerifiedAttributes=["email"],
        UsernameConfiguration={"CaseSensitive": False},
        Schema=[{"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True}],
        LambdaConfig={"UserMigration": TRIGGER_ARN, "PostAuthentication": TRIGGER_ARN},
    )["UserPool"]
    return dict(cognito.describe_user_pool(UserPoolId=created["Id"])["UserPool"])


def import_file(cognito, pool_id: str, users: dict[str, str]) -> ImportFile:  # type: ignore[no-untyped-def]
    """A file of ``users`` (username -> phone number; a bad number fails that row)."""
    header = cognito.get_csv_header(UserPoolId=pool_id)["CSVHeader"]
    rows = []
    for name, phone in users.items():
        values = {
            "cognito:username": name,
            "cognito:mfa_enabled": "false",
            "email": f"{name}@example.com",
            "email_verified": "true",
            "phone_number": phone,
        }
        rows.append([values.get(column, "") for column in header])
    return ImportFile(header=header, rows=rows, usernames=list(users), excluded={})


def plan(cognito, new_pool: dict[str, Any], tmp_path: Path, users: dict[str, str], **overrides: Any) -> cutover.Cutover:  # type: ignore[no-untyped-def]
    params = step_params(run_dir=str(tmp_path / "local" / uuid.uuid4().hex[:8]), cutover_confirm=True, **overrides)
    file = import_file(cognito, new_pool["Id"], users)
    stragglers.write(file, tmp_path / "imports")
    return cutover.Cutover(
        aws.connect(params), params, new_pool, file, dict(new_pool["LambdaConfig"]), ready=[], sleep=no_sleep
    )


def old_state(users: dict[str, str]) -> cutover.State:
    old = pd.DataFrame({"username": list(users), "enabled": True, "status": "CONFIRMED"})
    return cutover.State({}, {}, old, old.iloc[:0], comparison.in_memory(report.classify(old, old.iloc[:0], False)))


def triggers(cognito, pool_id: str) -> set[str]:  # type: ignore[no-untyped-def]
    return set(cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"].get("LambdaConfig") or {})


def test_a_failed_import_row_keeps_the_migration_trigger_until_the_user_is_accepted_by_name(
    cognito, new_pool, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    users = {"ann": "+15550100001", "bad.phone": "12345"}  # the second row fails: not E.164
    cut = plan(cognito, new_pool, tmp_path, users)

    result = cut.execute()

    assert result["jobs"][0]["failed"] == 1
    assert result["left_behind"] == [masked(tmp_path, "bad.phone")] and result["detached"] == []
    assert triggers(cognito, new_pool["Id"]) == {"UserMigration", "PostAuthentication"}, "still attached"
    gate = {c.name: c for c in cutover.verify(cut.conn, cut.params, cut, old_state(users), "done")}
    detached = gate["migration trigger detached"]
    assert not detached.passed and masked(tmp_path, "bad.phone") in detached.detail
    assert "cutover_accept_unimported" in detached.remedy
    with pytest.raises(checks.GateFailed, match="1 straggler"):
        checks.gate(list(gate.values()), "cutover")

    # The import itself is no lazy migration: a retry need not wait cutover_min_quiet_days.
    old = pd.DataFrame({"username": list(users)})
    assert report.last_lazy_migration(old, cut.after, False) is not None
    assert (
        report.last_lazy_migration(old, cut.after, False, user_import.import_windows(cognito, new_pool["Id"])) is None
    )

    # The operator decides to leave that user behind, by the name the records give: the retry detaches.
    accepted = plan(
        cognito, new_pool, tmp_path, {"bad.phone": "12345"}, cutover_accept_unimported=[masked(tmp_path, "bad.phone")]
    )
    retried = accepted.execute()
    assert retried["accepted_left_behind"] == [masked(tmp_path, "bad.phone")]
    assert retried["detached"] == ["UserMigration"]
    assert triggers(cognito, new_pool["Id"]) == {"PostAuthentication"}
    gate = {c.name: c for c in cutover.verify(accepted.conn, accepted.params, accepted, old_state(users), "done")}
    assert gate["migration trigger detached"].passed
    assert "left behind as accepted" in gate["migration trigger detached"].detail


def test_every_straggler_arrived_detaches_the_trigger(cognito, new_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cut = plan(cognito, new_pool, tmp_path, {"cy": "+15550100003", "dee": "+15550100004"})

    result = cut.execute()

    assert result["left_behind"] == [] and result["detached"] == ["UserMigration"]
    assert triggers(cognito, new_pool["Id"]) == {"PostAuthentication"}


# --- a confirmation never passes a check --------------------------------------------------------------


def ready_checks(tmp_path: Path, **overrides: Any) -> tuple[Any, list[checks.Check]]:
    params = step_params(run_dir=str(tmp_path / "local" / "20260110T000000Z"), cutover_min_quiet_days=14.0, **overrides)
    old = pd.DataFrame({"username": ["ann", "bob"], "status": "CONFIRMED", "enabled": True, "groups": ""})
    new = pd.DataFrame({"username": ["ann"], "status": "CONFIRMED", "enabled": True, "created": ["2026-01-10"]})
    classified = report.classify(old, new, False)
    last = pd.Timestamp("2026-01-10", tz="UTC")  # a lazy migration today
    state = cutover.State({}, {"Id": "us-east-1_New"}, old, new, comparison.in_memory(classified, last_migration=last))
    return params, cutover.readiness(state, params, datetime(2026, 1, 10, 12, tzinfo=UTC))


def test_readiness_refuses_the_button_route_as_it_refuses_the_parameter(tmp_path: Path) -> None:
    for confirm in (True, False):  # False: JupyterLab's button would confirm
        _, ready = ready_checks(tmp_path, dry_run=False, cutover_confirm=confirm)
        quiet = next(c for c in ready if c.name.startswith("no lazy migration"))
        assert not quiet.passed and quiet.severity == "blocker"
        with pytest.raises(checks.GateFailed, match="no lazy migration for 14 days"):
            checks.gate(ready, "cutover readiness")
    _, dry = ready_checks(tmp_path, dry_run=True)
    checks.gate(dry, "cutover readiness")  # a dry run only shows it


def test_the_button_refuses_to_write_while_a_readiness_check_fails(tmp_path: Path) -> None:
    params, ready = ready_checks(tmp_path, dry_run=False, cutover_confirm=False)

    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the refused cutover reached AWS ({name})")

    cut = cutover.Cutover(Untouchable(), params, {"Id": "us-east-1_New"}, None, {}, ready)  # type: ignore[arg-type]
    approval = widgets.Confirmation(cut.execute, "Import the stragglers and detach the migration trigger")
    button, _ = approval.widget()
    assert approval.outcome()["text/plain"].startswith("waiting")

    button.click()

    assert approval.state == "failed" and "readiness refuses the cutover" in (approval.error or "")
    assert "no lazy migration for 14 days" in (approval.error or "")
    assert cut.result is None and approval.outcome()["text/plain"].startswith("failed: CutoverRefused")


def test_run_all_does_not_end_on_a_passing_gate_while_the_button_waits(cognito, new_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cut = plan(cognito, new_pool, tmp_path, {})
    waiting = cutover.verify(cut.conn, cut.params, cut, old_state({}), "waiting for the button")
    with pytest.raises(checks.GateFailed, match="press the button"):
        checks.gate(waiting, "cutover")
    dry = {c.name: c for c in cutover.verify(cut.conn, cut.params, cut, old_state({}), "dry run")}
    assert dry["nothing written"].passed


def test_users_an_import_brought_are_not_lazy_migrations() -> None:
    old = pd.DataFrame({"username": ["ann", "bob", "cy"]})
    new = pd.DataFrame(
        {"username": ["ann", "bob", "cy"], "created": ["2026-01-01T10:00Z", "2026-01-09T10:00Z", "2026-01-09T10:01Z"]}
    )
    import_ran = [(pd.Timestamp("2026-01-09T09:59Z"), pd.Timestamp("2026-01-09T10:02Z"))]

    assert report.last_lazy_migration(old, new, False) == pd.Timestamp("2026-01-09T10:01Z")
    assert report.last_lazy_migration(old, new, False, import_ran) == pd.Timestamp("2026-01-01T10:00Z")


def test_leaving_behind_is_accepted_by_the_audit_finding_that_explains_it(cognito, new_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    users = {"eli": "+15550100005", "bad.phone2": "12345"}
    unexplained = plan(cognito, new_pool, tmp_path, users, cutover_accept_unimported=["invalid_phone_numbers"])
    assert unexplained.execute()["detached"] == [], "no finding explains the failure: only a name accepts it"

    cut = plan(cognito, new_pool, tmp_path, users, cutover_accept_unimported=["invalid_phone_numbers"])
    cut.import_file.explained = {"bad.phone2": "invalid_phone_numbers"}  # as stragglers.build finds it
    result = cut.execute()

    assert result["left_behind_by_finding"] == {"invalid_phone_numbers": 1}
    assert result["accepted_left_behind"] == [masked(tmp_path, "bad.phone2")]
    assert result["detached"] == ["UserMigration"]


def test_read_state_reads_both_pools_and_compares_them_as_the_report_does(cognito, new_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    old = cognito.create_user_pool(PoolName=f"old-{uuid.uuid4().hex[:8]}")["UserPool"]
    for name in ("ann", "bob"):  # created by an admin: FORCE_CHANGE_PASSWORD, no verified contact
        cognito.admin_create_user(UserPoolId=old["Id"], Username=name, MessageAction="SUPPRESS")
    cognito.admin_create_user(
        UserPoolId=new_pool["Id"],
        Username="ANN",
        UserAttributes=[{"Name": "email", "Value": "ann@example.com"}],
        MessageAction="SUPPRESS",
    )
    params = step_params(old_pool_id=old["Id"], run_dir=str(tmp_path / "local" / uuid.uuid4().hex[:8]))

    state = cutover.read_state(aws.connect(params), params, new_pool)

    counts = state.compared.summary.set_index("state")["users"].to_dict()
    assert counts == {report.MIGRATED: 1, report.NOT_YET: 0, report.CANNOT: 1}  # ANN is ann: case-insensitive
    assert state.compared.classified is not None and isinstance(state.old_users, pd.DataFrame)
    assert set(state.reads) == {"old pool", "new pool"} and state.last_migration is not None
    snapshot_store.release(*state.reads.values())


def test_saved_again_after_the_button_the_record_keeps_what_each_read_resumed(  # type: ignore[no-untyped-def]
    cognito, new_pool, tmp_path: Path
) -> None:
    # By hand, step 6's last cell runs before the button is pressed (the gate fails while it waits) and again
    # after: the first save deleted the reads' snapshots, the second must still record them.
    old = cognito.create_user_pool(PoolName=f"old-{uuid.uuid4().hex[:8]}")["UserPool"]
    cognito.admin_create_user(UserPoolId=old["Id"], Username="ann", MessageAction="SUPPRESS")
    params = step_params(old_pool_id=old["Id"], run_dir=str(tmp_path / "local" / uuid.uuid4().hex[:8]))
    conn = aws.connect(params)
    state = cutover.read_state(conn, params, new_pool)
    import_file = stragglers.prepare(
        conn.cognito, params, new_pool, state.old_pool, state.compared, stragglers.import_dir(params.records_dir)
    )
    cut = cutover.plan(conn, params, state, import_file, [])

    first = cutover.save(params, cut, "waiting", [], [])
    assert not any(s.folder.exists() for s in state.reads.values()), "the unmasked copies go with the first save"
    second = cutover.save(params, cut, "done", [], [])

    assert set(second["reads"]) == {"old pool", "new pool"} and second["reads"] == first["reads"]
    saved = json.loads((params.records_dir / "cutover.json").read_text())
    assert saved["confirmation"] == "done" and set(saved["reads"]) == {"old pool", "new pool"}
