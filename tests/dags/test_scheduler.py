"""DuckDB's single writer, proven under a real scheduler.

`orangescrum airflow standalone` (scheduler, DAG processor, API server, triggerer, LocalExecutor
with 32 slots) runs the real dags/ on a copy of the ingested warehouse. The dbt DAG is triggered
through the REST API, with a selection that fans out: after staging's build task, three models
are ready at once, so only the pool and max_active_tasks keep them apart. The task
instances' own start/end times must never overlap.

The metadata database is the local PostgreSQL (ORANGESCRUM_AIRFLOW_DATABASE=postgres), as in
production: the pool's slot accounting runs on PostgreSQL's row locks. SQLite, the default, is
the metadata database of every `dag.test()` run (test_dag_runs.py); this minute-long run is not
repeated on it.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg2
import pytest

from orangescrum import airflow_support as support
from orangescrum.core.postgres import HOST, ROLE, LocalPostgres
from orangescrum.core.processes import free_port
from tests.dags.conftest import DagRunResult, Pipeline

pytestmark = pytest.mark.slow

DAG_ID = "orangescrum_dbt"
# Staging, then three models that all depend on it only: a fan-out the scheduler would run in
# parallel if nothing stopped it. A subset keeps the run about a minute (each task is a fresh
# process importing dbt); the serialization settings are the whole DAG's.
SELECTION = (
    "stg_orangescrum__events int_users_state_history int_projects_state_history "
    "int_tasks_state_history"
)
STARTUP_TIMEOUT = 180
RUN_TIMEOUT = 300


@dataclass
class Api:
    base_url: str
    log: Path  # the standalone's output, shown when a wait times out
    pid: int = 0  # the `orangescrum airflow standalone` process
    token: str = ""
    database: dict[str, Any] = field(default_factory=dict)  # psycopg2.connect() keywords

    def listening_beyond_loopback(self) -> list[str]:
        """Sockets of the standalone's process tree that listen on other than 127.0.0.1/::1."""
        root = psutil.Process(self.pid)
        found = []
        for process in [root, *root.children(recursive=True)]:
            try:
                connections = process.net_connections(kind="inet")
            except psutil.Error:
                continue
            found += [
                f"{process.name()} {c.laddr.ip}:{c.laddr.port}"
                for c in connections
                if c.status == psutil.CONN_LISTEN and c.laddr.ip not in ("127.0.0.1", "::1")
            ]
        return found

    def call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {self.token}"} if self.token else {}),
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")


