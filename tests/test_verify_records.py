"""Records you can prove: ``verify`` passes untouched runs and names every edited, missing or added file and
every broken link, on small run folders sealed as the runner seals them."""

from __future__ import annotations

import json
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cognito_migration import chain, runbook, stragglers
from cognito_migration.__main__ import main

RUNS = ("20261101T090000Z", "20261102T090000Z", "20261103T090000Z")


def fake_run(env_dir: Path, run_id: str, outcome: str = "passed", imports: bool = False) -> Path:
    """A run folder with a few records of each kind, sealed as the runner seals it when the run ends."""
    run_dir = env_dir / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "01_audit_old_pool.html").write_text("<html><body>the audit</body></html>")
    (run_dir / "01_audit_old_pool.ipynb").write_text('{"cells": []}')
    (run_dir / "old_users.parquet").write_bytes(b"PAR1\x00\x01masked\x00PAR1")
    (run_dir / "report.json").write_text(json.dumps({"users": 3, "states": {"migrated": 1, "not yet": 2}}))
    if imports:
        folder = chain.import_dir(run_dir)
        folder.mkdir(parents=True)
        (folder / "users-001.csv").write_text("cognito:username,email\njane,jane@example.com\n")
    manifest = {"run_id": run_id, "env": env_dir.name, "started": "2026-11-01T09:00:00+00:00", "steps": []}
    manifest.update(ended="2026-11-01T09:05:00+00:00", outcome=outcome)
    chain.seal(run_dir, manifest)
    return run_dir


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    env = tmp_path / "outputs" / "staging"
    for run_id in RUNS:
        fake_run(env, run_id, outcome="failed" if run_id == RUNS[1] else "passed", imports=run_id == RUNS[2])
    return env


