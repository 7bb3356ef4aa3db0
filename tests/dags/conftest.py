"""Airflow harness: a private AIRFLOW_HOME, a built manifest, and one pipeline the DAGs share.

Airflow reads its configuration once, on first import, so the environment is fixed here at
collection time, before any test module imports Airflow. A developer's AIRFLOW__* settings,
connections and variables are dropped: the tests see a fresh SQLite metadata DB and this
repository's dags/ only, with Cosmos telemetry off.

The DAG runs build on each other (ingest lands the data the dbt, batch and maintenance DAGs
read), so they are session fixtures run once, in dependency order, whatever tests are selected.
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from orangescrum import REPO_ROOT

for _name in [
    n for n in os.environ if n.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
]:
    del os.environ[_name]
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="orangescrum-airflow-tests-"))
atexit.register(shutil.rmtree, AIRFLOW_HOME, ignore_errors=True)
DAGS_FOLDER = REPO_ROOT / "dags"
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(AIRFLOW_HOME / "cosmos"),
    }
)

DAG_IDS = (
    "orangescrum_ingest",
    "orangescrum_dbt",
    "orangescrum_spark_batch",
    "orangescrum_maintenance",
)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set env vars for a block and restore the whole environment after it.

    Whole, not just `values`: Cosmos copies every dbt env var into os.environ while it
    collects lineage, and ORANGESCRUM_DUCKDB_PATH left behind would redirect later Settings().
    """
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session", autouse=True)
def airflow_home() -> Path:
    """The private AIRFLOW_HOME with a migrated metadata DB (removed when pytest exits)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest built by `orangescrum airflow manifest` (the CLI the README documents)."""
    from typer.testing import CliRunner

    from orangescrum.cli.airflow import airflow_app

    path = tmp_path_factory.mktemp("manifest") / "manifest.json"
    data_dir = tmp_path_factory.mktemp("manifest-state")
    with environment(
        {"ORANGESCRUM_DBT_MANIFEST_PATH": str(path), "ORANGESCRUM_DATA_DIR": str(data_dir)}
    ):
        result = CliRunner().invoke(airflow_app, ["manifest"])
    assert result.exit_code == 0, result.output
    return path


def parse_dags(env: dict[str, str]) -> Any:
    """A DagBag of dags/ under `env` (the DAG files read ORANGESCRUM_* when parsed)."""
    from airflow.dag_processing.dagbag import DagBag

    with environment(env):
        return DagBag(dag_folder=str(DAGS_FOLDER))


@dataclass
class DagRunResult:
    dag_id: str
    state: str
    task_states: dict[str, str]
    xcoms: dict[str, Any] = field(default_factory=dict)

    @property
    def failed_tasks(self) -> list[str]:
        return sorted(task for task, state in self.task_states.items() if state != "success")


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the session's long-lived objects out of the garbage collector during a block.

    Cosmos ends every dbt task with a full `gc.collect()`. In production each task is a fresh
    process; here the tasks share pytest's process, whose heap (Spark, Kafka clients,
    Airflow, every imported module) made each of those collections cost most of a second.
    Frozen objects are still freed by reference counting; only the collector skips them.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_dag(
    dag: Any, env: dict[str, str], *, logical_date: datetime | None = None, **test_kwargs: Any
) -> DagRunResult:
    """`dag.test()` in this process under `env`; states and return values of its tasks."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with environment(env), frozen_heap():
        dag_run = dag.test(logical_date=logical_date, **test_kwargs)
        with create_session() as session:
            task_instances = dag_run.get_task_instances(session=session)
            xcoms = {
                row.task_id: XComModel.deserialize_value(row)
                for row in session.query(XComModel).filter(
                    XComModel.dag_id == dag.dag_id,
                    XComModel.run_id == dag_run.run_id,
                    XComModel.key == "return_value",
                )
            }
    return DagRunResult(
        dag_id=dag.dag_id,
        state=str(dag_run.state),
        task_states={ti.task_id: str(ti.state) for ti in task_instances},
        xcoms=xcoms,
    )


@dataclass
class Pipeline:
    """The environment every DAG of the session runs in, and what was produced into Kafka."""

    env: dict[str, str]
    data_dir: Path
    produced_events: int
    unique_events: int
    bad_messages: int

    def settings(self) -> Any:
        from orangescrum.core.settings import Settings

        with environment(self.env):
            return Settings(_env_file=None)


@pytest.fixture(scope="session")
def pipeline(broker, spark, manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """Settings on the session broker, two days of one company produced to fresh topics.

    Requesting `spark` first makes the DAG tasks share the session's SparkSession instead of
    starting (and stopping) their own JVM in this process.
    """
    from ingestion.faults import BAD_KINDS
    from ingestion.feed import produce_history
    from ingestion.simulator import SimulationConfig
    from orangescrum.core.topics import create_topics
    from tests.conftest import last_weeks_monday

    data_dir = tmp_path_factory.mktemp("pipeline")
    env = {
        "ORANGESCRUM_DATA_DIR": str(data_dir),
        "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "ORANGESCRUM_TOPIC_EVENTS": "events-dags",
        "ORANGESCRUM_TOPIC_DEAD_LETTER": "dlq-dags",
        "ORANGESCRUM_SPARK_MASTER": "local[2]",
        "ORANGESCRUM_DBT_MANIFEST_PATH": str(manifest),
    }
    pipeline = Pipeline(env, data_dir, 0, 0, 0)
    settings = pipeline.settings()
    create_topics(settings)
    report = produce_history(
        settings,
        SimulationConfig(
            seed=5, companies=1, days=2, start_date=last_weeks_monday(), duplicate_rate=0.02
        ),
        dict.fromkeys(BAD_KINDS, 1),
    )
    pipeline.produced_events = report.events
    pipeline.unique_events = report.unique_events
    pipeline.bad_messages = sum(report.bad_by_kind.values())
    return pipeline


@pytest.fixture(scope="session")
def dags(pipeline: Pipeline) -> Any:
    bag = parse_dags(pipeline.env)
    assert bag.import_errors == {}
    return bag


@pytest.fixture(scope="session")
def ingest_run(pipeline: Pipeline, dags: Any) -> DagRunResult:
    return run_dag(dags.get_dag("orangescrum_ingest"), pipeline.env)


@pytest.fixture(scope="session")
def dbt_run(pipeline: Pipeline, dags: Any, ingest_run: DagRunResult) -> DagRunResult:
    assert ingest_run.state == "success", ingest_run
    return run_dag(dags.get_dag("orangescrum_dbt"), pipeline.env)
