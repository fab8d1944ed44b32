"""The whole runbook through papermill on the local AWS, as `make demo` runs it, checked against the
legacy generator's ground truth."""

from __future__ import annotations

import hashlib
import json
import re
import stat
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from cli_support import run_runbook
from cognito_migration.local.legacy import (
    DEFAULT_ACCOUNT_ID,
    LEGACY_MIGRATION_CLIENT_ID,
    LEGACY_WEB_CLIENT_ID,
    LegacyPool,
    expected_migrated,
    generate_users,
    has_verified_contact,
    legacy_pool_id,
    replay_sample,
)
from cognito_migration.params import FIELDS
from cognito_migration.runbook import STEPS

USERS, SEED, SHARE = 400, 7, 0.3
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outputs = tmp_path_factory.mktemp("outputs")
    done = run_runbook(
        "--env",
        "local",
        "--users",
        str(USERS),
        "--seed",
        str(SEED),
        "--replay-share",
        str(SHARE),
        "--outputs",
        str(outputs),
    )
    (outputs / "runner.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # Beside the run: its imports folder, the environment's masking key and index.html.
    (found,) = [p for p in (outputs / "local").iterdir() if p.is_dir() and p.name != "imports"]
    return found


@pytest.fixture(scope="module")
def legacy() -> LegacyPool:
    region = "us-east-1"
    return LegacyPool(
        legacy_pool_id(region),
        region,
        DEFAULT_ACCOUNT_ID,
        LEGACY_MIGRATION_CLIENT_ID,
        LEGACY_WEB_CLIENT_ID,
        SEED,
        generate_users(USERS, SEED),
    )


def expected_states(legacy: LegacyPool) -> dict[str, set[str]]:
    """Ground truth from the generator's records, by the report's documented rules."""
    migrated = expected_migrated(legacy, replay_sample(legacy, SHARE))
    taken = {name.casefold() for name in migrated}
    cannot = {
        u.username
        for u in legacy.users
        if u.username not in migrated
        and (
            not u.enabled
            or u.status == "UNCONFIRMED"
            or (u.status == "FORCE_CHANGE_PASSWORD" and not has_verified_contact(u))
            or u.username.casefold() in taken
        )
    }
    not_yet = {u.username for u in legacy.users} - migrated - cannot
    return {"migrated": migrated, "cannot migrate lazily": cannot, "not yet": not_yet}


def test_every_step_passed_and_was_recorded(run_dir: Path) -> None:
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["outcome"] == "passed"
    assert [s["step"] for s in manifest["steps"] if not s["step"].startswith("local")] == list(STEPS)
    assert manifest["caller_identity"]["Account"] == DEFAULT_ACCOUNT_ID
    assert len(manifest["params_digest"]) == 64 and manifest["packages"]["moto"] != "not installed"
    # which code ran: the lock this environment holds (hash-checked at install) and the trigger's zip as deployed
    lock_file = Path(__file__).resolve().parent.parent / "requirements.lock"
    assert manifest["lock_sha256"] == hashlib.sha256(lock_file.read_bytes()).hexdigest()
    assert manifest["lock_differences"] == []
    assert manifest["trigger_zip_sha256"] == json.loads((run_dir / "deploy.json").read_text())["code_sha256"]
    for step in STEPS:
        notebook = nbformat.read(run_dir / f"{step}.ipynb", as_version=4)
        assert any(c.get("outputs") for c in notebook.cells if c.cell_type == "code"), step
        assert "<html" in (run_dir / f"{step}.html").read_text()[:500].lower()


def test_each_notebook_received_exactly_the_parameters_run_json_records(run_dir: Path) -> None:
    manifest = json.loads((run_dir / "run.json").read_text())
    assert set(manifest["params"]) == set(FIELDS), "the complete set, not the file's keys"
    assert manifest["params"]["run_dir"] == str(run_dir)
    for step in STEPS:
        notebook = nbformat.read(run_dir / f"{step}.ipynb", as_version=4)
        (cell,) = [c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])]
        received: dict[str, object] = {}
        exec(compile(cell.source, step, "exec"), received)  # papermill writes plain assignments
        assert {k: v for k, v in received.items() if k in FIELDS} == manifest["params"], step


