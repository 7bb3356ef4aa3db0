"""`orangescrum airflow ...`: the dbt manifest the DAGs render from, and a local Airflow.

Registered in orangescrum/cli/app.py as `app.add_typer(airflow_app, name="airflow")`. Nothing here
imports Airflow, Cosmos or dbt at module level: `orangescrum --help` stays instant.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from orangescrum.cli.common import console, load_settings
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.processes import HOST, port_is_free
from orangescrum.core.settings import AirflowDatabase, Settings

log = logging.getLogger(__name__)

airflow_app = typer.Typer(
    help="Airflow: the dbt manifest the DAGs render from, and a local Airflow to run them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


SHUTDOWN_GRACE_SECONDS = 60


def build_manifest(settings: Settings, destination: Path) -> Path:
    """`dbt parse` of the project into a scratch target folder, manifest.json moved into place.

    The scratch folder sits next to the destination, so the final rename is atomic: a DAG
    processor parsing meanwhile reads the old manifest or the new one, never half of one.
    """
    from orangescrum.warehouse.dbt import run_dbt

    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".parse-", dir=destination.parent) as scratch:
        target = Path(scratch)
        run_dbt(settings, ["parse"], target_path=target, quiet=True)
        built = target / "manifest.json"
        if not built.is_file():
            raise OrangeScrumError(f"`dbt parse` wrote no manifest.json into {target}.")
        built.replace(destination)
    return destination


def manifest_models(path: Path) -> int:
    import json

    nodes = json.loads(path.read_text())["nodes"].values()
    return sum(node["resource_type"] == "model" for node in nodes)


@airflow_app.command("manifest")
def manifest() -> None:
    """Build the dbt manifest.json the DAGs are rendered from (dbt parse, no network)."""
    from orangescrum.airflow_support import manifest_path

    destination = manifest_path()
    build_manifest(load_settings(), destination)
    console.print(f"manifest: {destination} ({manifest_models(destination)} models)")


@contextmanager
def metadata_database(settings: Settings) -> Iterator[str | None]:
    """SQLAlchemy URL of Airflow's metadata database for the block; None: Airflow's SQLite.

    ORANGESCRUM_AIRFLOW_DATABASE=postgres with no URL starts the local PostgreSQL
    (orangescrum/core/postgres.py) for the block and stops it after.
    """
    url = settings.airflow_database_url.get_secret_value().strip()
    if settings.airflow_database is AirflowDatabase.SQLITE:
        if url:
            raise OrangeScrumError(
                "ORANGESCRUM_AIRFLOW_DATABASE_URL is set but ORANGESCRUM_AIRFLOW_DATABASE is "
                "sqlite: set the latter to postgres to use that database, or unset the URL."
            )
        yield None
        return
    if url:
        if not url.startswith("postgresql"):
            raise OrangeScrumError(
                "ORANGESCRUM_AIRFLOW_DATABASE_URL must be a PostgreSQL URL "
                "(postgresql+psycopg2://...), since ORANGESCRUM_AIRFLOW_DATABASE is postgres."
            )
        yield url
        return
    from orangescrum.core.postgres import LocalPostgres

    with LocalPostgres(
        settings.airflow_postgres_dir, port=settings.airflow_postgres_port or None
    ) as postgres:
        yield postgres.url


def describe_database(url: str | None) -> str:
    """Where the metadata lives, for people: no password."""
    if url is None:
        return "SQLite"
    from sqlalchemy.engine import make_url

    return f"PostgreSQL {make_url(url).render_as_string(hide_password=True)}"


def standalone_env(
    settings: Settings, port: int, database_url: str | None = None
) -> dict[str, str]:
    """Environment of a local Airflow: its own home under the data dir, this repo's DAGs, and
    `database_url` as its metadata database (None: SQLite in its home)."""
    from orangescrum.airflow_support import DAGS_FOLDER

    home = settings.data_dir / "airflow"
    base_url = f"http://{HOST}:{port}"
    # `airflow standalone` starts its components as `airflow ...`: the wrapper first, then
    # this interpreter's.
    wrapper_dir = _component_wrapper(home)
    path = os.pathsep.join(
        [str(wrapper_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    )
    env = os.environ | {
        "PATH": path,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        # Cosmos' own Airflow 3 plugin (always loaded) serves the docs `make docs` generates,
        # linked under Browse > "dbt docs".
        "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS": json.dumps(
            {"orangescrum": {"dir": str(settings.dbt_project_dir / "target"), "name": "dbt docs"}}
        ),
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        # Tasks run in other working directories: pin the (resolved) data dir for them.
        "ORANGESCRUM_DATA_DIR": str(settings.data_dir),
    }
    return env | database_env(database_url)


def database_env(database_url: str | None) -> dict[str, str]:
    """Airflow's metadata database settings for `database_url` (None: its SQLite default).

    Airflow derives the async engine it also opens on PostgreSQL (asyncpg, pinned) from it.
    """
    return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url} if database_url else {}


def _component_wrapper(home: Path) -> Path:
    """A folder with an `airflow` that starts the scheduler and triggerer without log servers.

    Each would serve task logs on every interface (ports 8793/8794; Airflow has no setting
    for the address). On one machine the API server reads task logs from disk instead, so
    nothing listens beyond 127.0.0.1.
    """
    folder = home / "bin"
    folder.mkdir(parents=True, exist_ok=True)
    airflow = Path(sys.executable).parent / "airflow"
    wrapper = folder / "airflow"
    wrapper.write_text(
        "#!/bin/sh\n"
        "# Written by `orangescrum airflow standalone` (orangescrum/cli/airflow.py).\n"
        'case "$1" in\n'
        f'  scheduler|triggerer) exec "{airflow}" "$@" --skip-serve-logs ;;\n'
        "esac\n"
        f'exec "{airflow}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return folder


def _airflow(*args: str, env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise OrangeScrumError(
            f"`airflow {' '.join(args)}` failed (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-2000:]}"
        )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@airflow_app.command("standalone")
def standalone(
    port: Annotated[int, typer.Option(min=1, max=65535, help="API server / UI port.")] = 8080,
) -> None:
    """Run Airflow locally on 127.0.0.1 (scheduler, DAG processor, API server, triggerer).

    Its home is <data_dir>/airflow; the DAGs are this repository's dags/. New DAGs start
    paused: unpause them in the UI. Ctrl-C stops every component. The metadata database is
    SQLite unless ORANGESCRUM_AIRFLOW_DATABASE=postgres (then the local PostgreSQL runs while
    Airflow does, or ORANGESCRUM_AIRFLOW_DATABASE_URL is used).
    """
    from orangescrum.airflow_support import manifest_path, require_manifest

    settings = load_settings()
    require_manifest(manifest_path())
    if not port_is_free(port):
        raise OrangeScrumError(
            f"Port {port} on {HOST} is already in use; stop what listens there or pass --port."
        )
    with metadata_database(settings) as database_url:
        _run_standalone(settings, port, database_url)


def _run_standalone(settings: Settings, port: int, database_url: str | None) -> None:
    from orangescrum.airflow_support import DUCKDB_POOL, DUCKDB_POOL_DESCRIPTION

    env = standalone_env(settings, port, database_url)
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    console.print(
        f"Airflow home {home}: migrating its database ({describe_database(database_url)})..."
    )
    _airflow("db", "migrate", env=env)
    _airflow("pools", "set", DUCKDB_POOL, "1", DUCKDB_POOL_DESCRIPTION, env=env)
    console.print(
        f"Airflow UI and API: http://{HOST}:{port}  (user admin)\n"
        f"Admin password: generated on first start into "
        f"{home / 'simple_auth_manager_passwords.json.generated'}\n"
        f"DAGs: {env['AIRFLOW__CORE__DAGS_FOLDER']} (paused until you unpause them). "
        "Ctrl-C stops Airflow."
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow", "standalone"],
        env=env,
        # Its own process group (killable as one), with Ctrl-C handling even when this
        # command was started in the background, where SIGINT is ignored.
        start_new_session=True,
        preexec_fn=_default_sigint,
    )

    stop_requested: list[float] = []

    def stop(_signum: int, _frame: object) -> None:
        # `airflow standalone` shuts its components down on SIGINT.
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            stop_requested.append(time.monotonic())

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while process.poll() is None:
            if stop_requested and time.monotonic() - stop_requested[0] > SHUTDOWN_GRACE_SECONDS:
                console.print("Airflow did not stop in time: killing its process group")
                os.killpg(process.pid, signal.SIGKILL)
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if process.returncode not in (0, -signal.SIGINT) and not stop_requested:
        raise typer.Exit(process.returncode)
