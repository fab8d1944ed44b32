"""Records are owner-only: another local user cannot read a run folder (security review, finding 1).

The attack is a second account on the machine reading ``outputs/<env>/<run-id>/``; the tests write under
the common umask 022, where anything not made private explicitly comes out 0644 / 0755.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from cognito_migration import records, report, runbook, stragglers
from cognito_migration.report import MIGRATED, NOT_YET


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The usual default umask: files 0644, folders 0755 unless a writer says otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def readable_by_others(root: Path) -> list[str]:
    """Every path under ``root`` (``root`` included) with a group or other permission bit."""
    paths = [root, *root.rglob("*")]
    return [f"{p} {stat.S_IMODE(p.stat().st_mode):o}" for p in paths if stat.S_IMODE(p.stat().st_mode) & 0o077]


def test_library_writers_create_owner_only_records(tmp_path: Path, permissive_umask: None) -> None:
    run_dir = tmp_path / "outputs" / "local" / "manual"
    records.save_json(run_dir, "findings", [{"id": "x"}])
    records.save_frame(run_dir, "old_users", pd.DataFrame({"username": ["j***abc123"]}))
    classified = pd.DataFrame({"username": ["a", "b"], "status": ["CONFIRMED"] * 2, "state": [MIGRATED, NOT_YET]})
    report.chart(classified, run_dir / "report.png")
    import_file = stragglers.ImportFile(header=["cognito:username"], rows=[["jane"]], usernames=["jane"], excluded={})
    stragglers.write(import_file, stragglers.import_dir(run_dir))

    assert readable_by_others(tmp_path / "outputs") == []


def test_a_world_readable_leftover_is_made_owner_only_when_rewritten(tmp_path: Path, permissive_umask: None) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o755)
    leftover = run_dir / "report.json.tmp"  # a crash between write and rename leaves one behind
    leftover.write_text("{}")
    os.chmod(leftover, 0o644)

    records.save_json(run_dir, "report", {"users": 1})

    assert readable_by_others(run_dir) == []


KERNEL_WRITES = """\
from pathlib import Path
Path(run_dir, "written_by_the_kernel.txt").write_text("the kernel's own open(), no library writer")
"""


def test_runner_step_and_its_kernel_write_owner_only(tmp_path: Path, permissive_umask: None) -> None:
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    parameters = nbformat.v4.new_code_cell('run_dir = ""', metadata={"tags": ["parameters"]})
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    probe = nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell(KERNEL_WRITES)], metadata=kernel)
    nbformat.write(probe, notebooks / "00_probe.ipynb")
    _, run_dir = runbook._new_run_dir(tmp_path / "outputs" / "local")

    outcome = runbook._execute("00_probe", {"run_dir": str(run_dir)}, run_dir, notebooks)

    assert outcome["outcome"] == "passed", outcome
    written = sorted(p.name for p in run_dir.iterdir())
    assert written == ["00_probe.html", "00_probe.ipynb", "00_probe.log", "written_by_the_kernel.txt"]
    assert readable_by_others(run_dir) == []
    assert stat.S_IMODE(os.umask(0o022)) == 0o022, "the runner gives the previous umask back"
