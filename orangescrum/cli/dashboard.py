"""`orangescrum dashboard`: the local activity dashboard (Streamlit on the DuckDB marts).

Registered in orangescrum/cli/app.py as `app.command()(dashboard)`. Streamlit, DuckDB, pandas and
dbt are imported only when the command runs: `orangescrum --help` stays instant.

Before Streamlit starts, `dbt parse` writes the semantic manifest the KPIs are compiled from
(orangescrum/dashboard/semantic.py), so the page uses the metrics as they are defined now.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from orangescrum.cli.common import console, load_settings
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.processes import HOST, port_is_free
from orangescrum.core.settings import Settings, WarehouseTarget

APP_PATH = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
SHUTDOWN_GRACE_SECONDS = 10


def streamlit_command(port: int) -> list[str]:
    """`streamlit run` of the dashboard script, local only, no browser, no telemetry."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        "--server.address",
        HOST,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # Readers get the dashboard, not Streamlit's developer menu (Deploy, rerun, settings).
        "--client.toolbarMode",
        "viewer",
    ]


def semantic_manifest_target(settings: Settings) -> Path:
    """The dashboard's own dbt target folder (dbt_project/target is other commands')."""
    return settings.data_dir / "dashboard" / "dbt_target"


def write_semantic_manifest(settings: Settings) -> Path:
    """`dbt parse` into the dashboard's target folder: the path of its semantic_manifest.json.

    Always on the DuckDB (dev) target, whatever ORANGESCRUM_DBT_TARGET says: the dashboard
    reads the DuckDB marts, so its metrics must name DuckDB's relations. After the first run,
    dbt's partial parsing makes this a matter of seconds.
    """
    from orangescrum.dashboard.semantic import MANIFEST_NAME
    from orangescrum.warehouse.dbt import run_dbt

    target = semantic_manifest_target(settings)
    duckdb_settings = settings.model_copy(update={"dbt_target": WarehouseTarget.DEV})
    run_dbt(duckdb_settings, ["parse"], target_path=target, quiet=True)
    return target / MANIFEST_NAME


def dashboard(
    port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Port on 127.0.0.1. Default: ORANGESCRUM_DASHBOARD_PORT (8501).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the activity dashboard on http://127.0.0.1:8501 (reads the DuckDB marts).

    KPIs from the semantic layer's metrics, daily activity, hours logged, task throughput and
    cycle time per project, filtered by dates, company and project. Ctrl-C stops it.
    """
    from orangescrum.dashboard.queries import require_warehouse

    settings = load_settings()
    port = port or settings.dashboard_port
    require_warehouse(settings.duckdb_file)
    if not port_is_free(port):
        raise OrangeScrumError(
            f"Port {port} on {HOST} is already in use; stop what listens there or pass --port."
        )
    console.print("dbt parse: the semantic layer's metrics, for the KPIs")
    manifest = write_semantic_manifest(settings)
    console.print(
        f"dashboard: http://{HOST}:{port}  (warehouse {settings.duckdb_file}). Ctrl-C stops it.",
        soft_wrap=True,  # the URL stays on one line, clickable and greppable
    )
    # The app reads exactly the warehouse checked above and the manifest just written,
    # whatever its working directory.
    env = os.environ | {
        "ORANGESCRUM_DUCKDB_PATH": str(settings.duckdb_file),
        "ORANGESCRUM_DASHBOARD_SEMANTIC_MANIFEST": str(manifest),
    }
    process = subprocess.Popen(streamlit_command(port), env=env)
    try:
        returncode = process.wait()
    except KeyboardInterrupt:
        # Ctrl-C (or SIGTERM, turned into KeyboardInterrupt by cli.main): stop Streamlit too.
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=SHUTDOWN_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        raise
    if returncode != 0:
        raise OrangeScrumError(f"Streamlit exited with code {returncode}; see its output above.")
