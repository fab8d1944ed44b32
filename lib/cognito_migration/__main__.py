"""Command line: ``cognito-migration run --env ENV``, or ``python -m cognito_migration run --env ENV``.

Every command works in the project's folder (the one holding notebooks/ and params/: ``project``) or below it;
elsewhere, pass ``--root DIR`` or set COGNITO_MIGRATION_ROOT.

python -m cognito_migration run --env local                      # the whole runbook on the local AWS
python -m cognito_migration run --env staging --params params/staging.yaml
python -m cognito_migration run --env local --users 20000 --replay-share 0.5
python -m cognito_migration run --env staging --steps 01_audit_old_pool
python -m cognito_migration rollback --env staging [--run RUN_ID] [--delete] [--apply]   # docs/rollback.md
python -m cognito_migration verify --env staging [--run RUN_ID]   # every record and link as sealed
python -m cognito_migration index --env staging                   # rewrite outputs/<env>/index.html
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import project

# Each command imports what it needs when it runs: `--help`, verify and index start without papermill, boto3
# and pandas (seconds of imports).
OUTPUTS_HELP = "where runs are kept (default: the project's outputs/)"


def main(argv: list[str] | None = None) -> int:
    """The ``cognito-migration`` console script and ``python -m cognito_migration``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="cognito-migration", description="Cognito user-pool migration runbook (also: python -m cognito_migration)"
    )
    # Every command takes --root: the project's folder, when not run from it (see project.find).
    located = argparse.ArgumentParser(add_help=False)
    located.add_argument(
        "--root",
        type=Path,
        help=f"the project's folder, holding notebooks/ and params/ (default: ${project.ENV_VAR}, else the "
        "current directory or a parent)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser(
        "run", parents=[located], help="execute the notebooks in order and keep the run as a record"
    )
    runner.add_argument("--env", required=True, help="environment name; reads params/<env>.yaml by default")
    runner.add_argument("--params", type=Path, help="parameters file (default: params/<env>.yaml)")
    runner.add_argument("--outputs", type=Path, help=OUTPUTS_HELP)
    runner.add_argument("--steps", nargs="+", help="steps to run, e.g. 01_audit_old_pool (default: all, in order)")
    runner.add_argument("--users", type=int, default=2000, help="local only: legacy users to seed")
    runner.add_argument("--seed", type=int, default=7, help="local only: seed of the legacy users")
    runner.add_argument(
        "--replay-share",
        type=float,
        default=0.3,
        help="local only: share of legacy users who sign in before the report",
    )
    rollback = commands.add_parser(
        "rollback",
        parents=[located],
        help="detach the trigger (restore the saved LambdaConfig); --delete: delete steps 2-3's resources",
    )
    rollback.add_argument("--env", required=True, help="environment name; reads params/<env>.yaml by default")
    rollback.add_argument("--params", type=Path, help="parameters file (default: params/<env>.yaml)")
    rollback.add_argument("--outputs", type=Path, help=OUTPUTS_HELP)
    rollback.add_argument("--run", help="the run whose deploy.json holds the LambdaConfig to restore (default: newest)")
    rollback.add_argument(
        "--delete",
        action="store_true",
        help="delete the new pool, function, roles and log groups (refused where protected)",
    )
    rollback.add_argument("--apply", action="store_true", help="write; without it, only show what would be done")
    checker = commands.add_parser(
        "verify",
        parents=[located],
        help="recompute every run's digests and links; name every edited, missing or added file",
    )
    checker.add_argument("--env", required=True, help="environment name")
    checker.add_argument("--run", help="verify this run only (its files, its link and the link to it)")
    checker.add_argument("--outputs", type=Path, help=OUTPUTS_HELP)
    index = commands.add_parser("index", parents=[located], help="rewrite outputs/<env>/index.html from the records")
    index.add_argument("--env", required=True, help="environment name")
    index.add_argument("--outputs", type=Path, help=OUTPUTS_HELP)
    args = parser.parse_args(argv)
    # run needs the project's notebooks; the others only what --params and --outputs do not name
    needed = args.command == "run" or args.outputs is None or (args.command == "rollback" and args.params is None)
    try:
        args.root = _project_root(args.root, needed)
    except project.ProjectNotFound as exc:
        print(f"project not found: {exc}", file=sys.stderr)
        return 2
    if args.outputs is None:
        args.outputs = args.root / "outputs"
    if args.command in ("verify", "index"):
        return _records_command(args)
    return _aws_command(args)


