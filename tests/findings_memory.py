"""Run as a script: step 1's findings over a snapshot, the users read whole or in batches, in this fresh process;
prints one JSON line with its resident memory before the users are read and at its peak (VmHWM), so the
memory counted includes what no tracer sees (Arrow's buffers, DuckDB's), the time, and a digest of the findings
(ids, severities, counts, details, examples).

    python tests/findings_memory.py CONTEXT.pickle SNAPSHOT_FOLDER whole|batches [BATCH_ROWS]

CONTEXT.pickle: {"audit": an Audit without users, "params": Params}, as ``write_context`` saves it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import resource
import sys
import time
from pathlib import Path
from typing import Any

from cognito_migration import audit, snapshot, user_audit


def write_context(path: Path, context: audit.Audit, params: Any) -> Path:
    path.write_bytes(pickle.dumps({"audit": context, "params": params}))
    return path


def peak_mb() -> float:
    """This process's peak resident memory. Linux's getrusage keeps the parent's peak across fork and exec
    (a child of pytest starts at pytest's), VmHWM does not; getrusage elsewhere."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux, bytes on macOS


def main(context_path: str, folder: str, how: str, rows: str = "10000") -> None:
    context = pickle.loads(Path(context_path).read_bytes())
    snap = snapshot.Snapshot(Path(folder))
    before = peak_mb()
    started = time.perf_counter()
    if how == "whole":
        result = dataclasses.replace(context["audit"], users=snap.frame())
        found = audit.assess(result, context["params"], user_audit.Batching(in_memory=snap.rows))
    else:
        result = dataclasses.replace(context["audit"], users=snap)
        found = audit.assess(result, context["params"], user_audit.Batching(in_memory=0, rows=int(rows)))
    seconds = time.perf_counter() - started
    # What both ways must agree on whatever the size (read in batches, a finding lists its first 1,000 groups).
    essence = [(f.id, f.severity, f.count, f.detail, f.examples) for f in found]
    digest = hashlib.sha256(json.dumps(essence, default=str).encode()).hexdigest()
    print(json.dumps({"before_mb": before, "peak_mb": peak_mb(), "seconds": seconds, "findings": digest}))


if __name__ == "__main__":
    main(*sys.argv[1:])