def verify_cli(env_dir: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["verify", "--env", env_dir.name, "--outputs", str(env_dir.parent), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_untouched_runs_verify_a_failed_run_included(env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, said = verify_cli(env_dir, capsys=capsys)

    assert code == 0, said
    assert "verified 3 runs" in said
    first, second, third = (json.loads((env_dir / r / "run.json").read_text()) for r in RUNS)
    assert first["previous"] is None and first["sequence"] == 1
    assert second["previous"]["run_id"] == RUNS[0] and third["previous"]["run_id"] == RUNS[1]
    assert second["previous"]["sha256"] == chain.sha256_file(env_dir / RUNS[0] / "run.json")
    assert set(first["files"]) == {
        "01_audit_old_pool.html",
        "01_audit_old_pool.ipynb",
        "old_users.parquet",
        "report.json",
    }


def test_an_edited_byte_of_an_html_record_is_named(env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    html = env_dir / RUNS[1] / "01_audit_old_pool.html"
    data = bytearray(html.read_bytes())
    data[10] ^= 0x01
    html.write_bytes(bytes(data))

    code, said = verify_cli(env_dir, capsys=capsys)

    assert code == 1
    assert f"{RUNS[1]}: edited 01_audit_old_pool.html" in said
    assert "verified" not in said


def test_a_deleted_parquet_file_is_named(env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (env_dir / RUNS[0] / "old_users.parquet").unlink()

    code, said = verify_cli(env_dir, capsys=capsys)

    assert code == 1 and f"{RUNS[0]}: missing old_users.parquet" in said


def test_an_added_file_is_named(env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (env_dir / RUNS[2] / "notes.txt").write_text("added afterwards")
    (env_dir / RUNS[2] / "extra").mkdir()
    (env_dir / RUNS[2] / "extra" / "more.json").write_text("{}")

    code, said = verify_cli(env_dir, capsys=capsys)

    assert code == 1
    assert f"{RUNS[2]}: added notes.txt" in said and f"{RUNS[2]}: added extra/more.json" in said


def test_an_edited_run_json_in_the_middle_breaks_the_next_link(
    env_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = env_dir / RUNS[1] / "run.json"
    path.write_text(path.read_text().replace('"failed"', '"passed"'))

    code, said = verify_cli(env_dir, capsys=capsys)

    assert code == 1
    assert f"{RUNS[1]}: run.json was edited: {RUNS[2]}'s link holds sha256" in said


def test_a_run_removed_from_the_middle_breaks_the_chain(env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(env_dir / RUNS[1])

    code, said = verify_cli(env_dir, capsys=capsys)

    assert code == 1
    assert f"{RUNS[2]}: broken link: its previous run {RUNS[1]} is missing" in said
    assert f"{RUNS[0]}: broken chain: no later run links it" in said


def test_a_deleted_run_json_is_named_and_breaks_the_next_link(
    env_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (env_dir / RUNS[1] / "run.json").unlink()

    code, said = verify_cli(env_dir, capsys=capsys)

    assert code == 1
    assert f"{RUNS[1]}: missing run.json" in said
    assert f"{RUNS[2]}: broken link: its previous run {RUNS[1]} has no run.json" in said


def test_a_run_that_never_ended_cannot_be_proven(env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    killed = env_dir / "20261104T090000Z"
    killed.mkdir()
    (killed / "run.json").write_text(json.dumps({"run_id": killed.name, "steps": []}))

    code, said = verify_cli(env_dir, capsys=capsys)

    assert code == 1 and f"{killed.name}: not sealed" in said


def test_import_files_are_proven_by_digest_and_may_be_deleted(
    env_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = json.loads((env_dir / RUNS[2] / "run.json").read_text())
    assert set(record["import_files"]) == {"users-001.csv"}
    assert "jane@example.com" not in (env_dir / RUNS[2] / "run.json").read_text(), "digests only, never content"
    csv = chain.import_dir(env_dir / RUNS[2]) / "users-001.csv"
    csv.write_text(csv.read_text().replace("jane", "june"))

    code, said = verify_cli(env_dir, capsys=capsys)
    assert code == 1 and f"{RUNS[2]}: edited imports/{RUNS[2]}/users-001.csv" in said

    shutil.rmtree(csv.parent)  # as docs/steps.md asks, once the import job has been checked
    code, said = verify_cli(env_dir, capsys=capsys)
    assert code == 0 and "import files were deleted" in said


def test_one_run_is_verified_with_the_link_that_vouches_for_it(
    env_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, said = verify_cli(env_dir, "--run", RUNS[1], capsys=capsys)
    assert code == 0 and "verified 1 run" in said
    assert f"{RUNS[1]}/run.json sha256 {chain.sha256_file(env_dir / RUNS[1] / 'run.json')}" in said

    path = env_dir / RUNS[1] / "run.json"
    path.write_text(path.read_text() + " ")
    code, said = verify_cli(env_dir, "--run", RUNS[1], capsys=capsys)
    assert code == 1 and f"{RUNS[1]}: run.json was edited" in said

    code, said = verify_cli(env_dir, "--run", "20991231T000000Z", capsys=capsys)
    assert code == 1 and "no such run" in said


def test_hand_runs_and_rollback_records_stay_out_of_the_chain(
    env_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (env_dir / "manual-20261105T090000Z").mkdir()
    (env_dir / "manual-20261105T090000Z" / "audit.json").write_text("{}")
    (env_dir / "20261106T090000Z-rollback-detach").mkdir()
    fake_run(env_dir, "20261107T090000Z")

    code, said = verify_cli(env_dir, capsys=capsys)

    assert code == 0, said
    assert "verified 4 runs" in said
    assert "not in the chain: 20261106T090000Z-rollback-detach, manual-20261105T090000Z" in said
    later = json.loads((env_dir / "20261107T090000Z" / "run.json").read_text())
    assert later["previous"]["run_id"] == RUNS[2], "a hand run is never a link"


def test_runs_are_chained_in_the_order_they_ended(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = tmp_path / "staging"
    fake_run(env, RUNS[1])  # started later, ended first
    fake_run(env, RUNS[0])
    fake_run(env, RUNS[2])

    code, said = verify_cli(env, capsys=capsys)

    assert code == 0, said
    assert json.loads((env / RUNS[0] / "run.json").read_text())["previous"]["run_id"] == RUNS[1]
    assert json.loads((env / RUNS[2] / "run.json").read_text())["previous"]["run_id"] == RUNS[0]


def test_imports_folder_is_where_the_stragglers_file_goes(tmp_path: Path) -> None:
    run_dir = tmp_path / "local" / RUNS[0]
    assert chain.import_dir(run_dir) == stragglers.import_dir(run_dir)


def test_verify_without_records_says_where_it_looked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--env", "nowhere", "--outputs", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_runner_seals_a_run_that_stops_before_its_first_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """AWS refuses the caller before any step ran: the run folder is still a sealed, verifiable record."""

    def refused(*args: object) -> None:
        raise runbook.aws.AwsSetupError("no credentials: set AWS_PROFILE")

    monkeypatch.setattr(runbook, "_run_steps", refused)
    outputs = tmp_path / "outputs"

    with pytest.raises(runbook.aws.AwsSetupError):
        runbook.run("local", outputs=outputs, progress=False)

    (run_dir,) = [p for p in (outputs / "local").iterdir() if chain.is_run(p)]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["outcome"] == "failed" and "no credentials" in record["error"] and record["sequence"] == 1
    assert verify_cli(outputs / "local", capsys=capsys)[0] == 0
    index = outputs / "local" / "index.html"
    assert run_dir.name in index.read_text()
    assert stat.S_IMODE(index.stat().st_mode) == 0o600 and stat.S_IMODE((run_dir / "run.json").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "edit",
    [
        {"files": ["01_audit_old_pool.html"]},
        {"sequence": "2"},
        {"previous": "20261101T090000Z"},
        {"files": {"report.json": 1}},
    ],
)
def test_a_malformed_seal_is_named_not_a_crash(
    env_dir: Path, edit: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    path = env_dir / RUNS[2] / "run.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **edit}))

    code, said = verify_cli(env_dir, capsys=capsys)

    assert code == 1 and f"{RUNS[2]}: run.json's manifest or link is malformed" in said


def test_runs_ending_at_once_still_form_one_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = tmp_path / "staging"
    names = [f"20261101T0900{n:02d}Z" for n in range(8)]
    for name in names:
        (env / name).mkdir(parents=True)
        (env / name / "report.json").write_text(name)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: chain.seal(env / n, {"run_id": n, "outcome": "passed"}), names))

    code, said = verify_cli(env, capsys=capsys)

    assert code == 0, said
    sequences = sorted(json.loads((env / n / "run.json").read_text())["sequence"] for n in names)
    assert sequences == list(range(1, 9)), "no two runs linked the same previous run"
