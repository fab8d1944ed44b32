"""Step 5: who has migrated and who has not.

Both pools are read once with paged ListUsers calls; the comparison is done in pandas on usernames
normalised to the new pool's case rules. Every old-pool user is exactly one of: migrated, not yet, or
cannot migrate lazily (with the reason). New-pool users that never existed in the old pool are counted apart.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless runs (papermill, CI) have no display; notebooks still show the figure

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .checks import Check  # noqa: E402
from .records import mask_frame, save_frame, save_json  # noqa: E402

MIGRATED, NOT_YET, CANNOT = "migrated", "not yet", "cannot migrate lazily"
CATEGORIES = (MIGRATED, NOT_YET, CANNOT)
COLORS = {MIGRATED: "#2e7d32", NOT_YET: "#f9a825", CANNOT: "#c62828"}


def normalise(usernames: pd.Series, case_sensitive: bool) -> pd.Series:
    return usernames if case_sensitive else usernames.str.casefold()


def classify(old_users: pd.DataFrame, new_users: pd.DataFrame, case_sensitive: bool) -> pd.DataFrame:
    """One row per old-pool user with ``state`` (migrated / not yet / cannot migrate lazily) and ``reason``."""
    old = old_users.copy()
    old["key"] = normalise(old["username"], case_sensitive)
    new_by_key = (
        pd.Series(new_users["username"].values, index=normalise(new_users["username"], case_sensitive))
        if not new_users.empty
        else pd.Series(dtype=object)
    )
    holder = old["key"].map(new_by_key)
    migrated = holder == old["username"]
    taken = holder.notna() & ~migrated
    no_contact = ~_verified(old, "email") & ~_verified(old, "phone_number")
    reasons = pd.Series("", index=old.index, dtype=object)
    reasons[old["status"] == "EXTERNAL_PROVIDER"] = "federated user: signs in through its identity provider"
    reasons[(old["status"] == "FORCE_CHANGE_PASSWORD") & no_contact] = "temporary password, no verified email or phone"
    reasons[old["status"] == "UNCONFIRMED"] = "unconfirmed: the old pool refuses the sign-in"
    reasons[~old["enabled"].astype(bool)] = "disabled in the old pool"
    reasons[taken] = "username differs only by case from a migrated user"
    old["state"] = NOT_YET
    old.loc[reasons != "", "state"] = CANNOT
    old.loc[migrated, "state"] = MIGRATED
    old["reason"] = reasons.where(~migrated, "")
    return old.drop(columns=["key"])


def _verified(users: pd.DataFrame, contact: str) -> pd.Series:
    if contact not in users.columns or f"{contact}_verified" not in users.columns:
        return pd.Series(False, index=users.index)
    return users[contact].notna() & (users[f"{contact}_verified"] == "true")


def sign_ups(old_users: pd.DataFrame, new_users: pd.DataFrame, case_sensitive: bool) -> pd.DataFrame:
    """New-pool users with no old-pool user of the same (normalised) username."""
    if new_users.empty:
        return new_users
    old_keys = set(normalise(old_users["username"], case_sensitive))
    return new_users[~normalise(new_users["username"], case_sensitive).isin(old_keys)]


def summary(classified: pd.DataFrame) -> pd.DataFrame:
    """Counts and shares per state; the counts add up to the number of old-pool users."""
    counts = classified["state"].value_counts().reindex(list(CATEGORIES), fill_value=0)
    total = int(counts.sum())
    return pd.DataFrame(
        {
            "state": list(CATEGORIES),
            "users": [int(v) for v in counts.values],
            "share": [round(100 * v / total, 1) if total else 0.0 for v in counts.values],
        }
    )


def by_reason(classified: pd.DataFrame) -> pd.DataFrame:
    cannot = classified[classified["state"] == CANNOT]
    return cannot["reason"].value_counts().rename_axis("reason").rename("users").reset_index()


def by_status(classified: pd.DataFrame) -> pd.DataFrame:
    """States broken down by the old pool's user status."""
    table = pd.crosstab(classified["status"], classified["state"]).reindex(columns=list(CATEGORIES), fill_value=0)
    return table.reset_index().rename_axis(columns=None)


def chart(classified: pd.DataFrame, path: Path) -> plt.Figure:
    """Migrated / not yet / cannot, overall and by old-pool status; saved as PNG at ``path``."""
    totals = summary(classified)
    status = by_status(classified).set_index("status")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 2]})
    left.bar(totals["state"].str.replace(" ", "\n", n=1), totals["users"], color=[COLORS[s] for s in totals["state"]])
    for x, (users, share) in enumerate(zip(totals["users"], totals["share"], strict=True)):
        left.annotate(f"{users}\n{share}%", (x, users), ha="center", va="bottom", fontsize=9)
    left.set_title(f"{len(classified)} old-pool users")
    left.set_ylabel("users")
    left.margins(y=0.25)
    status.plot.barh(stacked=True, ax=right, color=[COLORS[c] for c in status.columns])
    right.set_title("by status in the old pool")
    right.set_xlabel("users")
    right.set_ylabel("")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return fig


def verify(classified: pd.DataFrame, old_users: pd.DataFrame) -> list[Check]:
    """Every old-pool user is counted exactly once."""
    counted = int(summary(classified)["users"].sum())
    unique = classified["username"].is_unique
    return [
        Check(
            "every old-pool user counted once",
            counted == len(old_users) and unique,
            "blocker",
            f"{counted} counted, {len(old_users)} read",
            "re-run the report: a page was lost",
        ),
    ]


def save(run_dir: Path, classified: pd.DataFrame, new_only: pd.DataFrame, mask: bool) -> dict[str, object]:
    """The report's record: counts (report.json) and the masked per-user snapshot (report_users.parquet)."""
    totals = summary(classified)
    data = {
        "users": len(classified),
        "states": dict(zip(totals["state"], totals["users"], strict=True)),
        "cannot_by_reason": dict(zip(*by_reason(classified).to_dict("list").values(), strict=True)),
        "new_pool_only": len(new_only),
    }
    columns = [c for c in ("username", "status", "enabled", "created", "state", "reason") if c in classified.columns]
    save_json(run_dir, "report", data)
    save_frame(run_dir, "report_users", mask_frame(classified[columns], mask))
    return data
