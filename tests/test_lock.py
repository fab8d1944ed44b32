"""The locks agree with requirements*.txt, carry hashes, and are what this environment holds (no network)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cognito_migration import lock

ROOT = Path(__file__).resolve().parent.parent
# each lock, the file it is compiled from, and what else the compile reads
LOCKS = {
    "requirements.lock": ("requirements.txt", []),
    "requirements-dev.lock": ("requirements-dev.txt", ["-c", "requirements.lock"]),
}
RELOCK = "run `make lock` after changing requirements*.txt (docs/development.md: The lock)"


def top_level_pins(path: Path) -> dict[str, str]:
    """The pins a requirements file asks for, following -r; every requirement in it must be pinned with ==."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#") or line == "-e .":
            continue
        if line.startswith("-r "):
            pins.update(top_level_pins(path.parent / line[3:].strip()))
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"{path.name}: {line!r} is not pinned with =="
        pins[canonicalize_name(requirement.name)] = specifiers[0].version
    return pins


@pytest.mark.parametrize("lock_name", LOCKS)
def test_the_lock_says_what_it_was_compiled_from(lock_name):
    source, extra = LOCKS[lock_name]
    words = shlex.split(lock.header(ROOT / lock_name))
    assert words[:3] == ["uv", "pip", "compile"], f"{lock_name}'s header is not uv's: {RELOCK}"
    assert words[3] == source and words[4 : 4 + len(extra)] == extra, f"{lock_name}: compiled from {words[3:]}"
    assert "--generate-hashes" in words and words[-2:] == ["-o", lock_name]


@pytest.mark.parametrize("lock_name", LOCKS)
def test_every_top_level_pin_is_in_the_lock_at_its_version(lock_name):
    source, _ = LOCKS[lock_name]
    asked = top_level_pins(ROOT / source)
    locked: dict[str, set[str]] = {}
    for pin in lock.pins(ROOT / lock_name):
        locked.setdefault(pin.name, set()).add(pin.version)
    disagree = {name: (version, sorted(locked.get(name, ["missing"]))) for name, version in asked.items()}
    disagree = {name: both for name, both in disagree.items() if both[1] != [both[0]]}
    assert not disagree, f"{source} and {lock_name} disagree (asked, locked): {disagree}; {RELOCK}"


@pytest.mark.parametrize("lock_name", LOCKS)
def test_every_locked_package_carries_hashes_and_the_library_is_left_out(lock_name):
    pins = lock.pins(ROOT / lock_name)
    assert len(pins) > 100  # the whole tree, not the top level
    sha256 = re.compile(r"sha256:[0-9a-f]{64}")
    unhashed = [p.name for p in pins if not p.hashes or not all(sha256.fullmatch(h) for h in p.hashes)]
    assert unhashed == []
    assert "cognito-migration" not in {p.name for p in pins}  # installed editable, --no-deps, after the lock


def test_the_dev_lock_keeps_every_runtime_pin_so_tests_test_what_the_demo_runs():
    dev = set(map(_key, lock.pins(ROOT / "requirements-dev.lock")))
    assert [p for p in map(_key, lock.pins(ROOT / "requirements.lock")) if p not in dev] == []


def _key(pin: lock.Pin) -> tuple:
    return pin.name, pin.version, pin.marker, frozenset(pin.hashes)


def test_this_environment_holds_what_the_dev_lock_pins():
    """`make test` installed requirements-dev.lock; a stale venv (an old lock) fails here, not in a record."""
    assert lock.differences(ROOT / "requirements-dev.lock") == []


def test_the_makefile_installs_the_locks_hash_checked_and_a_changed_lock_reinstalls():
    makefile = (ROOT / "Makefile").read_text()
    runtime = re.search(r"^\$\(VENV\)/\.runtime:(.*)$", makefile, re.M).group(1).split()
    dev = re.search(r"^\$\(VENV\)/\.dev:(.*)$", makefile, re.M).group(1).split()
    assert "requirements.lock" in runtime and "requirements-dev.lock" in dev
    assert "pip install --quiet --require-hashes -r requirements.lock" in makefile
    assert "pip install --quiet --require-hashes -r requirements-dev.lock" in makefile
    assert "pip install --quiet --no-deps --no-build-isolation -e ." in makefile


def test_lock_reading_rejects_what_a_lock_never_holds(tmp_path):
    bad = tmp_path / "bad.lock"
    bad.write_text("# header\n#    uv pip compile x\n-e .\n")
    with pytest.raises(ValueError, match="not a pinned requirement"):
        lock.pins(bad)
    good = tmp_path / "good.lock"
    good.write_text(
        "# header\n#    uv pip compile x\nFoo_Bar==1.0 ; sys_platform == 'nonesuch' \\\n"
        "    --hash=sha256:" + "0" * 64 + "\n    # via x\n"
    )
    (pin,) = lock.pins(good)
    assert (pin.name, pin.version, pin.applies()) == ("foo-bar", "1.0", False)
    assert lock.differences(good) == []  # a line for another platform is not this environment's
    assert lock.sha256(tmp_path / "missing.lock") == "no lock"