def test_long_reads_show_progress_against_the_budget_in_the_step_logs_and_on_the_console(run_dir: Path) -> None:
    audit_log = (run_dir / "01_audit_old_pool.log").read_text()
    final = [line for line in audit_log.replace("\r", "\n").splitlines() if "old pool users: 100%" in line]
    assert final, audit_log[-2000:]
    assert f"{USERS}/{USERS}" in final[-1] and "user/s" in final[-1]
    assert "budget 15 pages/s = 900 users/s max" in final[-1]
    groups = [line for line in audit_log.replace("\r", "\n").splitlines() if "group memberships" in line]
    assert groups and "member/s" in groups[-1] and "12/12 groups" in groups[-1], audit_log[-2000:]
    assert "new pool users" in (run_dir / "05_report.log").read_text()
    assert "old pool users: 100%" in (run_dir.parent.parent / "runner.log").read_text()


def test_the_run_verifies_and_the_index_links_it(run_dir: Path) -> None:
    from cognito_migration.__main__ import main

    assert main(["verify", "--env", "local", "--outputs", str(run_dir.parent.parent)]) == 0
    record = json.loads((run_dir / "run.json").read_text())
    assert record["sequence"] == 1 and record["previous"] is None
    assert {f"{step}.{kind}" for step in STEPS for kind in ("ipynb", "html", "log")} <= set(record["files"])
    assert record["import_files"], "the stragglers' file is proven by its digest"
    index = (run_dir.parent / "index.html").read_text()
    assert all(f'href="{run_dir.name}/{step}.html"' in index for step in STEPS)
    assert "passes" in index and "migrated, " in index and "imported, " in index


def test_the_html_records_show_no_code_and_each_progress_bar_once(run_dir: Path) -> None:
    html = (run_dir / "01_audit_old_pool.html").read_text()
    assert "audit.run_audit" not in html and "notebook_params.from_namespace" not in html
    assert html.count("<td>old_user_pool_id</td>") == 1
    bars = re.findall(r"old pool users: +\d+%", html)
    assert bars == ["old pool users: 100%"], bars


def test_report_counts_equal_the_ground_truth(run_dir: Path, legacy: LegacyPool) -> None:
    expected = expected_states(legacy)
    report = json.loads((run_dir / "report.json").read_text())
    assert report["users"] == USERS
    assert report["states"] == {state: len(names) for state, names in expected.items()}
    assert sum(report["states"].values()) == USERS
    assert report["new_pool_only"] == 0
    assert expected["migrated"], "the replay should have migrated somebody"


def test_per_user_snapshot_matches_the_ground_truth(run_dir: Path, legacy: LegacyPool) -> None:
    from cognito_migration.records import masker

    mask_text = masker(run_dir).text
    expected = expected_states(legacy)
    snapshot = pd.read_parquet(run_dir / "report_users.parquet")
    by_masked = dict(zip(snapshot["username"], snapshot["state"], strict=True))
    for state, names in expected.items():
        assert {by_masked[mask_text(n)] for n in names} <= {state}


def test_canary_migrated_with_groups_and_wrong_password_refused(run_dir: Path) -> None:
    checks = {c["name"]: c for c in json.loads((run_dir / "smoke.json").read_text())}
    for name in (
        "wrong password is refused",
        "wrong password creates nobody",
        "right password signs in",
        "migrated user is CONFIRMED",
        "attributes carried",
        "groups carried",
        "forgot password migrates the user",
        "canaries removed",
    ):
        assert checks[name]["passed"], checks[name]
    assert "expected [" in checks["groups carried"]["detail"] and "[]" not in checks["groups carried"]["detail"]