def wait_for(what: str, probe, timeout: float, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (value := probe()) is not None:
                return value
        except (urllib.error.URLError, ConnectionError, FileNotFoundError, KeyError):
            pass
        time.sleep(1)
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


def copy_warehouse(pipeline: Pipeline, target: Path) -> Path:
    """The ingested lake and warehouse, closed first so the copy is complete."""
    from orangescrum.warehouse.dbt import _release_duckdb

    _release_duckdb()
    source = pipeline.settings()
    target.mkdir(parents=True)
    shutil.copytree(source.data_dir / "lake", target / "lake")
    for path in source.data_dir.glob(f"{source.duckdb_file.name}*"):
        shutil.copy2(path, target / path.name)
    return target


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """Outside pytest's tmp_path: under root PostgreSQL runs as `postgres`, which cannot
    enter /tmp/pytest-of-root (0700)."""
    directory = Path(tempfile.mkdtemp(prefix="orangescrum-scheduler-tests-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def standalone(
    pipeline: Pipeline, ingest_run: DagRunResult, tmp_path: Path, state_dir: Path
) -> Iterator[Api]:
    """`orangescrum airflow standalone` on free ports with its metadata in the local
    PostgreSQL; stopped (SIGTERM) after the test, PostgreSQL with it."""
    assert ingest_run.state == "success", ingest_run
    data_dir = copy_warehouse(pipeline, state_dir / "state")
    port = free_port()
    database_port = free_port()
    env = {
        **pipeline.env,
        "ORANGESCRUM_DATA_DIR": str(data_dir),
        "ORANGESCRUM_DBT_SELECT": SELECTION,
        "ORANGESCRUM_AIRFLOW_DATABASE": "postgres",
        "ORANGESCRUM_AIRFLOW_POSTGRES_PORT": str(database_port),
        # Airflow's log servers default to 8793/8794: keep parallel runs from colliding.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        # dags/ does not change during the test: the DAG processor's first parse is the one
        # the test reads. Re-parsing every file every 30 s (the default) cost about ten more
        # parses (each a process importing Cosmos) while the run went on; callbacks are still
        # processed as they come.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
    }
    log = tmp_path / "standalone.log"
    command = (
        "from orangescrum.cli.airflow import airflow_app; "
        f"airflow_app(['standalone', '--port', '{port}'])"
    )
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", command],
            env=os.environ | env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    database = LocalPostgres(data_dir / "postgres")
    api = Api(f"http://127.0.0.1:{port}", log, process.pid)
    try:
        password_file = data_dir / "airflow" / "simple_auth_manager_passwords.json.generated"
        password = wait_for(
            "the generated admin password",
            lambda: json.loads(password_file.read_text())["admin"],
            STARTUP_TIMEOUT,
            log,
        )
        api.token = wait_for(
            "the API server",
            lambda: api.call("POST", "/auth/token", {"username": "admin", "password": password})[
                "access_token"
            ],
            STARTUP_TIMEOUT,
            log,
        )
        api.database = {
            "host": HOST,
            "port": database_port,
            "user": ROLE,
            "password": database.password,
            "dbname": "airflow",
        }
        yield api
    finally:
        stop(process)
    # The CLI stopped its PostgreSQL cleanly (a fast shutdown removes the lock file), and
    # Airflow kept no SQLite database beside it.
    assert not (database.data_dir / "postmaster.pid").exists(), log.read_text()[-4000:]
    assert not (data_dir / "airflow" / "airflow.db").exists()


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the CLI (it stops Airflow's components); kill what is left of its tree."""
    try:
        tree = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for child in tree:
        if child.is_running():
            child.kill()


def test_duckdb_writers_never_overlap_under_a_real_scheduler(standalone: Api) -> None:
    api = standalone
    dag = wait_for(
        "the DAG processor to parse orangescrum_dbt",
        lambda: api.call("GET", f"/api/v2/dags/{DAG_ID}"),
        STARTUP_TIMEOUT,
        api.log,
    )
    assert dag["max_active_tasks"] == 1
    assert dag["max_active_runs"] == 1
    pool = api.call("GET", f"/api/v2/pools/{support.DUCKDB_POOL}")
    assert pool["slots"] == 1
    tasks = {
        task["task_id"]: task for task in api.call("GET", f"/api/v2/dags/{DAG_ID}/tasks")["tasks"]
    }
    fan_out = tasks["stg_orangescrum__events_model_build"]["downstream_task_ids"]
    assert len(fan_out) == 3, "three models become ready together: a real chance to overlap"

    api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    run_id = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None})[
        "dag_run_id"
    ]
    run = wait_for(
        "the dbt DAG run to finish",
        lambda: (
            run
            if (run := api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}"))["state"]
            in {"success", "failed"}
            else None
        ),
        RUN_TIMEOUT,
        api.log,
    )
    instances = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=100")[
        "task_instances"
    ]

    states = {ti["task_id"]: ti["state"] for ti in instances}
    assert run["state"] == "success", states
    assert set(states) == set(tasks) and set(states.values()) == {"success"}
    assert {ti["pool"] for ti in instances} == {support.DUCKDB_POOL}
    intervals = sorted(
        (
            datetime.fromisoformat(ti["start_date"]),
            datetime.fromisoformat(ti["end_date"]),
            ti["task_id"],
        )
        for ti in instances
    )
    for (_, previous_end, previous), (start, _, current) in itertools.pairwise(intervals):
        assert start >= previous_end, f"{current} started at {start} before {previous} ended"
    # Every component (API server, scheduler, triggerer, their log servers, PostgreSQL) stays
    # on loopback.
    assert api.listening_beyond_loopback() == []
    # The run is recorded in PostgreSQL, not in a SQLite file in Airflow's home.
    with psycopg2.connect(**api.database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT state FROM dag_run WHERE run_id = %s", (run_id,))
        assert cursor.fetchall() == [("success",)]
    connection.close()
