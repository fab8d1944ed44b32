"""The runner: executes the notebooks in order with papermill and keeps each run as an audit record.

    python -m cognito_migration run --env local

writes ``outputs/<env>/<run-id>/``: each executed notebook, an HTML copy for readers, each step's log (the
kernel's stderr: progress bars of long reads, shown live on the console too), the steps' results and
``run.json``, sealed when the run ends (``chain``); then it rewrites the environment's ``index.html``.
It stops at the first failing gate; the failed notebook, saved with its error, is the record of the failure.
For the ``local`` environment it first starts the local AWS in this process and seeds the legacy pool, and
before the report it replays a wave of sign-ins.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import papermill
from tqdm.auto import tqdm

from . import aws, chain, deploy, html_record, lock, notebook_params, project, records, run_index, snapshot_store
from . import params as parameters

STEPS = (
    "01_audit_old_pool",
    "02_create_new_pool",
    "03_deploy_trigger",
    "04_smoke_test_sign_in",
    "05_report",
    "06_cutover",
)
PACKAGES = ("boto3", "botocore", "moto", "papermill", "pandas", "pyarrow", "nbconvert", "cognito-migration")


class RunFailed(RuntimeError):
    """A step failed; ``run_dir`` holds the record, with the failed notebook."""

    def __init__(self, message: str, run_dir: Path) -> None:
        super().__init__(message)
        self.run_dir = run_dir


@dataclass
class LocalOptions:
    """How the local environment is seeded and exercised (ignored for other environments)."""

    users: int = 2000
    seed: int = 7
    replay_share: float = 0.3


@dataclass
class RunResult:
    run_dir: Path
    manifest: dict[str, Any]
    local: Any = None  # the LocalEnvironment of a local run (closed), with its ground truth
    replay: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


def run(
    env: str,
    params_file: Path | None = None,
    outputs: Path | None = None,
    local: LocalOptions | None = None,
    steps: tuple[str, ...] = STEPS,
    progress: bool = True,
    root: Path | None = None,
) -> RunResult:
    """Runs ``steps`` for ``env``; raises RunFailed (after saving the record) when a step fails. ``root`` is the
    project's folder (default: ``project.root()``): its notebooks run, its ``params/<env>.yaml`` and
    ``outputs/`` are the defaults."""
    root = root or project.root()
    outputs = outputs or root / "outputs"
    params_file = params_file or root / "params" / f"{env}.yaml"
    values = parameters.load_yaml(params_file)
    checked = parameters.validate(values)  # every parameter error surfaces before anything runs
    if checked.env != env:
        raise parameters.ParameterError(f"env: {params_file} says env {checked.env!r}, but --env {env} was asked")
    unknown_steps = [s for s in steps if s not in STEPS]
    if unknown_steps:
        raise parameters.ParameterError(f"steps: unknown {unknown_steps}; choose from {', '.join(STEPS)}")

    run_id, run_dir = _new_run_dir(outputs / env)
    # One source: the notebooks receive the complete validated set, and run.json records exactly that.
    received = notebook_params.injected(dataclasses.replace(checked, run_dir=str(run_dir)))
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "env": env,
        "params_file": str(params_file),
        "params_digest": checked.digest(),
        "params_from_file": sorted(values),  # the keys params/<env>.yaml set; the others are Params' defaults
        "params": received,
        "git_commit": _git_commit(root),
        "packages": _package_versions(),
        # which code ran: the hash-checked lock's digest (and anything this environment holds that differs from
        # it), and the digest of the trigger's zip as deployed
        "lock_sha256": lock.sha256(root / lock.LOCK),
        "lock_differences": lock.differences(root / lock.LOCK),
        "trigger_zip_sha256": deploy.build_package().sha256,
        "python": sys.version.split()[0],
        "started": records.now_iso(),
        "steps": [],
    }
    result = RunResult(run_dir, manifest)
    try:
        _run_steps(env, checked, local or LocalOptions(), steps, received, result, progress, root / "notebooks")
    except BaseException as exc:
        _ended(manifest, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", exc)
        raise
    else:
        _ended(manifest, "passed")
    finally:
        # Passed, failed or interrupted: the record is final now, so its digests and its link are taken now.
        chain.seal(run_dir, manifest)
        run_index.write(run_dir.parent)
    return result


def _run_steps(
    env: str,
    checked: parameters.Params,
    options: LocalOptions,
    steps: tuple[str, ...],
    received: dict[str, Any],
    result: RunResult,
    progress: bool,
    notebooks: Path,
) -> None:
    manifest, run_dir = result.manifest, result.run_dir
    with _environment(env, checked, options) as local_env:
        result.local = local_env
        manifest["caller_identity"] = aws.caller_identity(aws.session(checked))
        if local_env is not None:
            manifest["local"] = {
                "users": len(local_env.legacy.users),
                "seed": local_env.legacy.seed,
                "endpoint": local_env.aws.endpoint_url,
                "seconds_to_start": local_env.seconds_to_start,
            }
        records.save_json(run_dir, "run", manifest)
        bar = tqdm(steps, desc="runbook", unit="step", disable=not progress)
        for step in bar:
            bar.set_postfix_str(step)
            if local_env is not None and step == "05_report":
                result.replay = _replay(local_env, checked.new_pool_name, options.replay_share, manifest)
            outcome = _execute(step, received, run_dir, notebooks, progress)
            # The step's kernel has ended: a snapshot it read but did not delete (it failed after reading) goes now.
            swept = snapshot_store.sweep(
                snapshot_store.SnapshotStore.of(dataclasses.replace(checked, run_dir=str(run_dir)))
            )
            if swept:
                outcome["snapshots_removed"] = swept
            manifest["steps"].append(outcome)
            records.save_json(run_dir, "run", manifest)
            if outcome["outcome"] != "passed":
                raise RunFailed(
                    f"step {step} failed: {outcome['error']}\nrecord: {run_dir / (step + '.ipynb')}", run_dir
                )


def _ended(manifest: dict[str, Any], outcome: str, exc: BaseException | None = None) -> None:
    manifest["ended"], manifest["outcome"] = records.now_iso(), outcome
    if exc is not None and not isinstance(exc, RunFailed):  # a failed step's error is in its own entry
        manifest["error"] = f"{type(exc).__name__}: {exc}"


def _new_run_dir(env_outputs: Path) -> tuple[str, Path]:
    """A fresh folder per run, never reused: two runs in the same second get -2, -3..."""
    records.private_dir(env_outputs)
    base = records.new_run_id()
    for attempt in range(1, 1000):
        run_id = base if attempt == 1 else f"{base}-{attempt}"
        try:
            (env_outputs / run_id).mkdir(mode=records.DIR_MODE)
        except FileExistsError:
            continue
        return run_id, (env_outputs / run_id).resolve()
    raise RuntimeError(f"{env_outputs}: cannot create a new run folder")


class _Tee:
    """Where papermill writes the kernel's stderr as it arrives (the long reads' progress bars): the step's log
    in the run folder and, when the run shows progress, this process's stderr."""

    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, text: str) -> None:
        for stream in self.streams:
            stream.write(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def _execute(
    step: str, values: dict[str, Any], run_dir: Path, notebooks: Path, progress: bool = False
) -> dict[str, Any]:
    """Runs ``notebooks/<step>.ipynb`` from the project's folder (the one holding ``notebooks``); the executed
    copy (and its HTML) are saved whether it passed or failed, and the kernel's stderr (progress bars with
    users/s and ETA, warnings) goes to ``<step>.log`` as it comes."""
    output = run_dir / f"{step}.ipynb"
    started, clock = records.now_iso(), time.perf_counter()
    outcome: dict[str, Any] = {"step": step, "started": started, "notebook": output.name, "log": f"{step}.log"}
    # The kernel inherits this process's umask: what it writes (and papermill's output notebook) is owner-only.
    with records.owner_only(), records.private_file(run_dir / f"{step}.log", "w", encoding="utf-8") as log:
        try:
            papermill.execute_notebook(
                str(notebooks / f"{step}.ipynb"),
                str(output),
                parameters=values,
                cwd=str(notebooks.parent),
                progress_bar=False,
                report_mode=False,
                stderr_file=_Tee(log, sys.stderr) if progress else log,
                # The kernel talks to this process over loopback only; its warning about unencrypted TCP,
                # printed at every step, would bury the runbook's own output.
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
            outcome["outcome"] = "passed"
        except papermill.PapermillExecutionError as exc:
            outcome.update(outcome="failed", error=f"{exc.ename}: {exc.evalue}")
    outcome["ended"] = records.now_iso()
    outcome["seconds"] = round(time.perf_counter() - clock, 2)
    if output.exists():
        html = run_dir / f"{step}.html"
        records.write_text(html, html_record.export(output))  # the reader's copy; the .ipynb stays as run
        outcome["html"] = html.name
    return outcome


def _replay(local_env: Any, new_pool_name: str, share: float, manifest: dict[str, Any]) -> Any:
    """The local environment's wave of returning users, so the report has progress to show."""
    started, clock = records.now_iso(), time.perf_counter()
    replay = local_env.replay(new_pool_name, share)
    manifest["steps"].append(
        {
            "step": "local: replay sign-ins",
            "started": started,
            "ended": records.now_iso(),
            "seconds": round(time.perf_counter() - clock, 2),
            "outcome": "passed",
            "sign_ins": dict(replay.counts),
        }
    )
    return replay


@contextlib.contextmanager
def _environment(env: str, checked: parameters.Params, options: LocalOptions) -> Iterator[Any]:
    """For ``local``: the local AWS in this process, seeded. Elsewhere: the operator's own AWS configuration."""
    if env != "local":
        yield None
        return
    from .local.demo import LocalEnvironment

    with LocalEnvironment(users=options.users, seed=options.seed, region=checked.region) as local_env:
        yield local_env


def _git_commit(root: Path) -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except OSError:
        return "unknown"
    commit = done.stdout.strip() if done.returncode == 0 else "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10
    ).stdout.strip()
    return f"{commit}+dirty" if dirty and commit != "unknown" else commit


def _package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
