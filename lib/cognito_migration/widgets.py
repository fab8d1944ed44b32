"""Interactive controls for JupyterLab, with a parameter fallback for headless runs.

In JupyterLab the report's table gets group and status dropdowns, and the cutover's writes wait for a
button. Under papermill nobody can click: the same calls then return the table filtered by the parameters
(``report_filter_group`` / ``report_filter_status``) and run the writes only when ``cutover_confirm`` says
so. Which case applies is read from the kernel: a frontend that can answer sends its code with
``allow_stdin``; papermill's executor (nbclient) never does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

ALL = "(all)"
TABLE_ROWS = 50  # rows shown; the full table is in the run's records


def interactive() -> bool:
    """True when a person runs the notebook (JupyterLab, Notebook), False under papermill or plain Python."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    kernel = getattr(get_ipython(), "kernel", None)
    return bool(getattr(kernel, "_allow_stdin", False))


def filtered(frame: pd.DataFrame, group: str = "", status: str = "") -> pd.DataFrame:
    """Rows of users in ``group`` (the ``groups`` column lists each user's, comma-separated) with old-pool
    ``status``; an empty value (or '(all)') does not filter."""
    keep = pd.Series(True, index=frame.index)
    if group and group != ALL:
        keep &= frame["groups"].fillna("").str.split(", ").map(lambda names: group in names)
    if status and status != ALL:
        keep &= frame["status"] == status
    return frame[keep]


@dataclass
class FilterTable:
    """Dropdowns for group and status above the matching rows; ``current`` is what is shown."""

    frame: pd.DataFrame
    group: str = ""
    status: str = ""
    rows: int = TABLE_ROWS
    current: pd.DataFrame = field(init=False)

    def __post_init__(self) -> None:
        self.current = filtered(self.frame, self.group, self.status)

    def options(self) -> tuple[list[str], list[str]]:
        names = self.frame["groups"].fillna("").str.split(", ").explode()
        groups = sorted({g for g in names if g})
        return [ALL, *groups], [ALL, *sorted(self.frame["status"].dropna().unique())]

    def select(self, group: str, status: str) -> pd.DataFrame:
        self.group, self.status = group, status
        self.current = filtered(self.frame, group, status)
        return self.current

    def widget(self) -> Any:
        import ipywidgets
        from IPython.display import display

        groups, statuses = self.options()
        group = ipywidgets.Dropdown(options=groups, value=self.group or ALL, description="group")
        status = ipywidgets.Dropdown(options=statuses, value=self.status or ALL, description="status")
        output = ipywidgets.Output()

        def show(_: object = None) -> None:
            shown = self.select(group.value, status.value)
            output.clear_output(wait=True)
            with output:
                print(f"{len(shown)} of {len(self.frame)} users; the first {min(self.rows, len(shown))}:")
                display(shown.head(self.rows))

        group.observe(show, names="value")
        status.observe(show, names="value")
        show()
        return ipywidgets.VBox([ipywidgets.HBox([group, status]), output])


def filter_table(frame: pd.DataFrame, group: str = "", status: str = "", rows: int = TABLE_ROWS) -> Any:
    """What to display: in JupyterLab, the table with its dropdowns; headless, the first ``rows`` rows
    filtered by the parameters (a plain table, so the saved HTML shows it)."""
    table = FilterTable(frame, group, status, rows)
    return table.widget() if interactive() else table.current.head(rows)


@dataclass
class Confirmation:
    """A write behind ``dry_run`` and an explicit confirmation. ``state`` says what happened:
    'dry run', 'not confirmed', 'waiting for the button', 'running', 'done' or 'failed'."""

    action: Callable[[], Any]
    label: str
    state: str = "not confirmed"
    result: Any = None
    error: str | None = None
    shown: Any = None  # the button, in JupyterLab

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self.shown is not None:
            display(self.shown)  # its label says what happened, and changes when the button has run
            return
        print(message(self))

    def run(self) -> Any:
        try:
            self.result = self.action()
        except Exception as exc:  # shown in the widget and kept; a papermill run re-raises below
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            raise
        self.state = "done"
        return self.result

    def widget(self) -> Any:
        import ipywidgets

        button = ipywidgets.Button(description=self.label, button_style="danger", layout={"width": "auto"})
        status = ipywidgets.Label()  # says what happened, in place of the waiting line
        output = ipywidgets.Output()

        def clicked(_: object) -> None:
            if self.state != "waiting for the button":
                return  # once: a second click must not start a second import
            button.disabled, self.state = True, "running"
            status.value = message(self)
            with output:
                try:
                    self.run()
                except Exception:
                    return  # the state says it failed, and why
                finally:
                    status.value = message(self)

        button.on_click(clicked)
        self.state = "waiting for the button"
        status.value = message(self)
        return ipywidgets.VBox([button, status, output])


def confirm(action: Callable[[], Any], *, dry_run: bool, confirmed: bool, label: str) -> Confirmation:
    """Runs ``action`` now when ``confirmed`` (the parameter) and not ``dry_run``; in JupyterLab, without
    the parameter, shows a button that runs it once; otherwise runs nothing. Displaying the returned
    Confirmation shows the button (in JupyterLab) and a line saying what happened."""
    confirmation = Confirmation(action, label)
    if dry_run:
        confirmation.state = "dry run"
    elif confirmed:
        confirmation.run()
    elif interactive():
        confirmation.shown = confirmation.widget()
    return confirmation


def message(confirmation: Confirmation) -> str:
    """One line saying what happened, for the notebook and its saved copy."""
    return {
        "dry run": "dry run: nothing written; set dry_run: false (and cutover_confirm: true) to write",
        "not confirmed": "not confirmed: nothing written; set cutover_confirm: true (or use JupyterLab's button)",
        "waiting for the button": "waiting: press the button above to write, then run the cells below",
        "running": "running: the cutover is writing",
        "done": "done: run the cells below to see the results and the gate",
        "failed": f"failed: {confirmation.error}",
    }[confirmation.state]
