"""``outputs/<env>/index.html``: every run with its figures, links to each step's HTML record and whether
``verify`` passes for it; values from the records are text, never markup."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from cognito_migration import chain, run_index

HOSTILE = "<script>alert(1)</script>"


def fake_run(env_dir: Path, run_id: str, results: dict[str, object], steps: list[str]) -> Path:
    run_dir = env_dir / run_id
    run_dir.mkdir(parents=True)
    outcomes = []
    for step in steps:
        (run_dir / f"{step}.html").write_text("<html></html>")
        outcomes.append({"step": step, "outcome": "passed", "seconds": 1.5, "html": f"{step}.html"})
    for name, data in results.items():
        (run_dir / f"{name}.json").write_text(json.dumps(data))
    manifest = {
        "run_id": run_id,
        "started": "2026-11-01T09:00:00+00:00",
        "ended": "2026-11-01T09:05:00+00:00",
        "outcome": "passed",
        "caller_identity": {"Arn": f"arn:aws:sts::123456789012:assumed-role/ops/{HOSTILE}"},
        "git_commit": "0123456789abcdef0123+dirty",
        "steps": outcomes,
    }
    chain.seal(run_dir, manifest)
    return run_dir


REPORT = {"users": 400, "states": {"migrated": 111, "not yet": 268, "cannot migrate lazily": 21}}
DEPLOY = {
    "dry_run": False,
    "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:cognito-user-migration",
    "lambda_config": {"UserMigration": "arn", "PreSignUp": "arn"},
    "signup_index": {"written": 1012},
}
CUTOVER = {
    "dry_run": False,
    "confirmation": "done",
    "result": {"jobs": [{"imported": 259, "failed": 1, "skipped": 0}], "detached": ["UserMigration"]},
}


def test_index_links_every_run_and_step_with_figures_and_verification(tmp_path: Path) -> None:
    env = tmp_path / "local"
    first = fake_run(env, "20261101T090000Z", {"deploy": DEPLOY}, ["01_audit_old_pool", "03_deploy_trigger"])
    second = fake_run(env, "20261102T090000Z", {"report": REPORT, "cutover": CUTOVER}, ["05_report", "06_cutover"])
    (first / "01_audit_old_pool.html").write_text("<html>edited</html>")

    html = run_index.write(env).read_text()

    for run_dir, step in ((first, "01_audit_old_pool"), (first, "03_deploy_trigger"), (second, "06_cutover")):
        assert f'href="{run_dir.name}/{step}.html"' in html
    assert "111 migrated, 268 not yet, 21 cannot migrate lazily (of 400)" in html
    assert "259 imported, 1 failed, 0 skipped in 1 import job(s); detached: UserMigration" in html
    assert "function cognito-user-migration; triggers attached: PreSignUp, UserMigration" in html
    assert "edited 01_audit_old_pool.html" in html, "the run that no longer verifies says why"
    assert html.index(second.name) < html.index(first.name), "newest first"
    assert "0123456789ab" in html and "uncommitted changes" in html


def test_index_escapes_values_and_is_owner_only(tmp_path: Path) -> None:
    env = tmp_path / "local"
    run_dir = fake_run(env, "20261101T090000Z", {}, ["01_audit_old_pool"])
    record = json.loads((run_dir / "run.json").read_text())
    record["steps"][0].update(outcome="failed", error="GateFailed: cutover: jane.doe@example.com not imported")
    (run_dir / "run.json").write_text(json.dumps(record))
    (env / "manual-20261102T090000Z").mkdir()

    path = run_index.write(env)
    html = path.read_text()

    assert HOSTILE not in html and re.search(r"<script\b", html) is None
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "manual-20261102T090000Z" in html and "hand run" in html
    assert "failed: GateFailed" in html and "jane.doe" not in html, "the error's name, never its message"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_index_is_not_a_run_and_does_not_disturb_verify(tmp_path: Path) -> None:
    env = tmp_path / "local"
    fake_run(env, "20261101T090000Z", {}, [])
    run_index.write(env)
    fake_run(env, "20261102T090000Z", {}, [])
    run_index.write(env)

    checked = chain.verify(env)

    assert checked.passed and checked.runs == ["20261101T090000Z", "20261102T090000Z"] and checked.outside == []


def test_an_edited_run_json_marks_that_run_on_the_index(tmp_path: Path) -> None:
    env = tmp_path / "local"
    first = fake_run(env, "20261101T090000Z", {}, [])
    fake_run(env, "20261102T090000Z", {}, [])
    (first / "run.json").write_text((first / "run.json").read_text().replace('"passed"', '"passed "'))

    lines = {
        line.run_id: line for line in (run_index.summarise(env / r, chain.verify(env)) for r in chain.verify(env).runs)
    }

    assert not lines[first.name].verified and lines["20261102T090000Z"].verified
    assert "run.json was edited" in lines[first.name].problems[0]
