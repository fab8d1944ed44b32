"""The library as a wheel: it carries its data, its console script works, and it finds the project's folder
without its checkout (no editable install, no PYTHONPATH=lib). The wheel is built from a copy of the sources,
offline (--no-build-isolation: the installed setuptools), and installed with --target into a folder of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cognito_migration import lock

ROOT = Path(__file__).resolve().parents[1]  # the checkout these tests belong to
PIP = (sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input")
# Package data the library reads at run time: the trigger it zips, the index's template, the function runner.
DATA = (
    "cognito_migration/trigger/migration_trigger.py",
    "cognito_migration/templates/index.html.j2",
    "cognito_migration/local/lambda_bootstrap.py",
)


class Installed:
    """A wheel of the library installed with --target, and a copy of the project's notebooks/ and params/."""

    def __init__(self, wheel: Path, site: Path, project: Path, elsewhere: Path) -> None:
        self.wheel, self.site, self.project, self.elsewhere = wheel, site, project, elsewhere

    def run(self, *command: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        """A fresh process that sees the installed wheel first, and no COGNITO_MIGRATION_ROOT unless given."""
        environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COGNITO_MIGRATION_ROOT")}
        environ.update(PYTHONPATH=str(self.site), **env)
        return subprocess.run(command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=120)

    def python(self, code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-c", code, cwd=cwd, **env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"  # a copy, so the build leaves no build/ or egg-info in the checkout
    source.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", source)
    shutil.copytree(ROOT / "lib", source / "lib", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheels = work / "wheels"
    built = subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("cognito_migration-*.whl")
    site = work / "site"
    done = subprocess.run(
        [*PIP, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    project = work / "project"
    for folder in ("notebooks", "params"):
        shutil.copytree(ROOT / folder, project / folder)
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    yield Installed(wheel, site, project, elsewhere)


def test_the_wheel_carries_the_package_data_and_the_console_script(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = wheel.read(entry_points).decode()
    assert [path for path in DATA if path not in names] == []
    assert "cognito-migration = cognito_migration.__main__:main" in scripts


def test_the_installed_library_is_the_wheel_not_the_checkout(installed: Installed) -> None:
    done = installed.python("import cognito_migration; print(cognito_migration.__file__)", cwd=installed.elsewhere)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(installed.site)


def test_the_project_is_found_from_its_folder_or_below(installed: Installed) -> None:
    for cwd in (installed.project, installed.project / "notebooks"):
        done = installed.python("from cognito_migration import project; print(project.root())", cwd=cwd)
        assert done.returncode == 0, done.stderr
        assert Path(done.stdout.strip()) == installed.project.resolve()


def test_the_project_is_found_by_the_variable_from_anywhere(installed: Installed) -> None:
    done = installed.python(
        "from cognito_migration import project; print(project.root())",
        cwd=installed.elsewhere,
        COGNITO_MIGRATION_ROOT=str(installed.project),
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == installed.project.resolve()


def test_without_a_project_the_error_names_the_fix(installed: Installed) -> None:
    done = installed.python("from cognito_migration import project; project.root()", cwd=installed.elsewhere)
    assert done.returncode != 0
    assert "ProjectNotFound" in done.stderr
    assert "--root" in done.stderr and "COGNITO_MIGRATION_ROOT" in done.stderr


def test_a_variable_naming_no_project_is_refused(installed: Installed) -> None:
    done = installed.python(
        "from cognito_migration import project; project.root()",
        cwd=installed.project,
        COGNITO_MIGRATION_ROOT=str(installed.elsewhere),
    )
    assert done.returncode != 0 and "COGNITO_MIGRATION_ROOT" in done.stderr


def test_the_console_script_answers_help(installed: Installed) -> None:
    script = installed.site / "bin" / "cognito-migration"
    done = installed.run(str(script), "--help", cwd=installed.elsewhere)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: cognito-migration")
    for command in ("run", "rollback", "verify", "index"):
        assert command in done.stdout
    run_help = installed.run(str(script), "run", "--help", cwd=installed.elsewhere)
    assert run_help.returncode == 0 and "--root" in run_help.stdout


def test_the_console_script_uses_the_project_it_is_given(installed: Installed) -> None:
    script = str(installed.site / "bin" / "cognito-migration")
    lost = installed.run(script, "index", "--env", "local", cwd=installed.elsewhere)
    assert lost.returncode == 2 and "project not found" in lost.stderr and "--root" in lost.stderr

    for how in (("--root", str(installed.project)), ()):
        cwd = installed.elsewhere if how else installed.project / "params"
        done = installed.run(script, "index", "--env", "local", *how, cwd=cwd)
        # no run yet: it looked for the records in the project's outputs/, wherever it was started
        assert done.returncode == 2, done.stderr
        assert f"{installed.project.resolve() / 'outputs' / 'local'} does not exist" in done.stderr


def test_every_dependency_range_holds_the_version_the_lock_pins() -> None:
    declared = [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    pinned: dict[str, list[str]] = {}
    for pin in lock.pins(ROOT / lock.LOCK):
        pinned.setdefault(pin.name, []).append(pin.version)
    outside = [
        f"{req}: the lock pins {version}"
        for req in declared
        for version in pinned.get(canonicalize_name(req.name), ["nothing"])
        if version == "nothing" or version not in req.specifier
    ]
    assert outside == [], "bring pyproject.toml's dependencies and requirements.txt (then `make lock`) together"


def test_every_runtime_requirement_is_a_dependency() -> None:
    declared = {
        canonicalize_name(Requirement(r).name)
        for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    lines = (line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines())
    wanted = {canonicalize_name(Requirement(line).name) for line in lines if line and not line.startswith("-")}
    assert wanted - {"pip", "setuptools"} - declared == set()
