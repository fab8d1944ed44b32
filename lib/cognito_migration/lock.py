"""The lock: requirements.lock pins every package of the runtime tree, with hashes.

`make lock` compiles it from requirements.txt (uv pip compile --generate-hashes), and requirements-dev.lock from
requirements-dev.txt with requirements.lock as constraints; `make demo` and `make test` install them with
``pip install --require-hashes``. run.json records the lock's sha256 and what, if anything, this environment holds
that differs from it, so a record says which code ran.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name
from packaging.version import Version

LOCK = "requirements.lock"  # in the project's folder, beside notebooks/


@dataclass(frozen=True)
class Pin:
    """One line of a lock: ``name==version ; marker`` and its hashes."""

    name: str  # canonical (PEP 503)
    version: str
    marker: str | None
    hashes: tuple[str, ...]

    def applies(self) -> bool:
        """Whether this environment (platform, Python) installs this line."""
        return self.marker is None or Marker(self.marker).evaluate()


def pins(path: Path) -> list[Pin]:
    """Every pin of a lock file; raises ValueError on a line that is not ``name==version`` (a lock has no other)."""
    found = []
    logical = path.read_text().replace("\\\n", " ")
    for number, line in enumerate(logical.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        head, *hashes = line.split("--hash=")
        requirement, _, marker = head.partition(";")
        name, sep, version = requirement.strip().partition("==")
        if not sep or not version or " " in version or name.startswith("-"):
            raise ValueError(f"{path.name}:{number}: not a pinned requirement: {line.strip()!r}")
        found.append(Pin(canonicalize_name(name), version, marker.strip() or None, tuple(h.strip() for h in hashes)))
    return found


def header(path: Path) -> str:
    """The command a lock says it was compiled with (uv writes it on the file's second line)."""
    return path.read_text().splitlines()[1].lstrip("#").strip()


def sha256(path: Path) -> str:
    """The lock's digest, or ``no lock`` where the project has none."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "no lock"


def differences(path: Path) -> list[str]:
    """What this environment holds that differs from what the lock pins for it (empty: it holds the lock)."""
    if not path.is_file():
        return [f"{path.name}: not found"]
    found = []
    for pin in pins(path):
        if not pin.applies():
            continue
        try:
            installed = importlib.metadata.version(pin.name)
        except importlib.metadata.PackageNotFoundError:
            installed = "not installed"
        if installed == "not installed" or Version(installed) != Version(pin.version):
            found.append(f"{pin.name}: lock {pin.version}, installed {installed}")
    return found
