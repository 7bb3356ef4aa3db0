"""`orangescrum notebook`: JupyterLab on notebooks/, seeing the same lake and warehouse.

Registered in orangescrum/cli/app.py as `app.command()(notebook)`. JupyterLab runs as a child
process of this command (this interpreter's `-m jupyterlab`), so Ctrl-C or SIGTERM here stops it
and, through its own shutdown, every kernel it started.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr

from orangescrum import REPO_ROOT
from orangescrum.cli.common import console, load_settings
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.processes import HOST, claim_port, port_is_free, stop_with_parent
from orangescrum.core.settings import Settings

log = logging.getLogger(__name__)

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
START_NOTEBOOK = "explore.ipynb"
KERNEL_NAME = "python3"  # the name explore.ipynb's metadata asks for
KERNEL_DISPLAY_NAME = "Python 3 (OrangeScrum)"
# Kernels hosting a Spark JVM take a few seconds each to shut down.
SHUTDOWN_GRACE_SECONDS = 30
READY_POLL_SECONDS = 0.2


def settings_environment(settings: Settings) -> dict[str, str]:
    """Every setting as the ORANGESCRUM_* variable that reproduces it in another process.

    Kernels run in notebooks/, not in this command's working directory: a relative path (the
    default data dir `.orangescrum`, a relative lake or warehouse) or a `.env` read here would
    resolve differently there, so locations are passed resolved.
    """
    environment: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, StrEnum):
            value = value.value
        environment[f"ORANGESCRUM_{name.upper()}"] = str(value)
    return environment | {
        "ORANGESCRUM_LAKE_URI": settings.lake_root,
        "ORANGESCRUM_CHECKPOINT_DIR": settings.checkpoint_root,
        "ORANGESCRUM_DUCKDB_PATH": str(settings.duckdb_file),
        "ORANGESCRUM_DBT_MANIFEST_PATH": str(settings.dbt_manifest_file),
    }


def write_kernel_spec(jupyter_path: Path) -> Path:
    """A `python3` kernel spec running this interpreter, under `jupyter_path`/kernels.

    Put first on JUPYTER_PATH it wins over any other `python3` spec (a user-wide one from
    `ipykernel install --user` may point at another Python, which cannot import the project).
    """
    from ipykernel.kernelspec import write_kernel_spec as write_ipykernel_spec

    spec_dir = jupyter_path / "kernels" / KERNEL_NAME
    # ipykernel copies its resources with copytree, which refuses an existing folder.
    shutil.rmtree(spec_dir, ignore_errors=True)
    spec_dir.parent.mkdir(parents=True, exist_ok=True)
    write_ipykernel_spec(spec_dir, overrides={"display_name": KERNEL_DISPLAY_NAME})
    return spec_dir


def missing_marts(warehouse: Path) -> list[str] | None:
    """The marts the warehouse lacks (all of them without a file); None if it cannot be read."""
    import duckdb

    from orangescrum.dashboard.queries import REQUIRED_MARTS
    from orangescrum.dashboard.queries import missing_marts as marts_not_in

    if not warehouse.is_file():
        return list(REQUIRED_MARTS)
    try:
        with duckdb.connect(str(warehouse), read_only=True) as connection:
            return marts_not_in(connection)
    except duckdb.Error:
        # A build holding the write lock: the marts may well be there, so say nothing.
        log.info("could not read %s to look for its marts", warehouse, exc_info=True)
        return None


def jupyterlab_command(port: int, open_browser: bool) -> list[str]:
    """JupyterLab on 127.0.0.1:port rooted in notebooks/, opening explore.ipynb."""
    return [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        # The printed URL names this port: fail rather than move to another one.
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={NOTEBOOKS_DIR}",
        f"--LabApp.default_url=/lab/tree/{START_NOTEBOOK}",
        # Ctrl-C reaches JupyterLab too (same process group): stop without its y/n prompt.
        "--ServerApp.answer_yes=True",
        # The URL printed here is what to open; JupyterLab's banner would repeat it.
        "--ServerApp.log_level=WARN",
        "--LabApp.log_level=WARN",
        # No calls home from a local tool: no update check, no news feed.
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
        "--LabApp.news_url=None",
        # Root in a container or CI box: the server still listens on loopback behind a token.
        *(["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []),
        *([] if open_browser else ["--no-browser"]),
    ]


def notebook(
    port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Port on 127.0.0.1. Default: a free one.",
            show_default=False,
        ),
    ] = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not open a browser; just print the URL.")
    ] = False,
) -> None:
    """Serve the analysts' notebooks in JupyterLab on 127.0.0.1 (opens explore.ipynb).

    notebooks/explore.ipynb reads the lake with PySpark and the DuckDB marts read-only, from
    the same ORANGESCRUM_* settings as this command; kernels run this project's Python.
    Prints the URL with a fresh access token. Ctrl-C stops JupyterLab and its kernels.
    """
    settings = load_settings()
    port = claim_port(port, "--port")
    missing = missing_marts(settings.duckdb_file)
    if missing:
        console.print(
            f"[yellow]note:[/yellow] the warehouse {settings.duckdb_file} has no marts yet "
            "(run `orangescrum demo` first), so the notebook's warehouse sections will fail.",
            soft_wrap=True,
        )
    jupyter_path = settings.data_dir / "jupyter"
    write_kernel_spec(jupyter_path)
    token = secrets.token_urlsafe(32)
    env = (
        os.environ
        | settings_environment(settings)
        | {
            # From the environment, not the command line: `ps` shows arguments to everyone.
            "JUPYTER_TOKEN": token,
            "JUPYTER_PATH": os.pathsep.join(
                [str(jupyter_path), *filter(None, [os.environ.get("JUPYTER_PATH")])]
            ),
        }
    )
    log.info("starting JupyterLab on %s:%d in %s", HOST, port, NOTEBOOKS_DIR)
    process = subprocess.Popen(
        jupyterlab_command(port, open_browser=not no_browser),
        env=env,
        # SIGTERM JupyterLab if this command dies, even by SIGKILL, which it cannot forward.
        preexec_fn=stop_with_parent,
    )
    try:
        while port_is_free(port):
            if process.poll() is not None:
                raise OrangeScrumError(
                    f"JupyterLab exited with code {process.returncode} before it listened on "
                    f"{HOST}:{port}; see its output above."
                )
            time.sleep(READY_POLL_SECONDS)
        console.print(
            f"notebook: http://{HOST}:{port}/lab/tree/{START_NOTEBOOK}?token={token}\n"
            f"  lake {settings.lake_root}, warehouse {settings.duckdb_file}. Ctrl-C stops it.",
            soft_wrap=True,  # the URL stays on one line, clickable and greppable
        )
        returncode = process.wait()
    except KeyboardInterrupt:
        # Ctrl-C, or SIGTERM turned into KeyboardInterrupt by cli.main: JupyterLab shuts its
        # kernels down on SIGTERM before it exits.
        stop_jupyterlab(process)
        raise
    if returncode != 0:
        raise OrangeScrumError(f"JupyterLab exited with code {returncode}; see its output above.")


def stop_jupyterlab(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=SHUTDOWN_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        log.warning("JupyterLab did not stop in %d s: killed", SHUTDOWN_GRACE_SECONDS)
        process.kill()
        process.wait()