def readable(path: Path) -> str:
    """A file's text; Parquet is compressed, so its cells are read back as CSV."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path).to_csv()
    return path.read_bytes().decode("utf-8", "replace")


def test_no_password_and_no_personal_data_in_outputs(run_dir: Path, legacy: LegacyPool) -> None:
    text = "\n".join(readable(p) for p in run_dir.rglob("*") if p.is_file())
    text += (run_dir.parent.parent / "runner.log").read_text()
    passwords = [legacy.password(u.username) for u in legacy.users]
    assert not [p for p in passwords if p in text]
    emails = [u.attributes["email"] for u in legacy.users if u.attributes.get("email")]
    phones = [u.attributes["phone_number"] for u in legacy.users if u.attributes.get("phone_number")]
    assert not [e for e in emails if e in text]
    assert not [p for p in phones if p in text]


def test_records_are_readable_by_their_owner_only(run_dir: Path) -> None:
    written = [run_dir, *run_dir.rglob("*"), *(run_dir.parent / "imports").rglob("*")]
    shared = [f"{p.name} {stat.S_IMODE(p.stat().st_mode):o}" for p in written if stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert shared == [], "another local user could read these"


def test_import_file_is_kept_outside_the_run_folder(run_dir: Path, legacy: LegacyPool) -> None:
    folder = run_dir.parent / "imports" / run_dir.name
    files = sorted(folder.glob("users-*.csv"))

    assert files and not folder.is_relative_to(run_dir)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    text = "\n".join(f.read_text() for f in files)
    assert any(u.attributes["email"] in text for u in legacy.users), "the import file carries real addresses"
    report = json.loads((run_dir / "report.json").read_text())
    assert report["import_file"]["files"] == [f.name for f in files]


def test_cutover_imported_every_lazily_migratable_user(run_dir: Path, legacy: LegacyPool) -> None:
    from cognito_migration.records import masker

    mask_text = masker(run_dir).text
    record = json.loads((run_dir / "cutover.json").read_text())
    after = pd.read_parquet(run_dir / "cutover_users.parquet").set_index("username")
    expected = expected_states(legacy)
    (job,) = record["result"]["jobs"]
    failed = {p["username"] for p in job["problems"] if p["outcome"] == "FAILED"}
    by_key: dict[str, list[str]] = {}
    for u in legacy.users:
        by_key.setdefault(u.username.casefold(), []).append(u.username)
    importable = {
        n
        for n in expected["not yet"]
        if legacy.user(n).attributes.get("email_verified") == "true" and len(by_key[n.casefold()]) == 1
    }
    bad_phones = {n for n in importable if "bad_phone" in legacy.user(n).quirks}

    assert record["confirmation"] == "done" and all(c["passed"] for c in record["checks"] if c["severity"] == "blocker")
    assert job["status"] == "Succeeded" and job["imported"] == len(importable) - len(failed)
    assert failed == {mask_text(n) for n in bad_phones}, "only malformed phone numbers fail the import"
    for name in importable - bad_phones:
        assert after.loc[mask_text(name), "status"] == "RESET_REQUIRED", name
    assert {mask_text(n) for n in expected["migrated"]} <= set(after.index)
    for user in legacy.users:
        if not user.enabled and mask_text(user.username) in after.index:
            assert not after.loc[mask_text(user.username), "enabled"], "a disabled user came back enabled"
    assert "UserMigration" not in record["result"]["lambda_config_after"]
    assert "PostAuthentication" in record["result"]["lambda_config_after"], "kept: cutover_keep_group_copy"


def test_no_name_survives_in_the_saved_records(run_dir: Path, legacy: LegacyPool) -> None:
    from cognito_migration import records

    parquet = {p.name: pd.read_parquet(p) for p in run_dir.glob("*.parquet")}
    text = "\n".join([frame.to_csv() for frame in parquet.values()] + [p.read_text() for p in run_dir.glob("*.json")])
    assert parquet and all(not set(records.NAME_COLUMNS) & set(frame.columns) for frame in parquet.values())
    full_names = {f"{u.attributes['given_name']} {u.attributes['family_name']}" for u in legacy.users}
    assert [name for name in full_names if name in text] == []
    assert [u.username for u in legacy.users if f'"{u.username}"' in text or f",{u.username}," in text] == []
    assert (run_dir.parent / records.KEY_FILE).exists() and not list(run_dir.rglob(records.KEY_FILE))
