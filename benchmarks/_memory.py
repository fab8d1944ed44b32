"""A benchmark process's own peak resident memory.

VmHWM in /proc/self/status is per address space and starts afresh at exec. getrusage's ru_maxrss does not on
Linux: a child keeps the high-water mark its forked parent had before exec, so it is only an upper bound.
"""

from __future__ import annotations

import re
from pathlib import Path


def high_water_mb() -> float:
    """This process's peak resident memory in MB (VmHWM); exits where there is none (not Linux)."""
    return _status_mb("VmHWM")


def current_mb() -> float:
    """This process's resident memory now, in MB (VmRSS)."""
    return _status_mb("VmRSS")


def restart_high_water() -> None:
    """Starts VmHWM afresh from the current resident memory (Linux 4.0+: ``5`` to /proc/self/clear_refs), so
    that the next ``high_water_mb`` is one phase's peak."""
    Path("/proc/self/clear_refs").write_text("5")


def _status_mb(field: str) -> float:
    status = Path("/proc/self/status")
    found = re.search(rf"{field}:\s+(\d+) kB", status.read_text()) if status.exists() else None
    if found is None:
        raise SystemExit(f"no {field} in /proc/self/status: the benchmarks measure memory on Linux")
    return int(found.group(1)) / 1024
