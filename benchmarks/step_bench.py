"""Whole notebook steps at scale: each step run by the runner (papermill, a real Jupyter kernel) against a
virtual old pool of the local AWS; wall time and the kernel's peak memory.

    nice -n 10 .venv/bin/python benchmarks/step_bench.py [--sizes 1000000] [--migrated-share 0.3]
                                                          [--steps 01,02,03,05,06] [--folder /tmp/steps]

For each size this process starts the local AWS (``LocalAWS``, serving from here) with a virtual pool of N users
(``local/virtual.py``: generated from their index, never stored; the legacy pool's configuration and groups; the
legacy pool's two clients are added to it, as the seeded legacy pool has them). Each step is then one run of
the real command line, in a subprocess:

    python -m cognito_migration run --root <checkout> --env bench --params <folder>/params/bench*.yaml
                                    --outputs <folder>/outputs --steps <step>

so every step starts a fresh kernel, and the steps share the outputs folder (step 6 reads step 1's findings)
and this process's local AWS. While a step runs, this process polls the runner's child processes about once
a second, finds the kernel (``ipykernel_launcher``) and reads its ``VmHWM`` from ``/proc/<pid>/status``: the
last value read before the kernel exits is its peak resident memory (the high-water mark is the kernel's own;
the poll only has to see it once, late is fine, but a peak reached in the last second before exit is missed).

The steps:

- 01 audit: reads the old pool (users and memberships) into a snapshot; the findings, tables and records.
- 02 new pool: created, ``dry_run: false``.
- 03 trigger: deployed (``dry_run: false``), its sign-up index filled from a whole read of the old pool. The
  index's items are kept by this process (``IndexTable``), not by moto's DynamoDB, which scans a table from its
  start at every page. With ``--step3-users N`` the virtual pool lists only its first N users while step 3
  runs (its fill, 25 keys a request, would take about half an hour at a million users on a loaded machine),
  and all of them again for the steps after: step 5's refresh then finds most keys missing.
- 04 smoke test: not run. Its canaries sign in to the old pool with passwords; a virtual pool has none and
  refuses every write and sign-in.
- between 03 and 05 (``--migrated-share``): a share of the users the trigger would migrate is written straight
  into the new pool's backend in this process, as the trigger would leave them (not through sign-ins: the
  virtual pool refuses them). In a case-insensitive new pool only the first of a case pair.
- 05 report: both pools read and compared (out of core above 500,000 users), the stragglers' import file, the
  sign-up index refreshed (with ``--dry-run-steps 05,06``: its missing keys counted, not written).
- 06 cutover, ``dry_run: true``: both pools read and compared, the import file built, the plan; nothing
  imported (a real import of most of a million users into moto's in-process pool would measure moto).

``list_rate_limit`` is 30 (the most the parameters allow: Cognito's whole UserList quota; the local AWS does not
enforce it). Results go to benchmarks/results/steps.json; each step's kernel reports the library it imported
(``cognito_migration.__file__``, through a ``sitecustomize`` on the kernel's PYTHONPATH).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
LIB = REPO / "lib"
RESULTS = Path(__file__).resolve().parent / "results" / "steps.json"
STEPS = {
    "01": "01_audit_old_pool",
    "02": "02_create_new_pool",
    "03": "03_deploy_trigger",
    "05": "05_report",
    "06": "06_cutover",
}
DRY_RUN = "06"  # steps run with dry_run: true (--dry-run-steps)
GOAL_MB = 1536  # "peak RSS of steps 1, 5 and 6 stays under 1.5 GB"
NEW_POOL_NAME = "users-v2"

# Written beside the parameters: imported by every Python process started with it on PYTHONPATH (the runner and
# the kernels); at exit it notes which cognito_migration the process imported.
SITECUSTOMIZE = """
import atexit, json, os, sys

def _note():
    module = sys.modules.get("cognito_migration")
    path = os.environ.get("STEP_BENCH_IMPORTS")
    if path and module is not None:
        with open(path, "a") as out:
            out.write(json.dumps({"pid": os.getpid(), "argv0": sys.argv[0], "file": module.__file__}) + "\\n")

