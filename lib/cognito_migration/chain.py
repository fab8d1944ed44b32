"""Records you can prove: each run's manifest, the chain of an environment's runs, and ``verify``.

When a run ends (passed, failed or interrupted) the runner seals it: ``run.json`` gets the sha256 of every
file of the run folder (``files``; run.json itself cannot list its own digest), of every file of the
stragglers' import folder written for it (``import_files``: digests only, the file holds real addresses), and
a link to the environment's previous sealed run: its id, its place in the chain and the sha256 of its
run.json (``previous``). Editing a run.json breaks the next run's link; removing a run leaves the next one
naming a run that is not there.

Only the runner's folders (``<UTC time>[-n]``) are runs. Hand runs (``manual-<id>``) and rollback records
(``<id>-rollback-<mode>``) stay out of the chain: nobody ends a hand run, so nothing can say when its files
are final, and rollback's record is written by a command that keeps no manifest. ``verify`` names them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import records

RUN_JSON = "run.json"
IMPORTS = "imports"  # stragglers.import_dir: outputs/<env>/imports/<run-id>/ (a test keeps the two equal)
INDEX = "index.html"
RUN_ID = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")  # records.new_run_id(), with runbook's -2, -3... suffix
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_digests(folder: Path, leave_out: frozenset[str] = frozenset()) -> dict[str, str]:
    """sha256 of every file under ``folder`` by its path relative to it (``leave_out``: top-level names)."""
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if name not in leave_out and (path.is_file() or path.is_symlink()):
            # A dangling link has no content to hash, but it is still something added to the record.
            found[name] = sha256_file(path) if path.is_file() else "symlink"
    return found


def import_dir(run_dir: Path) -> Path:
    return run_dir.parent / IMPORTS / run_dir.name


def is_run(path: Path) -> bool:
    return path.is_dir() and RUN_ID.match(path.name) is not None


def _environment_state(name: str) -> bool:
    """The environment's own files beside its runs, never a record: the import folders, the index, and its
    private state (dot-names: the masking key, the reads' snapshots in .snapshots)."""
    return name in (IMPORTS, INDEX) or name.startswith(".")


@contextlib.contextmanager
def _chain_lock(env_dir: Path) -> Iterator[None]:
    """Two runs of one environment ending at once must not both link to the same previous run: whoever
    seals holds an exclusive lock on the environment's folder (no lock file to leave behind)."""
    descriptor = os.open(env_dir, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _read_run_json(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / RUN_JSON).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _sealed(data: Mapping[str, Any] | None) -> bool:
    """Whether ``data`` holds a seal as ``seal`` writes it (an edited run.json may hold anything)."""
    if not data or not isinstance(data.get("files"), dict) or not isinstance(data.get("sequence"), int):
        return False
    link = data.get("previous")
    well_linked = link is None or (
        isinstance(link, dict) and isinstance(link.get("run_id"), str) and isinstance(link.get("sha256"), str)
    )
    return well_linked and all(isinstance(v, str) for v in data["files"].values())


def _head(env_dir: Path, leave_out: str) -> dict[str, Any] | None:
    """The link to the newest sealed run: highest place in the chain, then the latest name."""
    best: tuple[int, str] | None = None
    for run_dir in env_dir.iterdir():
        data = _read_run_json(run_dir) if is_run(run_dir) and run_dir.name != leave_out else None
        if data is not None and _sealed(data):
            key = (data["sequence"], run_dir.name)
            best = max(best, key) if best else key
    if best is None:
        return None
    sequence, run_id = best
    return {"run_id": run_id, "sequence": sequence, "sha256": sha256_file(env_dir / run_id / RUN_JSON)}


def seal(run_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Writes ``manifest`` as the run's final run.json with its files' digests and its link. Call it once,
    when the run has ended and nothing more will be written into the folder."""
    with _chain_lock(run_dir.parent):
        previous = _head(run_dir.parent, leave_out=run_dir.name)
        manifest["files"] = file_digests(run_dir, frozenset({RUN_JSON}))
        manifest["import_files"] = file_digests(import_dir(run_dir))
        manifest["previous"] = previous
        manifest["sequence"] = previous["sequence"] + 1 if previous else 1
        manifest["sealed"] = records.now_iso()
        records.save_json(run_dir, "run", manifest)
    return manifest


@dataclass(frozen=True)
class Problem:
    run: str
    text: str

    def __str__(self) -> str:
        return f"{self.run}: {self.text}"


@dataclass
class Verification:
    """What ``verify`` found: the runs it checked, every problem, and the folders outside the chain."""

    runs: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    head: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return not self.problems


def compare(recorded: Mapping[str, str], found: Mapping[str, str], prefix: str = "") -> list[str]:
    """Every file edited, missing or added, by name."""
    edited = [f"edited {prefix}{n}" for n in recorded if n in found and found[n] != recorded[n]]
    missing = [f"missing {prefix}{n}" for n in recorded if n not in found]
    added = [f"added {prefix}{n}" for n in found if n not in recorded]
    return sorted(edited) + sorted(missing) + sorted(added)


def verify(env_dir: Path, run: str | None = None) -> Verification:
    """Recomputes every run's digests and every link of ``env_dir`` (or only ``run``'s, and the link to it)."""
    result = Verification()
    runs = sorted(p.name for p in env_dir.iterdir() if is_run(p))
    result.outside = sorted(p.name for p in env_dir.iterdir() if not (is_run(p) or _environment_state(p.name)))
    if run is not None and run not in runs:
        result.problems.append(Problem(run, f"no such run in {env_dir}"))
        return result
    loaded = {name: _read_run_json(env_dir / name) for name in runs}
    result.runs = [run] if run else runs
    for name in result.runs:
        result.problems += [Problem(name, t) for t in _check_files(env_dir / name, loaded[name], result.notes)]
    result.problems += _check_links(env_dir, loaded, set(result.runs))
    result.head = _head(env_dir, leave_out="")
    return result


def _check_files(run_dir: Path, data: dict[str, Any] | None, notes: list[str]) -> list[str]:
    if not (run_dir / RUN_JSON).exists():
        return ["missing run.json"]
    if data is None:
        return ["run.json is not a JSON object: edited?"]
    if "files" not in data:
        return ["not sealed: the run has not ended (or its runner was killed): its files cannot be proven"]
    if not _sealed(data):
        return ["run.json's manifest or link is malformed: edited?"]
    problems = compare(data["files"], file_digests(run_dir, frozenset({RUN_JSON})))
    imports = import_dir(run_dir)
    if imports.exists():
        problems += compare(data.get("import_files") or {}, file_digests(imports), f"{IMPORTS}/{run_dir.name}/")
    elif data.get("import_files"):
        # The docs ask operators to delete the import folder once the import is checked: not a problem.
        notes.append(f"{run_dir.name}: its import files were deleted (digests kept in run.json)")
    return problems


def _check_links(env_dir: Path, loaded: Mapping[str, dict[str, Any] | None], scope: set[str]) -> list[Problem]:
    """Each sealed run's link names a run that is there, whose run.json is the one it linked; no two runs link
    the same run; every sealed run but the newest is linked by a later one."""
    problems: list[Problem] = []
    sealed = {n: d for n, d in loaded.items() if d is not None and _sealed(d)}
    linked_by: dict[str, list[str]] = {}
    for name, data in sealed.items():
        link = data.get("previous")
        if link:
            linked_by.setdefault(link["run_id"], []).append(name)
        if name in scope or (link and link["run_id"] in scope):
            problems += _check_link(env_dir, name, data, loaded)
    newest = max(sealed, key=lambda n: (sealed[n]["sequence"], n), default=None)
    for name in sorted(scope & set(sealed)):
        after = linked_by.get(name, [])
        if len(after) > 1:
            problems.append(Problem(name, f"broken chain: linked by {len(after)} runs ({', '.join(sorted(after))})"))
        elif not after and name != newest:
            problems.append(Problem(name, "broken chain: no later run links it (the run after it removed?)"))
    return problems


def _check_link(
    env_dir: Path, name: str, data: Mapping[str, Any], loaded: Mapping[str, dict[str, Any] | None]
) -> list[Problem]:
    """The link ``name`` holds. An edited run.json is named as that run's problem (so the index marks the run
    that changed), though only the later run's link can tell."""
    link = data.get("previous")
    if not link:
        return [] if data.get("sequence") == 1 else [Problem(name, f"broken link: run {data['sequence']} links none")]
    previous = link["run_id"]
    if previous not in loaded:
        return [Problem(name, f"broken link: its previous run {previous} is missing")]
    path = env_dir / previous / RUN_JSON
    if not path.exists():
        return [Problem(name, f"broken link: its previous run {previous} has no run.json")]
    now = sha256_file(path)
    if now != link["sha256"]:
        text = f"run.json was edited: {name}'s link holds sha256 {link['sha256'][:12]}, it is now {now[:12]}"
        return [Problem(previous, text)]
    return []
