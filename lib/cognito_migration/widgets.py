"""Interactive controls for JupyterLab, with a parameter fallback for headless runs.

In JupyterLab the report's table gets group and status dropdowns, the cutover's writes wait for a button,
and long reads show widget progress bars. Under papermill nobody can click: the same calls then return the
table filtered by the parameters (``report_filter_group`` / ``report_filter_status``), run the writes only
when ``cutover_confirm`` says so, and write text progress bars to stderr (the step's log). Which case applies
is read from the kernel: a frontend that can answer sends its code with ``allow_stdin``; papermill's
executor (nbclient) never does.

What a widget shows is also a plain output (the filtered table, the confirmation's outcome), updated in place
by display id: a saved notebook reopened without its widget state, or its HTML copy, still shows it.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Callable, Mapping
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


def progress_bar(**options: Any) -> Any:
    """A tqdm bar: a widget in JupyterLab (not text on the stderr stream's pink background); elsewhere
    text on stderr, which the runner writes to the step's log, every ``mininterval`` seconds."""
    if interactive():
        from tqdm.notebook import tqdm as widget_bar

        return widget_bar(**options)
    from tqdm.std import tqdm as text_bar

    return text_bar(file=sys.stderr, **options)


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

    def shown(self) -> dict[str, str]:
        """The rows shown, as a plain output (text and escaped HTML), under a line saying which."""
        head = self.current.head(self.rows)
        line = f"{len(self.current)} of {len(self.frame)} users; the first {len(head)}"
        line += f" (group {self.group or ALL}, status {self.status or ALL}):"
        return {
            "text/plain": f"{line}\n{head.to_string()}",
            "text/html": f"<p>{html.escape(line)}</p>{head.to_html(escape=True)}",
        }

    def controls(self, changed: Callable[[], None] = lambda: None) -> Any:
        """The group and status dropdowns: each change selects the rows, then calls ``changed``."""
        import ipywidgets

        groups, statuses = self.options()
        group = ipywidgets.Dropdown(options=groups, value=self.group or ALL, description="group")
        status = ipywidgets.Dropdown(options=statuses, value=self.status or ALL, description="status")

        def select(_: object = None) -> None:
            self.select(group.value, status.value)
            changed()

        group.observe(select, names="value")
        status.observe(select, names="value")
        return ipywidgets.HBox([group, status])

    def _ipython_display_(self) -> None:
        """The dropdowns, then the table as a plain output that they update in place."""
        from IPython.display import DisplayHandle, display

        table = DisplayHandle()
        display(self.controls(changed=lambda: table.update(self.shown(), raw=True)))
        table.display(self.shown(), raw=True)


def filter_table(frame: pd.DataFrame, group: str = "", status: str = "", rows: int = TABLE_ROWS) -> Any:
    """What to display: in JupyterLab, the table with its dropdowns; headless, the first ``rows`` rows
    filtered by the parameters (a plain table, so the saved HTML shows it)."""
    table = FilterTable(frame, group, status, rows)
    return table if interactive() else table.current.head(rows)


@dataclass
class Confirmation:
    """A write behind ``dry_run`` and an explicit confirmation. ``state`` says what happened:
    'dry run', 'not confirmed', 'waiting for the button', 'running', 'done' or 'failed'."""

    action: Callable[[], Any]
    label: str
    state: str = "not confirmed"
    result: Any = None
    error: str | None = None
    shown: Any = None  # in JupyterLab: the button, and the output area the action writes to
    line: Any = None  # the display handle of the outcome line under the button, once displayed

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self.shown is None:
            print(message(self))
            return
        button, output = self.shown
        display(button)
        # A plain output, not a widget: the saved notebook and its HTML copy say what happened.
        self.line = display(self.outcome(), raw=True, display_id=True)
        display(output)

    def outcome(self) -> dict[str, str]:
        text = message(self) + (f"\nresult: {summary(self.result)}" if self.state == "done" else "")
        return {"text/plain": text, "text/html": f"<pre>{html.escape(text)}</pre>"}

    def run(self) -> Any:
        try:
            self.result = self.action()
        except Exception as exc:  # shown in the widget and kept; a papermill run re-raises below
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            raise
        self.state = "done"
        return self.result

    def widget(self) -> tuple[Any, Any]:
        """The button, which runs the action once, and the output area the action writes to."""
        import ipywidgets

        button = ipywidgets.Button(description=self.label, button_style="danger", layout={"width": "auto"})
        output = ipywidgets.Output()

        def clicked(_: object) -> None:
            if self.state != "waiting for the button":
                return  # once: a second click must not start a second import
            button.disabled, self.state = True, "running"
            self._update_line()
            with output:
                try:
                    self.run()
                except Exception:
                    return  # the state says it failed, and why
                finally:
                    self._update_line()

        button.on_click(clicked)
        self.state = "waiting for the button"
        return button, output

    def _update_line(self) -> None:
        if self.line is not None:
            self.line.update(self.outcome(), raw=True)


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


def summary(result: Any) -> str:
    """An action's result in one line: plain values as they are, a short list of names by name, others by
    their length."""
    if not isinstance(result, Mapping):
        return "" if result is None else str(result)
    parts = []
    for key, value in result.items():
        if isinstance(value, (str, int, float, bool)):
            parts.append(f"{key}: {value}")
        elif isinstance(value, list) and len(value) <= 3 and all(isinstance(v, str) for v in value):
            parts.append(f"{key}: [{', '.join(value)}]")
        elif isinstance(value, list):
            parts.append(f"{key}: {len(value)}")
    return "; ".join(parts)


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
