"""Checks and gates shared by every step: a step returns its checks; its notebook ends with ``gate``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

SEVERITIES = ("blocker", "warning", "info")


class GateFailed(RuntimeError):
    """A step's checks failed; the runner stops at the first failing gate."""


@dataclass(frozen=True)
class Check:
    """One condition of a step: a failed 'blocker' stops the run, a failed 'warning' is shown."""

    name: str
    passed: bool
    severity: str
    detail: str
    remedy: str = ""


def table(checks: list[Check]) -> pd.DataFrame:
    return pd.DataFrame([asdict(c) for c in checks], columns=["name", "passed", "severity", "detail", "remedy"])


def gate(checks: list[Check], step: str) -> None:
    """Raises when a blocker failed: the saved notebook then shows the failure as the run's record."""
    failed = [c for c in checks if not c.passed and c.severity == "blocker"]
    if failed:
        lines = "\n".join(f"- {c.name}: {c.detail}. Fix: {c.remedy}" for c in failed)
        raise GateFailed(f"{step}: {len(failed)} blocker(s):\n{lines}")
