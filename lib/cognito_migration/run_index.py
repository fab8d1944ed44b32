"""``outputs/<env>/index.html``: every run of an environment on one page, rewritten at the end of every run.

Each run with its date, caller, commit, steps and outcomes, its headline figures (report.json, deploy.json,
cutover.json when the run has them), links to each step's HTML record, and whether ``verify`` passes for it.
It shows only counts and names of AWS resources the records already hold: no user appears on it. Rendered
by a Jinja2 template with autoescaping, so a value read from a record is always text, never markup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from . import chain, records

TEMPLATE = "index.html.j2"


@dataclass
class StepLine:
    step: str
    outcome: str
    seconds: float | None
    html: str | None  # relative link to the step's HTML record
    error: str = ""  # the exception's name only: its message may name users, and the step's HTML has it


@dataclass
class RunLine:
    run_id: str
    started: str
    ended: str
    outcome: str
    caller: str
    commit: str
    error: str
    steps: list[StepLine] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.problems


def write(env_dir: Path) -> Path:
    """Rewrites ``env_dir/index.html`` (owner-only) from the records as they are now."""
    return records.write_text(env_dir / chain.INDEX, render(env_dir))


def render(env_dir: Path) -> str:
    checked = chain.verify(env_dir)
    runs = [summarise(env_dir / name, checked) for name in reversed(checked.runs)]  # newest first
    template = _templates().get_template(TEMPLATE)
    return template.render(
        env=env_dir.name,
        generated=records.now_iso(),
        runs=runs,
        verified=checked.passed,
        head=checked.head,
        outside=[(name, _kind(name)) for name in checked.outside],
        notes=checked.notes,
    )


def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("cognito_migration", "templates"),
        autoescape=True,  # every value comes from a record; none of it is markup
        undefined=jinja2.StrictUndefined,
    )


def summarise(run_dir: Path, checked: chain.Verification) -> RunLine:
    data = _load(run_dir / chain.RUN_JSON) or {}
    caller = data.get("caller_identity") or {}
    line = RunLine(
        run_id=run_dir.name,
        started=str(data.get("started", "")),
        ended=str(data.get("ended", "")),
        outcome=str(data.get("outcome", "not ended")),
        caller=str(caller.get("Arn", "")),
        commit=str(data.get("git_commit", "")),
        error=_error_name(data.get("error")),
        problems=[p.text for p in checked.problems if p.run == run_dir.name],
    )
    for step in data.get("steps", []):
        html = step.get("html")
        link = f"{run_dir.name}/{html}" if html and (run_dir / html).exists() else None
        outcome, error = step.get("outcome", ""), _error_name(step.get("error"))
        line.steps.append(StepLine(step["step"], outcome, step.get("seconds"), link, error))
    line.figures = figures(run_dir)
    return line


def figures(run_dir: Path) -> list[tuple[str, str]]:
    """The run's headline figures, from whichever step results it holds."""
    found: list[tuple[str, str]] = []
    if report := _load(run_dir / "report.json"):
        found.append(("users", _report_figure(report)))
    if deploy := _load(run_dir / "deploy.json"):
        found.append(("trigger", _deploy_figure(deploy)))
    if cutover := _load(run_dir / "cutover.json"):
        found.append(("cutover", _cutover_figure(cutover)))
    return found


def _report_figure(report: dict[str, Any]) -> str:
    states = report.get("states", {})
    return (
        f"{states.get('migrated', 0)} migrated, {states.get('not yet', 0)} not yet, "
        f"{states.get('cannot migrate lazily', 0)} cannot migrate lazily (of {report.get('users', '?')})"
    )


def _deploy_figure(deploy: dict[str, Any]) -> str:
    if deploy.get("dry_run"):
        return "dry run: planned only, nothing written"
    function = str(deploy.get("function_arn", "")).rsplit(":", 1)[-1]
    triggers = ", ".join(sorted(deploy.get("lambda_config") or {})) or "none"
    written = (deploy.get("signup_index") or {}).get("written", 0)
    return f"function {function}; triggers attached: {triggers}; sign-up index keys written: {written}"


def _cutover_figure(cutover: dict[str, Any]) -> str:
    if cutover.get("dry_run"):
        return "dry run: planned only, nothing written"
    result = cutover.get("result") or {}
    jobs = result.get("jobs") or []
    imported = sum(j.get("imported", 0) for j in jobs)
    failed = sum(j.get("failed", 0) for j in jobs)
    skipped = sum(j.get("skipped", 0) for j in jobs)
    detached = ", ".join(result.get("detached") or []) or "nothing"
    return (
        f"{imported} imported, {failed} failed, {skipped} skipped in {len(jobs)} import job(s); "
        f"detached: {detached}; confirmation: {cutover.get('confirmation', '')}"
    )


def _error_name(error: Any) -> str:
    """'GateFailed: 3 blockers ...' -> 'GateFailed'."""
    return str(error).split(":", 1)[0] if error else ""


def _kind(name: str) -> str:
    if name.startswith("manual-"):
        return "hand run: no manifest (nobody ends a hand run)"
    if "-rollback-" in name:
        return "rollback record: written by rollback, outside the chain"
    return "not a run folder"


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing or edited: verify names it; the page still lists the run
    return data if isinstance(data, dict) else None