def _project_root(given: Path | None, needed: bool) -> Path | None:
    """The project's folder: --root, else project.find. --root is handed on as COGNITO_MIGRATION_ROOT, so the
    notebooks' kernels find the same folder."""
    if given is not None:
        os.environ[project.ENV_VAR] = str(given.expanduser().resolve())
    return project.root() if needed else project.find()


def _aws_command(args: argparse.Namespace) -> int:
    """run and rollback: they read the parameters and reach AWS."""
    from .aws import AwsSetupError
    from .params import ParameterError

    try:
        return _rollback(args) if args.command == "rollback" else _run(args)
    except ParameterError as exc:
        print(f"parameter error: {exc}", file=sys.stderr)
        return 2
    except AwsSetupError as exc:
        print(f"AWS set-up error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from .runbook import STEPS, LocalOptions, RunFailed, run

    try:
        result = run(
            args.env,
            params_file=args.params,
            outputs=args.outputs.resolve(),
            root=args.root,
            local=LocalOptions(users=args.users, seed=args.seed, replay_share=args.replay_share),
            steps=tuple(args.steps or STEPS),
        )
    except RunFailed as exc:
        print(f"run failed: {exc}", file=sys.stderr)
        print(f"index: {exc.run_dir.parent / 'index.html'} (a failed run is a sealed record too)", file=sys.stderr)
        return 1
    print(f"run passed: {result.run_dir}")
    for step in result.manifest["steps"]:
        print(f"  {step['step']:<28} {step['outcome']:<7} {step.get('seconds', '')}")
    print(f"index: {result.run_dir.parent / 'index.html'}")
    print(f"prove the records later: python -m cognito_migration verify --env {args.env} --outputs {args.outputs}")
    return 0


def _records_command(args: argparse.Namespace) -> int:
    from . import run_index

    env_dir = args.outputs.resolve() / args.env
    if not env_dir.is_dir():
        print(f"no records: {env_dir} does not exist (see --outputs)", file=sys.stderr)
        return 2
    if args.command == "index":
        print(f"wrote {run_index.write(env_dir)}")
        return 0
    return _verify(env_dir, args.run)


def _verify(env_dir: Path, run_id: str | None) -> int:
    from .chain import RUN_JSON, sha256_file, verify

    checked = verify(env_dir, run_id)
    for problem in checked.problems:
        print(problem)
    for note in checked.notes:
        print(f"note: {note}")
    if not checked.passed:
        failing = len({p.run for p in checked.problems})
        print(f"verify failed: {len(checked.problems)} problem(s) in {failing} run(s)", file=sys.stderr)
        return 1
    print(f"verified {len(checked.runs)} run{'s' if len(checked.runs) != 1 else ''}")
    # The newest run.json is vouched for by no later run yet: its digest, noted elsewhere, anchors the chain.
    if run_id is not None:
        print(f"{run_id}/run.json sha256 {sha256_file(env_dir / run_id / RUN_JSON)}")
    elif checked.head:
        print(f"newest: {checked.head['run_id']}/run.json sha256 {checked.head['sha256']}")
    if checked.outside:
        print(f"not in the chain: {', '.join(checked.outside)}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from . import run_index
    from .params import ParameterError, load_yaml, validate
    from .pool import PoolError, RollbackRefused
    from .rollback import RollbackError, roll_back

    try:
        params = validate(load_yaml(args.params or args.root / "params" / f"{args.env}.yaml"))
        if params.env != args.env:
            raise ParameterError(f"env: the parameters say env {params.env!r}, but --env {args.env} was asked")
        result = roll_back(params, args.outputs.resolve(), args.run, delete=args.delete, apply=args.apply)
    except (RollbackRefused, RollbackError, PoolError) as exc:
        print(f"rollback refused: {exc}", file=sys.stderr)
        return 1
    if result.source_run:
        print(f"LambdaConfig saved by run {result.source_run}")
    print(result.rows.to_string(index=False))
    if result.record is not None:
        run_index.write(result.record.parent.parent)  # the index lists rollback records too
    print(f"done; recorded in {result.record}" if result.applied else "dry run: nothing written; add --apply to do it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
