"""notebooks/explore.ipynb on the dbt fixture lake, and `orangescrum notebook` as it serves.

The notebook runs in a real kernel (nbclient) against a lake written by tests/dbt/lake.py and
marts built from it by dbt on DuckDB: its key number, distinct events counted in the lake by
PySpark, must equal a count on the marts made here. The command runs as a person starts it,
and is probed over HTTP with and without its token before SIGTERM stops it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from jupyter_client import BlockingKernelClient
from nbclient import NotebookClient

from orangescrum.cli.notebook import KERNEL_NAME, NOTEBOOKS_DIR, write_kernel_spec
from orangescrum.core.processes import port_is_free
from tests.conftest import sigterm_when_ready
from tests.dbt.conftest import new_warehouse
from tests.dbt.lake import EVENTS, write_lake

pytestmark = pytest.mark.slow

NOTEBOOK = NOTEBOOKS_DIR / "explore.ipynb"
PRINTED_URL = re.compile(
    r"^notebook: (?P<base>http://127\.0\.0\.1:(?P<port>\d+))/lab/tree/explore\.ipynb"
    r"\?token=(?P<token>\S+)$",
    re.MULTILINE,
)
# A mart a cell of the notebook queries: `{MARTS}.fact_activities` in its SQL.
MART_IN_CELL = re.compile(r"\{MARTS\}\.(\w+)")
# Guards against a hung kernel or server, far above what they need; no test measures time.
KERNEL_TIMEOUT_SECONDS = 300
IN_THE_KERNEL = """\
import os, sys
from orangescrum.core.settings import load_settings
settings = load_settings()
print(sys.executable, os.getcwd(), settings.lake_root, settings.duckdb_file, sep="\\n")
"""


def cell_text(cell: nbformat.NotebookNode) -> str:
    return "".join(output.get("text", "") for output in cell.outputs)


def test_explore_notebook_counts_the_lake_and_the_marts_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells), "commit it with outputs cleared"
    warehouse = new_warehouse(tmp_path / "state")
    write_lake(warehouse.lake_root)
    warehouse.dbt("run-operation", "create_raw_events")
    # Models only: tests/dbt proves the marts; this test proves the notebook reads them. Only
    # the marts its cells query and their parents: half the CPU of running every model.
    queried = {mart for cell in notebook.cells for mart in MART_IN_CELL.findall(cell.source)}
    assert queried, "no mart found in the notebook's queries"
    warehouse.dbt("run", "--select", *(f"+{mart}" for mart in sorted(queried)))
    summary_file = tmp_path / "summary.json"
    monkeypatch.setenv("ORANGESCRUM_DATA_DIR", str(warehouse.settings.data_dir))
    monkeypatch.setenv("EXPLORE_SUMMARY_JSON", str(summary_file))
    # The kernel `orangescrum notebook` gives JupyterLab: this interpreter, first on the path.
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    write_kernel_spec(tmp_path / "jupyter")

    NotebookClient(
        notebook,
        kernel_name=KERNEL_NAME,
        timeout=KERNEL_TIMEOUT_SECONDS,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    ).execute()

    [(fact_rows,)] = warehouse.query("select count(*) from orangescrum_dw_marts.fact_activities")
    summary = json.loads(summary_file.read_text())
    assert summary["lake_event_ids"] == fact_rows == len(EVENTS)
    assert summary["fact_activities_rows"] == fact_rows
    assert summary["lake_rows"] == len(EVENTS) + 1  # event 16 delivered twice
    cells = {cell.id: cell for cell in notebook.cells}
    shown = cell_text(cells["agree"])
    assert f"distinct events in the lake (PySpark):     {fact_rows}\n" in shown
    assert f"rows in fact_activities (DuckDB marts):    {fact_rows}\n" in shown
    assert "lake and warehouse agree" in shown
    plotted = [
        cell.id
        for cell in notebook.cells
        if any("image/png" in output.get("data", {}) for output in cell.get("outputs", []))
    ]
    assert plotted == ["per-day", "active-users", "hours"]


def http(url: str, token: str | None = None, post: dict[str, Any] | None = None) -> tuple[int, Any]:
    """(status, JSON body or None) of a GET (or POST of `post`), with or without the token."""
    headers = {"Authorization": f"token {token}"} if token else {}
    data = None if post is None else json.dumps(post).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None
    except urllib.error.HTTPError as error:
        return error.code, None


def run_in_new_kernel(base: str, token: str, runtime_dir: Path, code: str) -> str:
    """Open explore.ipynb's session as JupyterLab does (a kernel for it), run code in it.

    The server only relays kernel messages over a websocket; the kernel's own connection file
    (in the runtime dir) lets a plain jupyter_client talk to it instead.
    """
    notebook_session = {
        "path": "explore.ipynb",
        "type": "notebook",
        "kernel": {"name": KERNEL_NAME},
    }
    status, opened = http(f"{base}/api/sessions", token, post=notebook_session)
    assert status == 201, status
    kernel = opened["kernel"]
    client = BlockingKernelClient()
    client.load_connection_file(runtime_dir / f"kernel-{kernel['id']}.json")
    client.start_channels()
    printed: list[str] = []

    def keep_stdout(message: dict[str, Any]) -> None:
        if message["msg_type"] == "stream" and message["content"]["name"] == "stdout":
            printed.append(message["content"]["text"])

    try:
        client.wait_for_ready(timeout=KERNEL_TIMEOUT_SECONDS)
        reply = client.execute_interactive(
            code, output_hook=keep_stdout, timeout=KERNEL_TIMEOUT_SECONDS
        )
    finally:
        client.stop_channels()
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(printed)


def test_notebook_command_serves_with_a_token_and_stops_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state"
    jupyter_home = tmp_path / "jupyter-home"
    runtime_dir = jupyter_home / "runtime"
    env = os.environ | {
        "ORANGESCRUM_DATA_DIR": str(state),
        # Nothing of the developer's own Jupyter config or runtime files.
        "JUPYTER_CONFIG_DIR": str(jupyter_home / "config"),
        "JUPYTER_DATA_DIR": str(jupyter_home / "data"),
        "JUPYTER_RUNTIME_DIR": str(runtime_dir),
        "JUPYTER_PATH": str(jupyter_home / "path"),
    }
    # A `python3` kernel of another Python first on the caller's JUPYTER_PATH (which beats
    # user and venv specs): the command's own spec must win, or the session below fails.
    decoy = jupyter_home / "path" / "kernels" / KERNEL_NAME
    decoy.mkdir(parents=True)
    decoy_argv = ["/nonexistent/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (decoy / "kernel.json").write_text(
        json.dumps({"argv": decoy_argv, "display_name": "Other Python", "language": "python"})
    )
    output = tmp_path / "notebook.log"
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "orangescrum", "notebook", "--no-browser"],
            env=env,
            stdout=sink,
            stderr=sink,
        )
    seen: dict[str, Any] = {}

    def served() -> bool:
        """Once the URL is printed: probe the server, start a kernel, note the process tree."""
        printed = PRINTED_URL.search(output.read_text())
        if printed is None:
            return False
        base, token = printed["base"], printed["token"]
        seen["port"] = int(printed["port"])
        seen["with_token"] = http(f"{base}/api/status", token)[0]
        seen["without_token"] = http(f"{base}/api/status")[0]
        seen["wrong_token"] = http(f"{base}/api/status", "not-the-token")[0]
        seen["notebook"] = http(f"{base}/api/contents/explore.ipynb?content=0", token)
        seen["kernel_says"] = run_in_new_kernel(base, token, runtime_dir, IN_THE_KERNEL)
        seen["tree"] = psutil.Process(process.pid).children(recursive=True)
        return True

    printed = sigterm_when_ready(process, served, output, timeout=KERNEL_TIMEOUT_SECONDS)

    assert seen["with_token"] == 200, printed
    assert seen["without_token"] == 403
    assert seen["wrong_token"] == 403
    status, model = seen["notebook"]
    assert (status, model["path"], model["type"]) == (200, "explore.ipynb", "notebook")
    # The kernel is this interpreter (the venv's), imports the project, runs in notebooks/ and
    # reads the command's settings, resolved there as they are here.
    assert seen["kernel_says"].splitlines() == [
        sys.executable,
        str(NOTEBOOKS_DIR),
        str(state / "lake"),
        str(state / "warehouse.duckdb"),
    ]
    # An empty warehouse is named, with what to run, and the server starts anyway.
    assert "has no marts yet (run `orangescrum demo` first)" in printed
    # Stopped the way every serving command stops (README: "interrupted", exit 130).
    assert process.returncode == 130, printed
    assert printed.rstrip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in printed
    gone, alive = psutil.wait_procs(seen["tree"], timeout=30)
    assert alive == [], f"left running: {alive}\n{printed}"
    assert len(gone) >= 2  # JupyterLab and the kernel it started
    assert port_is_free(seen["port"])
