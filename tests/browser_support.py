"""JupyterLab in a subprocess and the few things the browser test does to it through JupyterLab's own API
(``--LabApp.expose_app_in_browser``): wait for the kernel, run cells, read the notebook as the browser
holds it, save."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# This machine's network is closed: without these chromium keeps trying to reach Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The test's own JupyterLab settings: the repository's overrides (widget state saved with the notebook),
# no news or update checks, and every cell in the page (no windowing), so the test can see it.
TEST_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"checkForUpdates": False, "fetchNews": "false"},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}


@dataclass
class Lab:
    url: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def app_settings(folder: Path) -> Path:
    """An app settings folder holding the repository's jupyter/overrides.json plus the test's own."""
    overrides = json.loads((ROOT / "jupyter" / "overrides.json").read_text())
    overrides.update(TEST_OVERRIDES)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "overrides.json").write_text(json.dumps(overrides))
    return folder


def start_lab(scratch: Path, token: str) -> Lab:
    """JupyterLab on a free port, its kernels inheriting this process's environment (AWS_ENDPOINT_URL and the
    local credentials) and this checkout's library; its settings, workspaces and runtime files in ``scratch``."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "lib"),
        "JUPYTERLAB_SETTINGS_DIR": str(scratch / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(scratch / "workspaces"),
        "JUPYTER_CONFIG_DIR": str(scratch / "config"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
        "IPYTHONDIR": str(scratch / "ipython"),
        "MPLBACKEND": "Agg",
    }
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",  # CI runs as root
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={ROOT}",
        f"--LabApp.app_settings_dir={app_settings(scratch / 'app-settings')}",
        "--LabApp.expose_app_in_browser=True",
    ]
    log = scratch / "jupyterlab.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    lab = Lab(f"http://127.0.0.1:{port}", token, process, log)
    _wait_until_up(lab)
    return lab


def _wait_until_up(lab: Lab, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited ({lab.process.returncode}): {lab.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{lab.url}/api/status?token={lab.token}", timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer within {timeout}s: {lab.log.read_text()[-3000:]}")


def stop_lab(lab: Lab) -> None:
    lab.process.terminate()
    try:
        lab.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        lab.process.kill()
        lab.process.wait()


def copy_notebooks(folder: Path) -> None:
    """The source notebooks, copied where running and saving them leaves the committed ones untouched."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for source in sorted((ROOT / "notebooks").glob("*.ipynb")):
        shutil.copy(source, folder / source.name)


KERNEL_IDLE = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
  return Boolean(kernel && kernel.status === 'idle' && panel.context.isReady);
}"""


def open_notebook(page: Any, lab: Lab, path: str) -> None:
    """Opens ``path`` (relative to the checkout) alone in JupyterLab and waits for its kernel."""
    page.goto(f"{lab.url}/lab/tree/{path}?reset&token={lab.token}")
    page.wait_for_function(KERNEL_IDLE, timeout=120_000)


def close_all(page: Any) -> None:
    """Saves the open notebook, shuts its kernel down and closes it, as one leaves a finished step."""
    page.evaluate(
        """async () => {
          const app = window.jupyterapp;
          await app.commands.execute('docmanager:save');
          await app.serviceManager.sessions.shutdownAll();
          app.shell.closeAll();
        }"""
    )


def notebook(page: Any) -> dict[str, Any]:
    """The open notebook as the browser holds it (nbformat JSON, outputs included)."""
    return page.evaluate("() => window.jupyterapp.shell.currentWidget.content.model.toJSON()")  # type: ignore[no-any-return]


def run(page: Any, command: str, active_cell: int | None = None, timeout_ms: int = 600_000) -> None:
    """Runs a notebook command (e.g. 'notebook:run-all-cells', as the Run menu does) and waits for it."""
    page.evaluate(
        """async ([command, index]) => {
          const panel = window.jupyterapp.shell.currentWidget;
          if (index !== null) { panel.content.activeCellIndex = index; }
          await window.jupyterapp.commands.execute(command);
        }""",
        [command, active_cell],
    )
    page.wait_for_function(KERNEL_IDLE, timeout=timeout_ms)


def edit_parameters(page: Any, source: str, edits: dict[str, str]) -> str:
    """Types the parameters cell again with ``edits`` (name -> Python literal), as a person editing it."""
    text = source
    for name, value in edits.items():
        text, found = re.subn(rf"^{name} = .*?(  #)", rf"{name} = {value}\1", text, count=1, flags=re.M)
        assert found, f"no {name} in the parameters cell"
    cells = notebook(page)["cells"]
    index = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
    editor = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)
    page.keyboard.press("Escape")
    typed = "".join(notebook(page)["cells"][index]["source"])
    assert typed == text, typed
    return text


def errors(nb: dict[str, Any]) -> list[str]:
    """Every error output: the cell's index, the error's name and value."""
    return [
        f"cell {i}: {o['ename']}: {o['evalue']}"
        for i, cell in enumerate(nb["cells"])
        for o in cell.get("outputs", [])
        if o["output_type"] == "error"
    ]


def cell_index(nb: dict[str, Any], fragment: str) -> int:
    """The first code cell whose source holds ``fragment``."""
    return next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and fragment in "".join(c["source"]))


def output_text(cell: dict[str, Any]) -> str:
    """What a cell shows as text: streams, plain text of displays and results, errors."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append("".join(output["text"]))
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
        else:
            plain = output.get("data", {}).get("text/plain", "")
            parts.append(plain if isinstance(plain, str) else "".join(plain))
    return "\n".join(parts)
