"""Progress over time: every report run of an environment is a point; the last few give a rate and a
projection of when the users who can still migrate lazily would all be done.

Each run's ``report.json`` (``outputs/<env>/<run-id>/``) is its snapshot; nothing else is kept, so
deleting a run folder removes its point.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # not pyplot: the operator's kernel keeps its own backend

from .records import RUN_ID_FORMAT, save_figure
from .report import CANNOT, COLORS, MIGRATED, NOT_YET

HISTORY_COLUMNS = ("run_id", "by", "date", "users", "migrated", "not_yet", "cannot", "migrated %", "ceiling %")
BY_HAND = "hand"  # a run by hand: its folder is outputs/<env>/manual-<id> (notebook_params)
RECENT_RUNS = 5  # the rate is measured over this many most recent runs
MIN_SPAN_DAYS = 1 / 24  # runs closer together than an hour say nothing about a daily rate
MAX_DAYS_LEFT = 100 * 365.25  # beyond, no date is given (pandas' calendar ends in 2262)


@dataclass(frozen=True)
class Projection:
    """The migration rate over the most recent runs, and when the rest would be done at that rate."""

    runs: int
    users_per_day: float | None
    remaining: int
    days_left: float | None
    done_by: pd.Timestamp | None
    note: str

    def as_dict(self) -> dict[str, object]:
        return {
            "runs": self.runs,
            "users_per_day": None if self.users_per_day is None else round(self.users_per_day, 1),
            "remaining": self.remaining,
            "days_left": None if self.days_left is None else round(self.days_left, 1),
            "done_by": None if self.done_by is None else self.done_by.isoformat(),
            "note": self.note,
        }


def history(env_dir: Path) -> pd.DataFrame:
    """One row per report run of the environment (``<env_dir>/*/report.json``), oldest first."""
    rows = [row for path in sorted(env_dir.glob("*/report.json")) if (row := _point(path)) is not None]
    frame = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    frame["date"] = pd.to_datetime(frame["date"], utc=True, format="ISO8601")  # with or without fractions of a second
    return frame.sort_values("date", ignore_index=True)


def _point(path: Path) -> dict[str, object] | None:
    data = json.loads(path.read_text())
    states, users = data.get("states") or {}, int(data.get("users") or 0)
    if not users:
        return None
    date = data.get("generated") or _date_of_run_id(path.parent.name)
    if date is None:
        return None
    return {
        "run_id": path.parent.name,
        "by": BY_HAND if path.parent.name.startswith("manual") else "runner",
        "date": date,
        "users": users,
        "migrated": int(states.get(MIGRATED, 0)),
        "not_yet": int(states.get(NOT_YET, 0)),
        "cannot": int(states.get(CANNOT, 0)),
        "migrated %": round(100 * states.get(MIGRATED, 0) / users, 2),
        "ceiling %": round(100 * (users - states.get(CANNOT, 0)) / users, 2),
    }


def _date_of_run_id(run_id: str) -> str | None:
    """Run ids are UTC timestamps (records.new_run_id); older reports carry no date of their own."""
    try:
        return datetime.strptime(run_id, RUN_ID_FORMAT).isoformat() + "+00:00"
    except ValueError:
        return None


def project(points: pd.DataFrame, recent: int = RECENT_RUNS) -> Projection:
    """Users migrated per day over the ``recent`` latest runs (least squares), and the date the users who
    can still migrate lazily would be done at that rate."""
    if points.empty:
        return Projection(0, None, 0, None, None, "no report runs yet")
    window = points.tail(recent)
    remaining = int(window["not_yet"].iloc[-1])
    if remaining == 0:
        return Projection(len(window), None, 0, 0.0, window["date"].iloc[-1], "everyone who can migrate lazily has")
    days = (window["date"] - window["date"].iloc[0]).dt.total_seconds().to_numpy() / 86400
    if len(window) < 2 or days[-1] < MIN_SPAN_DAYS:
        return Projection(
            len(window), None, remaining, None, None, "a rate needs two report runs at least an hour apart"
        )
    slope = float(np.polyfit(days, window["migrated"].to_numpy(dtype=float), 1)[0])
    # A flat line's least-squares slope is rounding noise (1e-14 users/day), not progress: under half a user
    # over the whole window counts as none.
    if slope * days[-1] < 0.5:
        return Projection(len(window), slope, remaining, None, None, "no progress over these runs: no end in sight")
    days_left = remaining / slope
    if days_left > MAX_DAYS_LEFT:
        note = f"{slope:,.2f} users/day over the last {len(window)} runs: more than 100 years at this rate"
        return Projection(len(window), slope, remaining, None, None, note)
    done_by = window["date"].iloc[-1] + pd.Timedelta(days=days_left)
    note = f"{slope:,.0f} users/day over the last {len(window)} runs"
    return Projection(len(window), slope, remaining, days_left, done_by, note)


def chart(points: pd.DataFrame, projection: Projection, path: Path) -> Path:
    """Migrated share by run date, the lazily-migratable ceiling, and the projection; PNG at ``path``."""
    fig = Figure(figsize=(10, 4))
    ax = fig.subplots()
    if not points.empty:
        ax.plot(points["date"], points["migrated %"], marker="o", color=COLORS[MIGRATED], label="migrated")
        by_hand = points[points["by"] == BY_HAND]
        if not by_hand.empty:  # hand runs are points like the others, marked so a reader tells them apart
            ax.plot(
                by_hand["date"],
                by_hand["migrated %"],
                ls="",
                marker="o",
                markersize=11,
                markerfacecolor="none",
                color="#37474f",
                label="run by hand (ringed)",
            )
        ax.plot(
            points["date"], points["ceiling %"], ls="--", marker="_", color=COLORS[CANNOT], label="lazily migratable"
        )
        if projection.done_by is not None and projection.days_left:
            last = points.iloc[-1]
            ax.plot(
                [last["date"], projection.done_by],
                [last["migrated %"], last["ceiling %"]],
                ls=":",
                color=COLORS[NOT_YET],
                label=f"projection: done by {projection.done_by:%Y-%m-%d}",
            )
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of old-pool users")
    ax.set_title(f"{len(points)} report run(s): {projection.note}")
    if not points.empty:
        ax.legend(loc="lower right")
    fig.autofmt_xdate()
    fig.tight_layout()
    save_figure(fig, path)
    return path