atexit.register(_note)
"""


def params_yaml(pool_id: str, dry_run: bool) -> str:
    return f"""env: bench
region: us-east-1
old_user_pool_id: {pool_id}
old_client_id: legacymigrationclient00001
new_pool_name: {NEW_POOL_NAME}
target_case_sensitive: false
target_required_attributes: [email, name]
attribute_defaults:
  name: Unknown
migration_function_name: cognito-user-migration
mfa_policy: reset_required
dry_run: {str(dry_run).lower()}
protected: false
mask_pii: true
list_rate_limit: 30
target_deletion_protection: INACTIVE
accept_findings: [clients_without_password_flow, username_case_collisions, invalid_phone_numbers]
cutover_confirm: false
cutover_min_quiet_days: 0
cutover_keep_group_copy: true
cutover_accept_unimported: [invalid_phone_numbers, username_case_collisions, no_verified_contact]
"""


def add_clients(pool_id: str) -> None:
    """The seeded legacy pool's web (SRP) and migration clients, on the virtual pool (moto's backend, here)."""
    from moto.cognitoidp.models import cognitoidp_backends

    from cognito_migration.local import legacy

    backend = cognitoidp_backends[legacy.DEFAULT_ACCOUNT_ID]["us-east-1"]
    pool = backend.user_pools[pool_id]
    srp = ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    legacy._add_client(backend, pool, legacy.LEGACY_WEB_CLIENT_ID, "legacy-web", srp)
    flows = ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    legacy._add_client(backend, pool, legacy.LEGACY_MIGRATION_CLIENT_ID, "legacy-migration", flows)


def migrate_share(users: int, share: float) -> dict[str, Any]:
    """Writes into the new pool (moto's backend, here) the users the trigger would migrate
    (``legacy.expected_migration``) among the first ``share`` of every thousand, as it would leave them: their
    username and attributes, a new sub, CONFIRMED (RESET_REQUIRED for MFA and FORCE_CHANGE_PASSWORD users),
    created now. In the case-insensitive new pool, only the first user of a folded name."""
    from moto.cognitoidp.models import CognitoIdpUser, UserStatus, cognitoidp_backends

    from cognito_migration.local import legacy
    from cognito_migration.local.virtual_users import VirtualUsers

    started = time.perf_counter()
    backend = cognitoidp_backends[legacy.DEFAULT_ACCOUNT_ID]["us-east-1"]
    pool = next(p for p in backend.user_pools.values() if p.name == NEW_POOL_NAME)
    generator = VirtualUsers(users, 7)
    template = CognitoIdpUser(pool.id, None, None, "CONFIRMED", [])
    now = datetime.now(UTC).replace(tzinfo=None)
    per_thousand = round(share * 1000)
    taken: set[str] = set()
    written = 0
    for index in range(users):
        if index % 1000 >= per_thousand:
            continue
        record = generator.user(index)
        folded = record.username.lower()
        if folded in taken or not legacy.expected_migration(record):
            continue
        taken.add(folded)
        user = copy.copy(template)
        user.id = str(uuid.uuid4())
        user.username = record.username
        reset = record.mfa is not None or record.status == "FORCE_CHANGE_PASSWORD"
        user.status = UserStatus("RESET_REQUIRED" if reset else "CONFIRMED")
        attributes = {k: v for k, v in record.attributes.items() if k != "sub"}
        attributes.setdefault("name", "Unknown")
        user.attribute_lookup = {**attributes, "sub": user.id}
        user.attributes = [{"Name": k, "Value": v} for k, v in user.attribute_lookup.items()]
        user.enabled = True
        user.create_date = user.last_modified_date = now
        user.groups = set()
        pool.users[record.username] = user
        written += 1
    return {"share": share, "written": written, "seconds": round(time.perf_counter() - started, 1)}


class IndexTable:
    """The sign-up index table's items, kept here instead of in moto's DynamoDB: a WSGI layer answering
    BatchWriteItem and Scan for that one table (everything else, its CreateTable and DescribeTable included,
    goes on to moto). The kernel sends the same requests and reads the same answers; moto's DynamoDB took
    35 ms per BatchWriteItem of 25 items and 49 s to scan 50,000 keys here (each page walks the table from
    its start), hours at a million users."""

    TARGET = "DynamoDB_20120810."
    PAGE = 10_000  # items per Scan page (AWS: 1 MB; a key item is about 70 bytes)

    def __init__(self, app: Any, table: str, key: str) -> None:
        self.app, self.table, self.key = app, table, key
        self.items: dict[str, dict[str, Any]] = {}  # key -> item, in the order written
        self.order: list[str] = []
        self.position: dict[str, int] = {}
        self.lock = threading.Lock()
        self.calls = {"BatchWriteItem": 0, "Scan": 0}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target[len(self.TARGET) :] if target.startswith(self.TARGET) else ""
        if operation not in ("BatchWriteItem", "Scan"):
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        request = json.loads(body)
        tables = set(request.get("RequestItems", {})) if operation == "BatchWriteItem" else {request.get("TableName")}
        if tables != {self.table}:
            import io

            environ["wsgi.input"] = io.BytesIO(body)
            return self.app(environ, start_response)
        with self.lock:
            self.calls[operation] += 1
            answer = self._write(request) if operation == "BatchWriteItem" else self._scan(request)
        payload = json.dumps(answer).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(payload)))]
        start_response("200 OK", headers + [("x-amzn-RequestId", str(uuid.uuid4()))])
        return [payload]

    def _write(self, request: dict[str, Any]) -> dict[str, Any]:
        for entry in request["RequestItems"][self.table]:
            item = entry["PutRequest"]["Item"]
            value = item[self.key]["S"]
            if value not in self.items:
                self.position[value] = len(self.order)
                self.order.append(value)
            self.items[value] = item
        return {"UnprocessedItems": {}}

    def _scan(self, request: dict[str, Any]) -> dict[str, Any]:
        start = request.get("ExclusiveStartKey")
        first = self.position[start[self.key]["S"]] + 1 if start else 0
        keys = self.order[first : first + self.PAGE]
        projected = request.get("ProjectionExpression") == self.key
        items = [{self.key: {"S": k}} if projected else self.items[k] for k in keys]
        answer: dict[str, Any] = {"Items": items, "Count": len(items), "ScannedCount": len(items)}
        if first + self.PAGE < len(self.order):
            answer["LastEvaluatedKey"] = {self.key: {"S": keys[-1]}}
        return answer


class KernelWatch:
    """Polls the runner's descendants every ``interval`` s; keeps the last VmHWM / VmRSS read of each kernel."""

    def __init__(self, runner_pid: int, interval: float = 1.0) -> None:
        self.runner_pid = runner_pid
        self.interval = interval
        self.kernels: dict[int, dict[str, Any]] = {}
        self.runner: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> KernelWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                runner = psutil.Process(self.runner_pid)
                self.runner = _status(self.runner_pid) or self.runner
                children = runner.children(recursive=True)
            except psutil.Error:
                children = []
            for child in children:
                try:
                    if not any("ipykernel" in part for part in child.cmdline()):
                        continue
                except psutil.Error:
                    continue
                status = _status(child.pid)
                if status:
                    seen = self.kernels.setdefault(child.pid, {"polls": 0, "first_poll": time.time()})
                    seen.update(status, polls=seen["polls"] + 1, last_poll=time.time())
            self._stop.wait(self.interval)


def _status(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS of a process, in kB (empty once it has gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            found[key] = int(value.split()[0])
    return found


def run_step(key: str, folder: Path, env: dict[str, str], interval: float, dry: bool) -> dict[str, Any]:
    params = folder / "params" / ("bench-dry.yaml" if dry else "bench.yaml")
    outputs = folder / "outputs"
    command = [sys.executable, "-m", "cognito_migration", "run", "--root", str(REPO), "--env", "bench"]
    command += ["--params", str(params), "--outputs", str(outputs), "--steps", STEPS[key]]
    runner_log = folder / f"runner-{key}.log"
    started = time.perf_counter()
    with runner_log.open("w") as log:
        runner = subprocess.Popen(command, env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
        with KernelWatch(runner.pid, interval) as watch:
            code = runner.wait()
    seconds = time.perf_counter() - started
    row: dict[str, Any] = {"step": STEPS[key], "dry_run": dry, "wall_s": round(seconds, 1)}
    row["exit_code"] = code
    kernels = watch.kernels
    if kernels:
        pid, kernel = max(kernels.items(), key=lambda item: item[1].get("VmHWM", 0))
        row.update(
            kernel_pid=pid,
            kernel_peak_mb=round(kernel["VmHWM"] / 1024, 1),
            kernel_last_rss_mb=round(kernel["VmRSS"] / 1024, 1),
            polls=kernel["polls"],
            kernels_seen=len(kernels),
        )
        row["under_goal"] = row["kernel_peak_mb"] < GOAL_MB
    if watch.runner:
        row["runner_peak_mb"] = round(watch.runner["VmHWM"] / 1024, 1)
    run_dirs = sorted((outputs / "bench").glob("2*/run.json"), key=lambda p: p.stat().st_mtime)
    if run_dirs:
        manifest = json.loads(run_dirs[-1].read_text())
        row["run_dir"] = str(run_dirs[-1].parent)
        row["git_commit"] = manifest.get("git_commit")
        entries = [s for s in manifest.get("steps", []) if s.get("step") == STEPS[key]]
        if entries:
            row["gate"] = entries[-1]["outcome"]
            row["step_s"] = entries[-1].get("seconds")
            if entries[-1].get("error"):
                row["error"] = entries[-1]["error"]
    row.setdefault("gate", "not run")
    if row["gate"] != "passed":
        row["runner_tail"] = runner_log.read_text()[-3000:]
    return row


def measure(users: int, keys: list[str], args: argparse.Namespace) -> dict[str, Any]:
    from cognito_migration.local import virtual
    from cognito_migration.local.server import LocalAWS
    from cognito_migration.local.virtual_users import VirtualUsers

    share, interval, moto_index = args.migrated_share, args.interval, args.moto_index
    dry_steps = {k.strip() for k in args.dry_run_steps.split(",") if k.strip()}
    if args.reuse:
        folder = args.reuse  # an earlier run's folder: its outputs (step 1's findings) are read by step 6
    else:
        folder = Path(tempfile.mkdtemp(prefix=f"steps-{users}-", dir=args.folder))
    for part in ("params", "site", "tmp"):
        (folder / part).mkdir(exist_ok=True)
    (folder / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    imports = folder / "imports.jsonl"
    result: dict[str, Any] = {"users": users, "migrated": None, "index_in": "moto" if moto_index else "benchmark"}
    result["steps"] = []
    with LocalAWS() as local:
        pool_id = local.add_virtual_pool(users)
        add_clients(pool_id)
        index = None
        if not moto_index:
            from cognito_migration import signup_index

            assert local.gate is not None
            table = signup_index.table_name_for("cognito-user-migration")
            index = local.gate.app = IndexTable(local.gate.app, table, signup_index.INDEX_KEY_ATTRIBUTE)
        (folder / "params" / "bench.yaml").write_text(params_yaml(pool_id, dry_run=False))
        (folder / "params" / "bench-dry.yaml").write_text(params_yaml(pool_id, dry_run=True))
        env = {
            **os.environ,
            **local.credentials,
            "AWS_ENDPOINT_URL": local.endpoint_url,
            "AWS_DEFAULT_REGION": "us-east-1",
            # the kernels import this checkout's library, whatever the venv has installed
            "PYTHONPATH": os.pathsep.join([str(folder / "site"), str(LIB)]),
            "STEP_BENCH_IMPORTS": str(imports),
            "TMPDIR": str(folder / "tmp"),  # step 1's spill and the comparisons' work folders
        }
        env.pop("AWS_PROFILE", None)
        for key in keys:
            if key in ("05", "06") and share and result["migrated"] is None:
                result["migrated"] = migrate_share(users, share)
                print(f"{users}: new pool given {json.dumps(result['migrated'])}", flush=True)
            generator = virtual.users_of(pool_id)
            if key == "03" and args.step3_users is not None:
                # the same pool, listing only its first users while step 3 reads it and fills the index
                _pool(pool_id).virtual = VirtualUsers(args.step3_users, generator.seed)
            try:
                row = run_step(key, folder, env, interval, key in dry_steps)
            finally:
                if key == "03" and args.step3_users is not None:
                    _pool(pool_id).virtual = generator
                    row["pool_listed_users"] = args.step3_users
            if index is not None:
                row["index_table"] = {"items": len(index.items), **index.calls}
            kernel_lib = _kernel_lib(imports, row.get("kernel_pid"))
            if kernel_lib:
                row["kernel_imported"] = kernel_lib
            result["steps"].append(row)
            shown = {k: v for k, v in row.items() if k != "runner_tail"}
            print(f"{users}: {json.dumps(shown)}", flush=True)
            if row.get("runner_tail"):
                print(row["runner_tail"], flush=True)
            if row["gate"] != "passed" and key in ("01", "02", "03"):
                print(f"{users}: {STEPS[key]} did not pass; the later steps need it: stopping", flush=True)
                break
    result["folder"] = str(folder)
    return result


def _pool(pool_id: str) -> Any:
    from moto.cognitoidp.models import cognitoidp_backends

    from cognito_migration.local import legacy

    return cognitoidp_backends[legacy.DEFAULT_ACCOUNT_ID]["us-east-1"].user_pools[pool_id]


def _kernel_lib(imports: Path, pid: int | None) -> str | None:
    if pid is None or not imports.exists():
        return None
    for line in imports.read_text().splitlines():
        note = json.loads(line)
        if note["pid"] == pid:
            return str(note["file"])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000", help="comma-separated pool sizes")
    parser.add_argument("--steps", default=",".join(STEPS), help="of 01,02,03,05,06 (04 cannot run on a virtual pool)")
    parser.add_argument("--migrated-share", type=float, default=0.3, help="share of users put in the new pool")
    parser.add_argument("--folder", type=Path, help="where the runs go (default: a new temporary folder)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls of the kernel")
    parser.add_argument("--keep", action="store_true", help="keep each size's folder (outputs, snapshots, logs)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--moto-index", action="store_true", help="keep the sign-up index in moto's DynamoDB")
    parser.add_argument("--dry-run-steps", default=DRY_RUN, help="steps run with dry_run: true (default: 06)")
    parser.add_argument(
        "--step3-users",
        type=int,
        help="step 3 reads the pool while it lists only its first N users (its index filled with their keys); "
        "the later steps read all of them",
    )
    parser.add_argument("--reuse", type=Path, help="an earlier run's folder (one size; e.g. after step 1)")
    args = parser.parse_args()
    keys = [k.strip() for k in args.steps.split(",") if k.strip()]
    unknown = [k for k in keys if k not in STEPS]
    if unknown:
        parser.error(f"--steps: unknown {unknown}; choose from {', '.join(STEPS)}")
    args.folder = args.folder or Path(tempfile.mkdtemp(prefix="step-bench-"))
    args.folder.mkdir(parents=True, exist_ok=True)
    rows: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "commit": _commit(),
        "goal_mb": GOAL_MB,
        "poll_interval_s": args.interval,
        "list_rate_limit": 30,
        "dry_run_steps": args.dry_run_steps,
        "step3_users": args.step3_users,
        "sizes": [],
    }
    for size in (int(s) for s in args.sizes.split(",") if s):
        result = measure(size, keys, args)
        rows["sizes"].append(result)
        args.results.write_text(json.dumps(rows, indent=2) + "\n")
        if not args.keep:
            shutil.rmtree(result["folder"], ignore_errors=True)
    print(table(rows))
    print(f"wrote {args.results}")


def table(rows: dict[str, Any]) -> str:
    lines = ["| users | step | wall | kernel peak (VmHWM) | gate |", "|---:|---|---:|---:|---|"]
    for size in rows["sizes"]:
        for row in size["steps"]:
            peak = f"{row['kernel_peak_mb']:,.0f} MB" if "kernel_peak_mb" in row else "-"
            lines.append(f"| {size['users']:,} | {row['step']} | {row['wall_s']:,.0f} s | {peak} | {row['gate']} |")
    return "\n".join(lines)


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False)
    return done.stdout.strip()


if __name__ == "__main__":
    main()
